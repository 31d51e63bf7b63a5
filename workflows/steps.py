"""Flow step types, which belong to no domain: a human approval."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from workflows.registry import ANY, Port, StepType, register

if TYPE_CHECKING:
    from workflows.engine import StepContext


class ApprovalParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field("Approve this order?", max_length=500, description="What the approver is asked")
    expires_after_min: int = Field(
        60, ge=1, le=7 * 24 * 60, description="Minutes to wait; then the approval expires and counts as rejected"
    )


def _tradable(item: Any) -> str | None:
    """Why there is nothing to approve (a failed risk check, HOLD, no quantity), or None."""
    if not isinstance(item, dict):
        return None
    risk = item.get("risk") if isinstance(item.get("risk"), dict) else item
    if risk.get("passed") is False:
        return "the risk check did not pass: " + "; ".join(risk.get("reasons") or [])
    if "quantity" in item and not item.get("quantity"):
        return "the position size is 0: " + "; ".join(item.get("reasons") or [])
    return None


@register
class ApprovalStep(StepType):
    name = "flow.approval"
    label = "Human approval"
    category = "flow"
    description = (
        "Parks the run (WAITING, no worker held) until a user approves, rejects or changes the quantity on the "
        "Approvals page or through the API; expires to rejected. When there is nothing to approve (the risk "
        "check failed, HOLD, quantity 0) the run goes on at once."
    )
    Params = ApprovalParams
    inputs = (Port("item", ANY, "What to approve, usually the order plan of risk.position_size"),)
    outputs = (Port("item", ANY, "The same, with the approval (who, when, the quantity approved)"),)
    time_limit = 30

    def run(self, ctx: StepContext, inputs: dict[str, Any], params: ApprovalParams) -> dict[str, Any]:
        from workflows.approvals import approval_request

        item = inputs["item"]
        skip = _tradable(item)
        if skip:
            ctx.log(f"Nothing to approve: {skip}")
            outcome = {"status": "not_needed", "approved": False, "reason": skip}
            return {"item": {**item, "approval": outcome}}
        plan = item if isinstance(item, dict) else {"value": item}
        summary = {
            k: plan.get(k)
            for k in ("symbol", "side", "action", "quantity", "entry", "stop_loss", "take_profit", "r", "notional")
            if k in plan
        }
        quantity = plan.get("quantity") if isinstance(plan.get("quantity"), int) else None
        approval = approval_request(
            step_run_id=ctx.step_run_id,
            message=params.message,
            summary=summary,
            quantity=quantity,
            expires_after_min=params.expires_after_min,
        )
        ctx.park(f"approval {approval.id} is pending until {approval.expires_at:%Y-%m-%d %H:%M} UTC")
        return {}  # not reached: park raises
