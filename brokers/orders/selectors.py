"""Reads for orders, positions, accounts and the trading switches."""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal

from django.conf import settings
from django.db.models import QuerySet, Sum
from django.utils import timezone

from brokers.models import ORDER_OPEN, AccountSnapshot, Order, OrderStatus, Position, TradingControl


def trading_control() -> TradingControl:
    """The one row of switches and limits, created on first use with the installation's defaults."""
    control, _ = TradingControl.objects.get_or_create(
        id=1,
        defaults={
            "trading_enabled": settings.TRADING_ENABLED,
            "max_notional": Decimal(str(settings.RISK_MAX_NOTIONAL)),
            "max_open_positions": settings.RISK_MAX_OPEN_POSITIONS,
            "daily_loss_limit": Decimal(str(settings.RISK_DAILY_LOSS_LIMIT)),
        },
    )
    return control


def orders_visible(*, user) -> QuerySet[Order]:
    qs = Order.objects.select_related("run__workflow", "decision", "owner")
    return qs if user.is_staff else qs.filter(owner=user)


def orders_open(*, broker: str | None = None) -> QuerySet[Order]:
    qs = Order.objects.filter(status__in=ORDER_OPEN)
    return qs.filter(broker=broker) if broker else qs


def open_symbols(*, broker: str) -> set[str]:
    """Symbols held or being entered at this broker: what max_open_positions counts."""
    working = set(orders_open(broker=broker).values_list("symbol", flat=True))
    held = set(Position.objects.filter(broker=broker).exclude(quantity=0).values_list("symbol", flat=True))
    return working | held


def start_of_today(now: datetime | None = None) -> datetime:
    now = timezone.localtime(now or timezone.now())
    return timezone.make_aware(datetime.combine(now.date(), time.min), now.tzinfo)


def realized_today(*, broker: str, now: datetime | None = None) -> Decimal:
    """Realised P&L (after commissions) of the orders of this broker closed today, local time."""
    total = Order.objects.filter(
        broker=broker, status=OrderStatus.CLOSED, closed_at__gte=start_of_today(now)
    ).aggregate(total=Sum("realized_pnl"))["total"]
    return total or Decimal(0)


def positions_visible(*, user) -> QuerySet[Position]:
    # Positions belong to the account, not a user: everyone signed in sees the book they trade.
    return Position.objects.exclude(quantity=0)


def equity_curve(*, broker: str) -> QuerySet[AccountSnapshot]:
    return AccountSnapshot.objects.filter(broker=broker).order_by("taken_at", "id")


# Pages and API: orders, the kill switch's report, broker connections, the equity curve, decisions.


def orders_working() -> QuerySet[Order]:
    """Orders whose entry is still working at a broker: what the kill switch cancels."""
    return Order.objects.filter(status__in=[OrderStatus.SUBMITTING, OrderStatus.SUBMITTED])


def kill_switch_outcome(*, order_ids: list[int], problems: list[str]) -> dict:
    """What became of the orders that were working when the kill switch went on.

    `order_ids`: the orders working just before; an IBKR cancel is done by the ibkr worker,
    so such an order may still be working here (`pending`)."""
    statuses = dict(Order.objects.filter(id__in=order_ids).values_list("id", "status"))
    cancelled = sorted(i for i, s in statuses.items() if s == OrderStatus.CANCELLED)
    pending = sorted(i for i, s in statuses.items() if s in (OrderStatus.SUBMITTING, OrderStatus.SUBMITTED))
    parts = [f"cancelled {len(cancelled)} working order{'s' if len(cancelled) != 1 else ''}"]
    if cancelled:
        parts[0] += " (" + ", ".join(f"#{i}" for i in cancelled) + ")"
    if pending:
        parts.append("cancel sent to the IBKR worker for " + ", ".join(f"#{i}" for i in pending))
    if problems:
        parts.append("could not cancel: " + "; ".join(problems))
    return {"cancelled": cancelled, "pending": pending, "problems": list(problems), "message": "; ".join(parts)}


def broker_connections() -> list[dict]:
    """Connection status of each registered broker the pages show (simulations, and the configured one).

    The web process never opens an IBKR connection itself (the ibkr worker holds the one connection
    and its last word is shown); any failure is shown, not raised."""
    from brokers.adapters.registry import brokers_listed

    return [kind.connection() for kind in brokers_listed() if kind.shown()]


def equity_points(*, broker: str, max_points: int = 2000) -> list[tuple[datetime, Decimal]]:
    """(time, equity) of the broker's snapshots, thinned evenly to at most `max_points` (the last kept)."""
    rows = list(equity_curve(broker=broker).values_list("taken_at", "equity"))
    if len(rows) <= max_points:
        return rows
    step = -(-len(rows) // max_points)
    thinned = rows[::step]
    if thinned[-1] != rows[-1]:
        thinned.append(rows[-1])
    return thinned
