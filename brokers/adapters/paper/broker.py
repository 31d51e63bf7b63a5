"""The paper broker (the default): bracket orders filled against the bars that follow the decision.

An order is placed after the last bar its decision saw (`Order.placed_after`); the daily bars
of the next sessions fill it by the rules of `brokers.adapters.paper.fills` (1-minute bars, where the
data has them, decide a day that touches both the stop and the target; else the stop is
assumed). The simulation is recomputed from placement each time (`paper_order_process`: right
after placing, then on every orders sync), so a fill is recorded once, whatever the number of
syncs. Cash, positions and equity live in our tables: Fill and Position rows, AccountSnapshot.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from brokers.adapters.base import (
    AccountSummary,
    BracketOrder,
    BrokerError,
    BrokerPosition,
    ConnectionStatus,
    OpenOrder,
    PlacedOrder,
)
from brokers.adapters.paper.fills import PaperCosts, simulate_bracket
from brokers.marketdata.bars import NEW_YORK, MarketDataSource, market_source, session_dates
from brokers.models import ORDER_OPEN, AccountSnapshot, Fill, Order, OrderStatus, Position
from brokers.orders.services import bracket_of, position_apply_fill
from workflows.errors import StepError

ACCOUNT = "PAPER"
NOT_AT_BROKER = (OrderStatus.SUBMITTING, OrderStatus.BLOCKED)
# Calendar days of bars looked at after placement (exits of an open position included), and within
# which the entry must be reached: a working paper order past that is cancelled as expired.
HORIZON_DAYS = 5 * 365
ENTRY_EXPIRY_DAYS = 366


def paper_costs() -> PaperCosts:
    return PaperCosts(
        commission_per_share=settings.PAPER_COMMISSION_PER_SHARE,
        commission_min=settings.PAPER_COMMISSION_MIN,
        slippage_bps=settings.PAPER_SLIPPAGE_BPS,
    )


def _source(order: Order) -> MarketDataSource:
    # The order's owner: a private source (uploads) reads only their data.
    return market_source(order.data_source or "default", owner_id=order.owner_id)


def _bars_after(order: Order) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Daily bars after placement (up to the horizon), and 1-minute bars of those days where there are any."""
    placed = pd.Timestamp(order.placed_after[:10]) if order.placed_after else None
    if placed is None:
        raise StepError(f"Paper order {order.key} has no placement bar; it cannot be filled")
    end = min(placed.date() + timedelta(days=HORIZON_DAYS), date.today())
    source = _source(order)
    try:
        daily = source.bars(symbol=order.symbol, bar="1d", period="max", end=end)
    except StepError:
        return pd.DataFrame(columns=["open", "high", "low", "close", "volume"]), None
    daily = daily[session_dates(daily.index) > placed]
    if daily.empty:
        return daily, None
    try:
        minutes = source.bars(symbol=order.symbol, bar="1m", period="max", end=end)
    except StepError:  # most data has no 1-minute bars: the stop is assumed on an ambiguous day
        return daily, None
    days = session_dates(minutes.index)
    minutes = minutes[(days > placed) & (days <= session_dates(daily.index)[-1])]
    return daily, (minutes if not minutes.empty else None)


def _aware(ts: pd.Timestamp) -> Any:
    # Daily bars are exchange dates: their fills are stamped at the New York close.
    if ts.tz is None:
        ts = (ts.normalize() + pd.Timedelta(hours=16)).tz_localize(NEW_YORK)
    return ts.to_pydatetime()


