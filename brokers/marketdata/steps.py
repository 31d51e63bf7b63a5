"""Market data step types: fetch bars from a source, resample them to a coarser bar."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field

from brokers.marketdata.bars import PERIOD_PATTERN, MarketDataSource, bars_load, bars_ref, market_source, resample
from workflows.errors import StepError
from workflows.registry import Port, StepType, register

if TYPE_CHECKING:
    from workflows.engine import StepContext

Bar = Literal["1m", "5m", "15m", "1h", "1d", "1w"]
BARS_PORT = Port("bars", "bars", "OHLCV bars stored as a CSV artifact")


def _span(ref: dict[str, Any]) -> str:
    return f"{ref['rows']} {ref['symbol']} {ref['bar']} bars, {ref['first']} .. {ref['last']}"


class FetchBarsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=1, description="Ticker, usually {{symbol}} (the run's symbol)")
    period: str = Field(
        "1y",
        pattern=PERIOD_PATTERN,
        description="How far back from the last bar, in calendar time: 30d, 2w, 6m, 1y, 5y or max",
    )
    bar: Bar = Field("1d", description="Bar size; intraday bars are in New York time")
    source: Literal["default", "bundled", "ibkr", "upload"] = Field(
        "default",
        description=(
            "default: the installation's MARKET_DATA_SOURCE; bundled: real historical CSVs shipped with the app; "
            "ibkr: Interactive Brokers; upload: bars you uploaded for this symbol"
        ),
    )
    end: date | None = Field(None, description="Last date to include; empty means the latest available bar")


@register
class FetchBars(StepType):
    name = "market.fetch_bars"
    label = "Fetch bars"
    category = "data"
    description = (
        "Loads OHLCV bars for a symbol from a market data source over a period counted back from the "
        "end date (or the latest bar). Bundled data is real but covers fixed date ranges; splits are adjusted."
    )
    Params = FetchBarsParams
    outputs = (BARS_PORT,)
    queue = "default"
    time_limit = 60
    idempotent = True
    tags = frozenset({"data_source"})

    @classmethod
    def queue_for(cls, params: dict[str, Any]) -> str:
        # IBKR requests go to the one ibkr worker process (DESIGN §5): one connection with its
        # own clientId, and one pacing limiter for IB's historical-data rules.
        source = params.get("source", "default")
        return "ibkr" if (settings.MARKET_DATA_SOURCE if source == "default" else source) == "ibkr" else cls.queue

    def run(self, ctx: StepContext, inputs: dict[str, Any], params: FetchBarsParams) -> dict[str, Any]:
        source = settings.MARKET_DATA_SOURCE if params.source == "default" else params.source
        if source == "upload":
            from brokers.marketdata.uploads import UploadedSource  # on use: the bundled default stays light

            data_source: MarketDataSource = UploadedSource(owner_id=ctx.owner_id)  # only the owner's uploads
        else:
            data_source = market_source(source)
        df = data_source.bars(symbol=params.symbol, bar=params.bar, period=params.period, end=params.end)
        ref = bars_ref(df, symbol=params.symbol.strip().upper(), bar=params.bar, source=source)
        ctx.log(f"Fetched {_span(ref)} ({params.period} from {source})")
        return {"bars": ref}


class ResampleParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Bar = Field(description="Target bar size; must be coarser than the input bars")


@register
class Resample(StepType):
    name = "market.resample"
    label = "Resample bars"
    category = "data"
    description = (
        "Aggregates bars to a coarser bar size (e.g. 1m to 1h, 1d to 1w). Intraday bars never span two "
        "sessions and start at the session open; weekly bars are labelled with the week's first session."
    )
    Params = ResampleParams
    inputs = (BARS_PORT,)
    outputs = (BARS_PORT,)
    queue = "default"
    time_limit = 60
    idempotent = True

    def run(self, ctx: StepContext, inputs: dict[str, Any], params: ResampleParams) -> dict[str, Any]:
        source_ref = inputs["bars"]
        df = bars_load(source_ref)
        source_bar = source_ref.get("bar", "")
        out = resample(df, source_bar=source_bar, to=params.to)
        ref = bars_ref(out, symbol=source_ref.get("symbol", ""), bar=params.to, source=source_ref.get("source", ""))
        ctx.log(f"Resampled {len(df)} {source_bar} bars to {_span(ref)}")
        return {"bars": ref}


class PlaceOrderParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    broker: Literal["default", "paper", "ibkr"] = Field(
        "default", description="default: the BROKER setting (paper unless set); paper: simulated; ibkr: IBKR"
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
        broker = params.get("broker", "default")
        return "ibkr" if (settings.BROKER if broker == "default" else broker) == "ibkr" else cls.queue

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
