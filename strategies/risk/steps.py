"""Risk step types: the R check and position sizing, in code (DESIGN §7 rule 3)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from brokers.adapters.registry import broker_choice, broker_queue, broker_schema
from brokers.marketdata.bars import bars_load, iso_date
from workflows.errors import StepError
from workflows.registry import Port, StepType, register

if TYPE_CHECKING:
    from workflows.engine import StepContext


# Risk: the R check and position sizing, in code (DESIGN §7 rule 3). The model's own R is never read.

RISK_PORT = Port("risk", "risk_check", "Passed or not, with every reason, R and profit margin computed in code")
PLAN_PORT = Port("plan", "order_plan", "The checked trade with its quantity, ready for broker.place_order")


class RCheckParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_r: float = Field(1.0, gt=0, le=100, description="Least R-coefficient (reward / risk) to trade")
    min_profit: float = Field(
        0.05, ge=0, lt=1, description="Least profit margin |target - entry| / entry, as a fraction (0.05 = 5%)"
    )
    entry_band: float = Field(
        0.03, gt=0, le=1, description="Most the entry may be from the last fetched price, as a fraction (0.03 = 3%)"
    )
    target: Literal["conservative", "aggressive"] = Field(
        "conservative", description="Which take-profit of the decision is the order's target"
    )


@register
class RCheck(StepType):
    name = "risk.r_check"
    label = "R check"
    category = "risk"
    description = (
        "Computes the R-coefficient ((target - entry) / (entry - stop) for a long, the mirror for a short) and the "
        "profit margin from the decision's levels and the latest fetched price, and checks them against the "
        "thresholds; stop and target on the right sides, entry near the last price. HOLD never passes."
    )
    Params = RCheckParams
    inputs = (
        Port("decision", "decision", "From ai.decide or ai.agent_team"),
        Port("bars", "bars", "The latest fetched bars: the price the entry is checked against", required=False),
    )
    outputs = (RISK_PORT,)
    tags = frozenset({"risk_check"})
    time_limit = 30

    def run(self, ctx: StepContext, inputs: dict[str, Any], params: RCheckParams) -> dict[str, Any]:
        from strategies.risk.rules import RiskLimits, risk_check

        decision = inputs["decision"]
        if not isinstance(decision, dict):
            raise StepError("The decision input is not a decision; connect ai.decide or ai.agent_team")
        bars_ref = inputs.get("bars")
        if isinstance(bars_ref, dict):
            bars = bars_load(bars_ref)
            if bars.empty:
                raise StepError("The bars input is empty: there is no latest price to check against")
            last_price, last_date = float(bars["close"].iloc[-1]), iso_date(bars.index[-1])
            source = str(bars_ref.get("source") or "")
        else:
            last_price, last_date, source = decision.get("last_close"), decision.get("last_date"), ""
        target_field = f"take_profit_{params.target}"
        limits = RiskLimits(min_r=params.min_r, min_profit=params.min_profit, entry_band=params.entry_band)
        action = decision.get("action")
        check = risk_check(
            action=action,
            entry=decision.get("entry"),
            stop=decision.get("stop_loss"),
            target=decision.get(target_field),
            last_price=last_price,
            limits=limits,
        )
        for reason in check.reasons:
            ctx.log(reason, level="info" if check.passed else "warning")
        ctx.log(f"R check {'passed' if check.passed else 'failed'}")
        return {
            "risk": {
                "checked_by": self.name,
                "passed": check.passed,
                "reasons": list(check.reasons),
                "symbol": decision.get("symbol") or ctx.symbol,
                "action": action if action in ("BUY", "SELL", "HOLD") else str(action),
                "side": {"long": "BUY", "short": "SELL"}.get(check.side, ""),
                "entry": check.entry,
                "stop_loss": check.stop,
                "take_profit": check.target,
                "target_kind": params.target,
                "r": check.r,
                "profit_margin": check.profit_margin,
                "risk_per_share": check.risk_per_share,
                "last_price": check.last_price,
                "last_date": last_date,
                "data_source": source,
                "limits": {"min_r": params.min_r, "min_profit": params.min_profit, "entry_band": params.entry_band},
                "decision_record_id": decision.get("record_id"),
                "analyst": decision.get("analyst"),
            }
        }

    result_template = "strategies/_risk_result.html"

    @classmethod
    def result_context(cls, step_run) -> dict[str, Any]:
        return _risk_context((step_run.outputs or {}).get("risk"))


def _risk_context(risk: Any) -> dict[str, Any]:
    margin = risk.get("profit_margin") if isinstance(risk, dict) else None
    return {"risk": risk, "margin_pct": None if margin is None else margin * 100}


class PositionSizeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    risk_pct: float = Field(0.01, gt=0, le=0.2, description="Equity risked per trade, as a fraction (0.01 = 1%)")
    max_position_pct: float = Field(
        0.10, gt=0, le=1, description="Most of the equity one position may be worth (0.10 = 10%)"
    )
    max_notional: float = Field(25_000, gt=0, description="Most one position may be worth, in account currency")
    broker: Annotated[str, AfterValidator(broker_choice)] = Field(
        "default",
        description="Whose account equity sizes the trade: default is the BROKER setting",
        json_schema_extra=broker_schema,
    )


@register
class PositionSize(StepType):
    name = "risk.position_size"
    label = "Position size"
    category = "risk"
    description = (
        "Sizes a checked trade: risks a share of the account equity (entry to stop), capped by the most one "
        "position may be of the equity and by a most notional. Whole shares, rounded down; 0 means no trade."
    )
    Params = PositionSizeParams
    inputs = (RISK_PORT,)
    outputs = (PLAN_PORT,)
    time_limit = 60

    @classmethod
    def queue_for(cls, params: dict[str, Any]) -> str:
        return broker_queue(
            params.get("broker", "default"), cls.queue
        )  # IBKR equity comes through the ibkr worker's connection

    def run(self, ctx: StepContext, inputs: dict[str, Any], params: PositionSizeParams) -> dict[str, Any]:
        from brokers.orders.services import broker_get
        from strategies.risk.rules import SizingRules, position_size

        risk = inputs["risk"]
        if not isinstance(risk, dict) or risk.get("checked_by") != "risk.r_check":
            raise StepError("The risk input does not come from risk.r_check")
        plan: dict[str, Any] = {**risk, "quantity": 0, "notional": 0.0}
        if not risk.get("passed"):
            ctx.log("No trade: the risk check did not pass")  # the plan keeps the check's reasons
            return {"plan": plan}
        account = broker_get(params.broker).account_summary()
        rules = SizingRules(
            risk_pct=params.risk_pct, max_position_pct=params.max_position_pct, max_notional=params.max_notional
        )
        sizing = position_size(equity=account.equity, entry=risk["entry"], stop=risk["stop_loss"], rules=rules)
        plan.update(
            quantity=sizing.quantity,
            notional=sizing.notional,
            equity=account.equity,
            sizing={
                "risk_amount": sizing.risk_amount,
                "limited_by": sizing.limited_by,
                "risk_pct": params.risk_pct,
                "max_position_pct": params.max_position_pct,
                "max_notional": params.max_notional,
            },
            reasons=list(sizing.reasons),
        )
        for reason in sizing.reasons:
            ctx.log(reason)
        return {"plan": plan}

    result_template = "strategies/_risk_result.html"

    @classmethod
    def result_context(cls, step_run) -> dict[str, Any]:
        return _risk_context((step_run.outputs or {}).get("plan"))