@transaction.atomic
def paper_order_process(*, order_id: int) -> Order:
    """Fill a working paper order from the bars that arrived since it was placed."""
    order = Order.objects.select_for_update().get(id=order_id)
    if order.broker != "paper" or order.status not in (OrderStatus.SUBMITTED, OrderStatus.FILLED):
        return order
    daily, minutes = _bars_after(order)
    if daily.empty:
        return order
    result = simulate_bracket(bracket_of(order), daily, lower_bars=minutes, costs=paper_costs())
    placed = pd.Timestamp(order.placed_after[:10])
    if result.status == "working" and session_dates(daily.index)[-1] >= placed + pd.Timedelta(days=ENTRY_EXPIRY_DAYS):
        order.status = OrderStatus.CANCELLED
        entry = float(order.entry_price)
        order.reason = f"Expired: the entry {entry:g} was not reached within {ENTRY_EXPIRY_DAYS} days"
        for leg in ("entry", "take_profit", "stop_loss"):
            order.legs.setdefault(leg, {})["status"] = "cancelled"
        order.save()
        return order
    recorded = set(order.fills.values_list("leg", flat=True))
    for fill in result.fills:
        if fill.leg in recorded:
            continue
        price, commission = Decimal(str(fill.price)), Decimal(str(fill.commission))
        buy = (order.side == "BUY") == (fill.leg == "entry")
        Fill.objects.create(
            order=order,
            leg=fill.leg,
            exec_id=f"{order.key}:{fill.leg}",
            quantity=fill.quantity,
            price=price,
            commission=commission,
            time=_aware(fill.time),
            note=fill.note[:300],
        )
        position_apply_fill(
            broker="paper",
            account=ACCOUNT,
            symbol=order.symbol,
            quantity=fill.quantity if buy else -fill.quantity,
            price=price,
            commission=commission,
        )
        order.commission += commission
        order.legs.setdefault(fill.leg, {})["status"] = "filled"
        if fill.leg == "entry":
            order.status, order.filled_at = OrderStatus.FILLED, _aware(fill.time)
            order.filled_quantity, order.avg_entry_price = fill.quantity, price
        else:
            order.status, order.closed_at = OrderStatus.CLOSED, timezone.now()
            order.avg_exit_price, order.exit_reason = price, fill.leg
            order.realized_pnl = Decimal(str(round(result.realized_pnl, 6)))
            other = "stop_loss" if fill.leg == "take_profit" else "take_profit"
            order.legs.setdefault(other, {})["status"] = "cancelled"
    if order.status == OrderStatus.FILLED:
        Position.objects.filter(broker="paper", account=ACCOUNT, symbol=order.symbol).update(
            last_price=Decimal(str(round(float(daily["close"].iloc[-1]), 6)))
        )
    order.save()
    return order


