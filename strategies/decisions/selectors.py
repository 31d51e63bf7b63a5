"""Reads for the Decisions page: each AI decision of the runs a user may see, and what came of it."""

from __future__ import annotations

from django.db.models import QuerySet

from brokers.models import Order
from strategies.models import AiKind, AiRecord
from workflows.models import StepRun


def decisions_visible(*, user) -> QuerySet:
    """Decision records (ai.decide, ai.agent_team) of the runs the user may see, newest first."""
    qs = AiRecord.objects.filter(kind__in=[AiKind.DECISION, AiKind.TEAM]).select_related("run__workflow")
    qs = qs.order_by("-created_at", "-id")
    return qs if user.is_staff else qs.filter(run__workflow__owner=user)


def decision_context(*, records: list) -> None:
    """Attach to each decision record what the page shows beside it, in a few queries for the page:
    the images the run's AI steps were sent, the run's R check, its order step and the decision's order."""
    run_ids = {r.run_id for r in records}
    steps: dict[tuple[int, str], StepRun] = {}
    for step in StepRun.objects.filter(
        run_id__in=run_ids, step_type__in=["risk.r_check", "broker.place_order"]
    ).order_by("id"):
        steps.setdefault((step.run_id, step.step_type), step)
    images: dict[int, list[dict]] = {}
    for run_id, record_images in (
        AiRecord.objects.filter(run_id__in=run_ids).order_by("id").values_list("run_id", "images")
    ):
        for image in record_images or []:
            if isinstance(image, dict) and isinstance(image.get("key"), str):
                seen = images.setdefault(run_id, [])
                if all(i["key"] != image["key"] for i in seen):
                    seen.append(image)
    orders: dict[int, Order] = {}
    for order in Order.objects.filter(decision_id__in=[r.id for r in records]).order_by("id"):
        orders.setdefault(order.decision_id, order)
    for record in records:
        record.sent_images = images.get(record.run_id, [])
        check = steps.get((record.run_id, "risk.r_check"))
        risk = (check.outputs or {}).get("risk") if check else None
        record.risk = risk if isinstance(risk, dict) else None
        record.order = orders.get(record.id)
        record.outcome = _decision_outcome(record, steps.get((record.run_id, "broker.place_order")))


def _decision_outcome(record, place_step) -> str:
    """Why no order came of the decision (when none did): the order step, the R check, or HOLD."""
    if record.order is not None:
        return ""
    placed = (place_step.outputs or {}).get("order") if place_step else None
    if isinstance(placed, dict) and placed.get("reason"):
        return f"No order: {placed['reason']}"
    if place_step is not None and place_step.status == "failed" and place_step.error:
        return f"The order step failed: {place_step.error}"
    risk = record.risk
    if risk and not risk.get("passed") and risk.get("reasons"):
        return "No order: " + "; ".join(str(r) for r in risk["reasons"])
    if record.error:
        return f"HOLD: {record.error}"
    if (record.action or "").upper() == "HOLD":
        return "HOLD"
    if record.run.status in ("pending", "running", "waiting"):
        return f"No order yet: the run is {record.run.status}"
    return "No order was placed"
