"""A strategy's own notifications: when one of its runs finishes, each channel named in its
StrategyNotification rows hears what it asked for (the decision with its chart, the order, a
failure).

Called through settings.RUN_FINISHED_HOOKS by the workflows.notify.alerts task, after the run's commit
and off the engine, so a slow or failing channel never touches the run. Each (run, setting) is
sent once (NotificationLog key), so a redelivered task does not send twice. The transport and the
message lines are workflows/notify/services.py's; this module only picks what to say.
"""

from __future__ import annotations

import logging
from typing import Any

from strategies.models import StrategyNotification
from strategies.notify.messages import decision_lines, order_lines
from strategies.selectors import strategy_of_run
from workflows.artifacts.store import artifact_get
from workflows.errors import StepError
from workflows.models import Run, RunStatus, StepStatus
from workflows.notify.services import Image, NotifyError, notification_send_once, site_link

logger = logging.getLogger(__name__)

DECISION_STEP_TYPES = ("ai.decide", "ai.agent_team")
CHART_INPUTS = ("chart", "chart_1")


def run_outcome(*, run: Run) -> dict[str, Any]:
    """The run's final decision, the chart it was drawn from and the order step's result, from the
    steps' stored outputs (each may be None)."""
    steps = list(run.steps.filter(status=StepStatus.SUCCEEDED).order_by("id").only("step_type", "inputs", "outputs"))
    decision, decision_step, order, chart = None, None, None, None
    for step in steps:
        value = (step.outputs or {}).get("decision")
        if isinstance(value, dict) and value.get("action") in ("BUY", "SELL", "HOLD"):
            decision, decision_step = value, step  # the last one is the run's final word
        value = (step.outputs or {}).get("order")
        if isinstance(value, dict) and "sent" in value:
            order = value
    # The chart the decision saw; else the run's first chart.
    if decision_step is not None:
        for name in CHART_INPUTS:
            value = (decision_step.inputs or {}).get(name)
            if isinstance(value, dict) and isinstance(value.get("png"), str):
                chart = value
                break
    if chart is None:
        for step in steps:
            value = (step.outputs or {}).get("chart")
            if isinstance(value, dict) and isinstance(value.get("png"), str):
                chart = value
                break
    return {"decision": decision, "order": order, "chart": chart}


def _message(setting: StrategyNotification, run: Run, outcome: dict[str, Any]) -> tuple[str, bool] | None:
    """(text, with the chart) of what this setting asked to hear about this run, or None."""
    name = setting.strategy.name
    link = site_link(f"/runs/{run.id}/")
    if run.status == RunStatus.FAILED:
        if not setting.on_failure:
            return None
        lines = [f"{name}: run {run.id} on {run.symbol} FAILED", run.error[:1000] or "(no error recorded)"]
        return "\n".join([*lines, *([link] if link else [])]), False
    decision, order = outcome["decision"] or {}, outcome["order"] or {}
    action = decision.get("action")
    tell_decision = setting.on_decision and (action in ("BUY", "SELL") or (action == "HOLD" and setting.include_hold))
    # An order row exists (sent, or blocked by a switch or limit); a failed risk check made none.
    tell_order = setting.on_order and order.get("order_id") is not None
    if not (tell_decision or tell_order):
        return None
    lines = [f"{name}: {run.symbol} {action or ''}".rstrip(), *decision_lines(decision), *order_lines(order)]
    return "\n".join([*lines, *([link] if link else [])]), True


def notify_run_finished(*, run_id: int) -> list[dict[str, Any]]:
    """Send each of the run's strategy's settings what it asked for. Returns what was sent; a channel
    that fails is logged (its error has no URL or token) and the others are still sent."""
    run = Run.objects.select_related("workflow").filter(id=run_id).first()
    if run is None or run.status not in (RunStatus.SUCCEEDED, RunStatus.FAILED):
        return []
    strategy = strategy_of_run(run_id=run.id)
    if strategy is None:
        return []
    settings_ = list(StrategyNotification.objects.filter(strategy=strategy).select_related("strategy"))
    if not settings_:
        return []
    outcome = run_outcome(run=run)
    image: Image | None = None
    sent: list[dict[str, Any]] = []
    for setting in settings_:
        message = _message(setting, run, outcome)
        if message is None:
            continue
        text, with_chart = message
        if with_chart and image is None and outcome["chart"]:
            key = outcome["chart"]["png"]
            try:
                image = Image(data=artifact_get(key=key), link=site_link(f"/runs/{run.id}/artifacts/{key}"))
            except StepError as exc:
                logger.warning("run %s: chart %s not attached: %s", run.id, key, exc)
        data = {"run_id": run.id, "symbol": run.symbol, "strategy": strategy.name, "status": run.status}
        data |= {"decision": outcome["decision"], "order": outcome["order"]}
        try:
            result, _ = notification_send_once(
                key=f"run{run.id}-strategy-notification-{setting.id}",
                channel=setting.channel,
                text=text,
                image=image if with_chart else None,
                data=data,
                run_id=run.id,
            )
        except NotifyError as exc:
            logger.error("run %s: strategy %s notification not sent: %s", run.id, strategy.id, exc.message)
            continue
        sent.append(result)
    return sent