class PaperBroker:
    """The Broker interface over our own tables. Orders are rows written by `order_place` first."""

    name = "paper"

    def place_bracket(self, order: BracketOrder) -> PlacedOrder:
        row = Order.objects.filter(key=order.key).first()
        if row is None:
            raise BrokerError(f"Paper order {order.key} has no order row; orders go through order_place")
        ids = {leg: f"paper-{row.id}-{leg}" for leg in ("entry", "take_profit", "stop_loss")}
        if row.status not in (OrderStatus.SUBMITTING, OrderStatus.BLOCKED):
            return PlacedOrder(key=order.key, status=row.status, broker_ids=ids, account=ACCOUNT, reconciled=True)
        return PlacedOrder(key=order.key, status=OrderStatus.SUBMITTED, broker_ids=ids, account=ACCOUNT)

    def find(self, key: str) -> PlacedOrder | None:
        # Sending a paper order is writing its row as SUBMITTED: a SUBMITTING row never got that far.
        row = Order.objects.filter(key=key, broker=self.name).exclude(status__in=NOT_AT_BROKER).first()
        if row is None:
            return None
        ids = {leg: f"paper-{row.id}-{leg}" for leg in ("entry", "take_profit", "stop_loss")}
        return PlacedOrder(key=key, status=row.status, broker_ids=ids, account=ACCOUNT, reconciled=True)

    def cancel(self, key: str) -> None:
        row = Order.objects.filter(key=key, broker=self.name).first()
        if row is None:
            raise BrokerError(f"There is no paper order {key}")
        if row.status == OrderStatus.FILLED:
            raise BrokerError(
                f"The entry of {key} has filled: the position is open and keeps its stop-loss and take-profit"
            )
        if row.status not in (OrderStatus.SUBMITTING, OrderStatus.SUBMITTED):
            raise BrokerError(f"Paper order {key} is {row.get_status_display().lower()}; nothing to cancel")

    def open_orders(self) -> list[OpenOrder]:
        out = []
        for row in Order.objects.filter(broker=self.name, status__in=ORDER_OPEN):
            entry_open = row.status != OrderStatus.FILLED
            legs = ["entry", "take_profit", "stop_loss"] if entry_open else ["take_profit", "stop_loss"]
            prices = {"entry": row.entry_price, "take_profit": row.take_profit, "stop_loss": row.stop_loss}
            for leg in legs:
                side = row.side if leg == "entry" else ("SELL" if row.side == "BUY" else "BUY")
                out.append(
                    OpenOrder(
                        key=row.key,
                        symbol=row.symbol,
                        side=side,  # type: ignore[arg-type]
                        quantity=row.quantity,
                        leg=leg,  # type: ignore[arg-type]
                        status="working" if leg == "entry" or not entry_open else "held",
                        broker_id=f"paper-{row.id}-{leg}",
                        price=float(prices[leg]),
                    )
                )
        return out

    def positions(self) -> list[BrokerPosition]:
        return [
            BrokerPosition(
                symbol=p.symbol,
                quantity=p.quantity,
                avg_cost=float(p.avg_cost),
                market_price=float(p.last_price) if p.last_price is not None else None,
                unrealized_pnl=float(p.unrealized_pnl) if p.unrealized_pnl is not None else None,
                realized_pnl=float(p.realized_pnl),
            )
            for p in Position.objects.filter(broker=self.name).exclude(quantity=0)
        ]

    def account_summary(self) -> AccountSummary:
        cash = Decimal(str(settings.PAPER_STARTING_CASH))
        for fill in Fill.objects.filter(order__broker=self.name).select_related("order"):
            buy = (fill.order.side == "BUY") == (fill.leg == "entry")
            cash += (-1 if buy else 1) * fill.price * fill.quantity - fill.commission
        held = Position.objects.filter(broker=self.name).exclude(quantity=0)
        value = sum(((p.last_price or p.avg_cost) * p.quantity for p in held), Decimal(0))
        unrealized = sum((p.unrealized_pnl or Decimal(0) for p in held), Decimal(0))
        realized = Position.objects.filter(broker=self.name).aggregate(v=Sum("realized_pnl"))["v"] or Decimal(0)
        return AccountSummary(
            account=ACCOUNT,
            mode="paper",
            currency="USD",
            equity=float(cash + value),
            cash=float(cash),
            realized_pnl=float(realized),
            unrealized_pnl=float(unrealized),
        )

    def connection_status(self) -> ConnectionStatus:
        return ConnectionStatus(
            broker=self.name,
            connected=True,
            account=ACCOUNT,
            mode="paper",
            detail="Simulated in this application: orders fill against the bars that follow the decision",
            checked_at=timezone.now(),
        )

    def what_if(self, order: BracketOrder) -> dict[str, Any]:
        costs = paper_costs()
        return {
            "initMarginChange": order.notional,
            "commission": max(costs.commission_min, order.quantity * costs.commission_per_share),
        }

    def snapshot(self) -> AccountSnapshot:
        summary = self.account_summary()
        return AccountSnapshot.objects.create(
            broker=self.name,
            account=ACCOUNT,
            mode="paper",
            taken_at=timezone.now(),
            equity=Decimal(str(round(summary.equity, 6))),
            cash=Decimal(str(round(summary.cash, 6))),
            realized_pnl=Decimal(str(round(summary.realized_pnl, 6))),
            unrealized_pnl=Decimal(str(round(summary.unrealized_pnl, 6))),
        )
