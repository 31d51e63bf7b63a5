"""The `notify.webhook` step: a decision, its chart and the order, sent to a notification channel."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from strategies.notify.messages import decision_lines, decision_r, order_lines, price_text
from workflows.errors import StepError, TransientStepError
from workflows.notify.services import CHANNEL_NAME, Image, NotifyError, notification_send_once, site_link
from workflows.registry import Port, StepType, register

if TYPE_CHECKING:
    from workflows.engine import StepContext


# {name} placeholders of a notification's text. {{symbol}} (a workflow parameter) works as well:
# it is filled in when the run starts.
NOTIFY_PLACEHOLDERS = ("symbol", "action", "entry", "stop", "target", "target_aggressive", "r", "order", "run", "link")
_PLACEHOLDER = re.compile(r"(?<!\{)\{([a-z_]+)\}(?!\})")


class NotifyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(
        # The same rule as NOTIFY_CHANNELS names: a name the environment could never hold is refused on save.
        pattern=CHANNEL_NAME,
        description="Name of a channel configured in NOTIFY_CHANNELS; its URL and token stay in the environment",
    )
    template: str = Field(
        "{symbol}: {action}",
        min_length=1,
        max_length=1000,
        description="The message. Placeholders: " + " ".join(f"{{{n}}}" for n in NOTIFY_PLACEHOLDERS),
    )
    summary: bool = Field(True, description="Add the decision's levels, R and reasoning, and the order, below it")
    attach_chart: bool = Field(True, description="Attach the chart PNG (Slack: a link, with PUBLIC_BASE_URL)")

    @field_validator("template")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        unknown = sorted({name for name in _PLACEHOLDER.findall(value) if name not in NOTIFY_PLACEHOLDERS})
        if unknown:
            known = ", ".join(f"{{{n}}}" for n in NOTIFY_PLACEHOLDERS)
            raise ValueError(f"unknown placeholder(s) {', '.join(f'{{{n}}}' for n in unknown)}; use {known}")
        return value


def _notify_values(ctx: StepContext, decision: dict, order: dict, link: str | None) -> dict[str, str]:

    r = order.get("r") if isinstance(order.get("r"), int | float) else decision_r(decision)
    if order.get("sent"):
        order_text = f"order {order.get('order_id')} {order.get('status')}"
    elif order:
        order_text = f"no order ({str(order.get('reason') or '')[:200]})"
    else:
        order_text = ""
    return {
        "symbol": str(decision.get("symbol") or ctx.symbol),
        "action": str(decision.get("action") or ""),
        "entry": price_text(decision.get("entry")),
        "stop": price_text(decision.get("stop_loss")),
        "target": price_text(decision.get("take_profit_conservative")),
        "target_aggressive": price_text(decision.get("take_profit_aggressive")),
        "r": f"{r:.2f}" if isinstance(r, int | float) and not isinstance(r, bool) else "—",
        "order": order_text,
        "run": str(ctx.run_id),
        "link": link or "",
    }


@register
class NotifyWebhook(StepType):
    name = "notify.webhook"
    label = "Notify (Discord, Slack, Telegram, webhook)"
    category = "notify"
    description = (
        "Sends a message, with the chart image, to a channel named in the environment (NOTIFY_CHANNELS): the "
        "decision with its levels and R, and the order sent or why not. Once per run and node: a redelivery or "
        "a rerun does not send again. A channel that cannot be reached fails the step (retried per the node's "
        "policy for timeouts and server errors)."
    )
    Params = NotifyParams
    inputs = (
        Port("decision", "decision", "From ai.decide or ai.agent_team", required=False),
        Port("chart", "chart", "Its PNG is attached", required=False),
        Port("order", "order", "From broker.place_order: sent, or why not", required=False),
    )
    outputs = (Port("notification", "notification", "What was sent (channel name, text, image); never a URL"),)
    queue = "default"
    time_limit = 60
    idempotent = False

    def run(self, ctx: StepContext, inputs: dict[str, Any], params: NotifyParams) -> dict[str, Any]:
        from workflows.artifacts.store import artifact_get

        decision = inputs.get("decision") if isinstance(inputs.get("decision"), dict) else {}
        order = inputs.get("order") if isinstance(inputs.get("order"), dict) else {}
        chart = inputs.get("chart") if isinstance(inputs.get("chart"), dict) else {}
        link = site_link(f"/runs/{ctx.run_id}/")
        values = _notify_values(ctx, decision, order, link)
        lines = [_PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), params.template).strip()]
        if params.summary:
            lines += decision_lines(decision) + order_lines(order)
        if link and "{link}" not in params.template:
            lines.append(link)
        image = None
        if params.attach_chart and isinstance(chart.get("png"), str):
            key = chart["png"]
            image = Image(data=artifact_get(key=key), link=site_link(f"/runs/{ctx.run_id}/artifacts/{key}"))
        # The generic webhook also gets the figures as data (the reasoning is already in the text).
        brief = {k: v for k, v in decision.items() if k not in ("reasoning", "key_levels")} or None
        data = {"run_id": ctx.run_id, "symbol": ctx.symbol, "decision": brief, "order": order or None}
        try:
            sent, now = notification_send_once(
                key=ctx.idempotency_key,
                channel=params.channel,
                text="\n".join(line for line in lines if line),
                image=image,
                data=data,
                run_id=ctx.run_id,
            )
        except NotifyError as exc:
            raise (TransientStepError if exc.transient else StepError)(exc.message) from None
        if now:
            ctx.log(f'Sent to channel "{params.channel}" ({sent["kind"]})' + (", with the chart" if image else ""))
        else:
            ctx.log(f'Already sent to channel "{params.channel}" for this run and node; not sent again')
        return {"notification": sent}
