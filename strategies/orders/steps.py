"""The trade path's last steps: `flow.approval` (a human approves the sized trade) and `broker.place_order`
(the bracket order, behind the trading gate in brokers.orders.services)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from brokers.adapters.registry import broker_choice, broker_queue, broker_schema
from workflows.errors import StepCancelled, StepError
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
        from workflows.approvals.services import approval_request

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


class PlaceOrderParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    broker: Annotated[str, AfterValidator(broker_choice)] = Field(
        "default",
        description="default: the BROKER setting (paper unless set); or a registered broker (paper: simulated)",
        json_schema_extra=broker_schema,
    )
    # GTC only: a DAY bracket's stop would expire at the close and leave an overnight position unprotected.
    tif: Literal["GTC"] = Field("GTC", description="Time in force of the three legs (good till cancelled)")


def _not_sent(ctx: StepContext, reason: str, plan: dict[str, Any]) -> dict[str, Any]:
    ctx.log(f"No order sent: {reason}", level="warning")
    return {"order": {"sent": False, "status": "", "order_id": None, "reason": reason, "symbol": plan.get("symbol")}}


@register
class PlaceOrder(StepType):
    name = "broker.place_order"
    label = "Place bracket order"
    category = "broker"
    description = (
        "Sends a bracket order (limit entry, take-profit limit, stop-loss stop) for a checked and sized trade, "
        "once per run and node, behind the trading switches and limits (kill switch, global switch, live "
        "switches, most notional, most open positions, daily loss limit). Records why when nothing is sent."
    )
    Params = PlaceOrderParams
    inputs = (Port("plan", "order_plan", "From risk.position_size, possibly through flow.approval"),)
    outputs = (Port("order", "order", "Whether an order was sent, its id and status, or why not"),)
    idempotent = False
    requires_upstream = frozenset({"risk_check"})
    time_limit = 60

    @classmethod
    def queue_for(cls, params: dict[str, Any]) -> str:
        return broker_queue(params.get("broker", "default"), cls.queue)

    def run(self, ctx: StepContext, inputs: dict[str, Any], params: PlaceOrderParams) -> dict[str, Any]:
        from brokers.models import OrderStatus
        from brokers.orders.services import OrderRequest, order_place
        from strategies.risk.rules import RiskLimits, SizingRules, position_size, risk_check
        from strategies.selectors import strategy_of_run
        from workflows.models import Run

        plan = inputs["plan"]
        if not isinstance(plan, dict) or plan.get("checked_by") != "risk.r_check":
            raise StepError("Refusing to place an order: the plan does not come through a passing risk.r_check")
        if not plan.get("passed"):
            return _not_sent(ctx, "the risk check did not pass: " + "; ".join(plan.get("reasons") or []), plan)
        approval = plan.get("approval")
        if isinstance(approval, dict) and not approval.get("approved"):
            by = f" by {approval['by']}" if approval.get("by") else ""
            return _not_sent(ctx, f"the approval was {approval.get('status')}{by}", plan)
        sizing, equity = plan.get("sizing"), plan.get("equity")
        if not isinstance(sizing, dict) or not isinstance(equity, int | float):
            raise StepError("Refusing to place an order that was not sized: connect risk.position_size before it")
        quantity = plan.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
            return _not_sent(ctx, "the position size is 0: " + "; ".join(plan.get("reasons") or []), plan)
        # An approver may change the quantity, within what the sizing rules allow for this trade.
        most = position_size(
            equity=equity,
            entry=plan.get("entry"),
            stop=plan.get("stop_loss"),
            rules=SizingRules(
                risk_pct=sizing["risk_pct"],
                max_position_pct=sizing["max_position_pct"],
                max_notional=sizing["max_notional"],
            ),
        ).quantity
        if quantity > most:
            return _not_sent(
                ctx, f"the quantity {quantity} is over the {most} the sizing rules allow for this trade", plan
            )
        # Checked again here, in code, on exactly what is about to be sent (safety rule 3).
        recheck = risk_check(
            action=plan.get("side"),
            entry=plan.get("entry"),
            stop=plan.get("stop_loss"),
            target=plan.get("take_profit"),
            last_price=plan.get("last_price"),
            limits=RiskLimits(**plan.get("limits", {})),
        )
        if not recheck.passed:
            raise StepError("Refusing to place an order that fails the risk check: " + "; ".join(recheck.reasons))
        run = Run.objects.select_related("workflow").get(id=ctx.run_id)
        # Safety rule 1: a strategy's run needs the strategy's live switch; a run on its own, the workflow's.
        strategy = strategy_of_run(run_id=run.id)
        if strategy is not None and not strategy.enabled:
            return _not_sent(ctx, f'the strategy "{strategy.name}" is disabled', plan)
        live_allowed = strategy.live if strategy is not None else run.workflow.live_trading
        # A run cancelled by now sends nothing. The gate checks again under the run's lock, which closes
        # the rest of the race: a cancel between here and there blocks the order in order_place.
        ctx.check_cancelled(fresh=True)
        order = order_place(
            request=OrderRequest(
                key=ctx.idempotency_key,
                symbol=str(plan["symbol"]),
                side=str(plan["side"]),
                quantity=quantity,
                entry=float(plan["entry"]),
                take_profit=float(plan["take_profit"]),
                stop_loss=float(plan["stop_loss"]),
                tif=params.tif,
                r_planned=recheck.r,
                placed_after=str(plan.get("last_date") or ""),
                data_source=str(plan.get("data_source") or ""),
            ),
            broker=params.broker,
            owner=run.workflow.owner,
            run_id=run.id,
            step_run_id=ctx.step_run_id,
            decision_id=plan.get("decision_record_id"),
            live_allowed=live_allowed,
        )
        sent = order.status not in (OrderStatus.BLOCKED, OrderStatus.REJECTED)
        what = f"{order.side} {order.quantity} {order.symbol} @ {float(order.entry_price):g}"
        try:
            # Cancelled meanwhile: the step says what became of the order and ends cancelled, never
            # "succeeded" with an order its run no longer wants (the run's cancel hook cancelled its legs).
            ctx.check_cancelled(fresh=True)
        except StepCancelled:
            if sent:
                ctx.log(
                    f"Order {order.id} ({order.broker}, {order.mode}): {what} was sent, then the run was cancelled: "
                    f"{order.get_status_display()}. {order.reason}".strip(),
                    level="warning",
                )
            else:
                ctx.log(f"No order sent: {order.get_status_display()}: {order.reason}", level="warning")
            raise
        if sent:
            ctx.log(f"Order {order.id} ({order.broker}, {order.mode}): {what}, {order.get_status_display()}")
        else:
            ctx.log(f"No order sent: {order.get_status_display()}: {order.reason}", level="warning")
        return {
            "order": {
                "sent": sent,
                "status": order.status,
                "order_id": order.id,
                "key": order.key,
                "broker": order.broker,
                "mode": order.mode,
                "symbol": order.symbol,
                "side": order.side,
                "quantity": order.quantity,
                "entry": float(order.entry_price),
                "take_profit": float(order.take_profit),
                "stop_loss": float(order.stop_loss),
                "r": order.r_planned,
                "reason": order.reason,
            }
        }
