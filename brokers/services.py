"""Writes for orders: the trading gate, placing a bracket once, broker events, cancels, the kill switch.

`order_place` is the one way an order reaches a broker. Right before sending, in code, it checks
(DESIGN §7): the kill switch; for a real broker the global trading switch; for a live account
also the workflow's live switch and TRADING_MODE=live (the IBKR adapter then checks the account
and port); the most an order may be worth; the most symbols held at once; today's realised loss.
A refusal is an Order row with status BLOCKED and the reasons, never a send. The order's key
comes from (run, node): a second delivery of the same step finds the row and sends nothing; a
row left SUBMITTING by a crash is sent again only through the broker's reconcile (IBKR: open and
completed orders with that orderRef), so nothing is ever sent twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from brokers.broker import BracketOrder, Broker, BrokerError, BrokerUnavailable, ExecutionEvent, StatusEvent
from brokers.models import ORDER_SENT, Fill, Order, OrderStatus, TradingControl
from brokers.selectors import open_symbols, realized_today, trading_control
from workflows.errors import ApplicationError

logger = logging.getLogger(__name__)

BROKERS = ("paper", "ibkr")


def broker_name(name: str) -> str:
    name = settings.BROKER if name in ("", "default") else name
    if name not in BROKERS:
        raise ApplicationError(f'Unknown broker "{name}"; use paper or ibkr')
    return name


def broker_mode(name: str) -> str:
    return "paper" if name == "paper" else settings.TRADING_MODE


def broker_get(name: str) -> Broker:
    """The broker by name. IBKR's talks to the one connection of the process (the ibkr worker)."""
    name = broker_name(name)
    if name == "paper":
        from brokers.paper import PaperBroker

        return PaperBroker()
    from brokers.ibkr_orders import IbkrBroker

    return IbkrBroker(on_status=order_status_apply, on_execution=order_execution_apply)


def trading_gate(
    *, control: TradingControl, broker: str, mode: str, live_allowed: bool, symbol: str, notional: Decimal
) -> list[str]:
    """Every reason this order may not be sent now; empty when it may."""
    reasons = []
    if control.kill_switch:
        since = f" since {timezone.localtime(control.kill_switch_at):%Y-%m-%d %H:%M}" if control.kill_switch_at else ""
        why = f": {control.kill_switch_reason}" if control.kill_switch_reason else ""
        reasons.append(f"The kill switch is on{since}{why}; no new orders")
    if broker != "paper" and not control.trading_enabled:
        reasons.append(f"The global trading switch is off: no order goes to {broker.upper()}")
    if mode == "live":
        if settings.TRADING_MODE != "live":
            reasons.append("TRADING_MODE is not live: no order goes to a live account")
        if not live_allowed:
            reasons.append("Live trading is off for this workflow (its live switch): paper only")
    if notional > control.max_notional:
        reasons.append(
            f"The order is worth {notional:,.2f}, over the most one order may be ({control.max_notional:,.2f})"
        )
    held = open_symbols(broker=broker)
    if symbol not in held and len(held) >= control.max_open_positions:
        reasons.append(
            f"{len(held)} symbols are already held or being entered ({', '.join(sorted(held))}); "
            f"the most is {control.max_open_positions}"
        )
    loss = -realized_today(broker=broker)
    if control.daily_loss_limit and loss >= control.daily_loss_limit:
        reasons.append(f"Today's realised loss {loss:,.2f} has reached the daily limit {control.daily_loss_limit:,.2f}")
    return reasons


@dataclass
class OrderRequest:
    key: str
    symbol: str
    side: str
    quantity: int
    entry: float
    take_profit: float
    stop_loss: float
    tif: str = "GTC"
    r_planned: float | None = None
    placed_after: str = ""
    data_source: str = ""


def _dec(value: float) -> Decimal:
    return Decimal(str(round(float(value), 6)))


def order_place(
    *,
    request: OrderRequest,
    broker: str,
    owner=None,
    run_id: int | None = None,
    step_run_id: int | None = None,
    decision_id: int | None = None,
    live_allowed: bool = False,
    client: Broker | None = None,
) -> Order:
    """Send a bracket order once per key, behind the trading gate; the Order row says what happened."""
    broker = broker_name(broker)
    mode = broker_mode(broker)
    bracket = BracketOrder(
        key=request.key,
        symbol=request.symbol,
        side=request.side,  # type: ignore[arg-type]
        quantity=request.quantity,
        entry=request.entry,
        take_profit=request.take_profit,
        stop_loss=request.stop_loss,
        tif=request.tif,  # type: ignore[arg-type]
    )
    with transaction.atomic():
        control = TradingControl.objects.select_for_update().get(id=trading_control().id)
        order = Order.objects.select_for_update().filter(key=request.key).first()
        if order is not None and order.status in ORDER_SENT and order.status != OrderStatus.SUBMITTING:
            return order  # sent before: a redelivery sends nothing
        fields: dict[str, Any] = {
            "run_id": run_id,
            "step_run_id": step_run_id,
            "decision_id": decision_id,
            "owner": owner,
            "broker": broker,
            "mode": mode,
            "symbol": request.symbol,
            "side": request.side,
            "quantity": request.quantity,
            "entry_price": _dec(request.entry),
            "take_profit": _dec(request.take_profit),
            "stop_loss": _dec(request.stop_loss),
            "tif": request.tif,
            "r_planned": request.r_planned,
            "placed_after": request.placed_after,
            "data_source": request.data_source,
        }
        if order is None or order.status == OrderStatus.BLOCKED:
            reasons = trading_gate(
                control=control,
                broker=broker,
                mode=mode,
                live_allowed=live_allowed,
                symbol=request.symbol,
                notional=_dec(bracket.notional),
            )
            status = OrderStatus.BLOCKED if reasons else OrderStatus.SUBMITTING
            order, _ = Order.objects.update_or_create(
                key=request.key, defaults={**fields, "status": status, "reason": "; ".join(reasons)}
            )
            if reasons:
                logger.warning("order %s blocked: %s", request.key, "; ".join(reasons))
                return order
    # Committed as SUBMITTING before anything leaves: a crash from here on is reconciled, not resent.
    client = client or broker_get(broker)
    if broker != "paper":
        _preview(order, client, bracket)
    try:
        placed = client.place_bracket(bracket)
    except BrokerUnavailable:
        raise  # the step is retried; the retry reconciles with the broker first
    except BrokerError as exc:
        Order.objects.filter(id=order.id).update(status=OrderStatus.REJECTED, reason=str(exc)[:2000])
        order.refresh_from_db()
        return order
    legs = {leg: {"id": broker_id, "status": placed.status} for leg, broker_id in placed.broker_ids.items()}
    with transaction.atomic():
        order = Order.objects.select_for_update().get(id=order.id)
        if order.status == OrderStatus.SUBMITTING:  # events may have moved it on already
            order.status = placed.status
        order.legs = {**legs, **order.legs}
        order.account = placed.account or order.account
        if placed.message or placed.reconciled:
            note = "Found at the broker under its key; nothing was sent again. " if placed.reconciled else ""
            order.reason = (note + placed.message).strip()
        order.save()
    if broker == "paper" and order.status == OrderStatus.SUBMITTED:
        from brokers.paper import paper_order_process

        order = paper_order_process(order_id=order.id)
    if trading_control().kill_switch and order.status == OrderStatus.SUBMITTED:
        # The switch went on while this order was being sent: it must not stay working.
        order_cancel(order=order, reason="Cancelled by the kill switch", client=client)
        order.refresh_from_db()
    return order


def _preview(order: Order, client: Broker, bracket: BracketOrder) -> None:
    """The broker's margin and commission estimate, kept with the order. It never stops the order."""
    try:
        preview = client.what_if(bracket)
    except Exception as exc:  # a preview is information only; the gate above decided
        preview = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    Order.objects.filter(id=order.id).update(preview=preview)


_STATUS_WORDS = {
    "filled": "filled",
    "cancelled": "cancelled",
    "apicancelled": "cancelled",
    "inactive": "rejected",
    "submitted": "submitted",
    "presubmitted": "submitted",
    "pendingsubmit": "submitted",
    "apipending": "submitted",
    "pendingcancel": "submitted",
}


@transaction.atomic
def order_status_apply(event: StatusEvent) -> Order | None:
    """A broker's status report for one leg, applied to our Order row."""
    order = Order.objects.select_for_update().filter(key=event.key).first()
    if order is None:
        logger.warning("status for unknown order key %s (%s %s)", event.key, event.leg, event.status)
        return None
    word = _STATUS_WORDS.get(event.status.replace(" ", "").lower(), event.status.lower())
    if word == "cancelled" and event.message:
        # ib_async reports some rejections as Cancelled with the error; a cancel we asked for has no message.
        word = "rejected"
    leg = order.legs.setdefault(event.leg, {})
    leg.update({"status": word, "broker_status": event.status})
    if event.broker_id is not None:
        leg["id"] = event.broker_id
    now = timezone.now()
    if event.leg == "entry":
        if word == "filled" and order.status in (OrderStatus.SUBMITTING, OrderStatus.SUBMITTED):
            order.status, order.filled_at = OrderStatus.FILLED, now
            order.filled_quantity = int(event.filled or order.quantity)
            if event.avg_price:
                order.avg_entry_price = _dec(event.avg_price)
        elif word == "cancelled" and order.status in (OrderStatus.SUBMITTING, OrderStatus.SUBMITTED):
            order.status = OrderStatus.CANCELLED
        elif word == "rejected" and order.status in (OrderStatus.SUBMITTING, OrderStatus.SUBMITTED):
            order.status, order.reason = OrderStatus.REJECTED, event.message or order.reason
        elif word == "submitted" and order.status == OrderStatus.SUBMITTING:
            order.status = OrderStatus.SUBMITTED
    elif word == "filled" and order.status == OrderStatus.FILLED:
        order.status, order.closed_at, order.exit_reason = OrderStatus.CLOSED, now, event.leg
        if event.avg_price:
            order.avg_exit_price = _dec(event.avg_price)
            sign = 1 if order.side == "BUY" else -1
            entry = order.avg_entry_price or order.entry_price
            gross = (order.avg_exit_price - entry) * order.quantity * sign
            order.realized_pnl = gross - order.commission
    order.save()
    return order


@transaction.atomic
def order_execution_apply(event: ExecutionEvent) -> Fill | None:
    """A broker's fill, recorded once (by exec id) with its commission and the position it moves."""
    from brokers.paper import position_apply_fill

    order = Order.objects.select_for_update().filter(key=event.key).first()
    if order is None or Fill.objects.filter(exec_id=event.exec_id).exists():
        return None
    quantity = round(event.quantity)
    fill = Fill.objects.create(
        order=order,
        leg=event.leg,
        exec_id=event.exec_id,
        quantity=quantity,
        price=_dec(event.price),
        commission=_dec(event.commission),
        time=event.time or timezone.now(),
    )
    order.commission += fill.commission
    order.save(update_fields=["commission", "updated_at"])
    buy = (order.side == "BUY") == (event.leg == "entry")
    position_apply_fill(
        broker=order.broker,
        account=order.account,
        symbol=order.symbol,
        quantity=quantity if buy else -quantity,
        price=fill.price,
        commission=fill.commission,
    )
    return fill


def order_cancel(*, order: Order, reason: str = "Cancelled by user", client: Broker | None = None) -> Order:
    """Cancel a working order at its broker. An entry that already filled keeps its exits (its stop protects it)."""
    if order.status == OrderStatus.FILLED:
        raise ApplicationError(
            f"The entry of order {order.id} has filled: the position is open and keeps its stop-loss and take-profit"
        )
    if order.status not in (OrderStatus.SUBMITTING, OrderStatus.SUBMITTED):
        raise ApplicationError(f"Order {order.id} is {order.get_status_display().lower()}; nothing to cancel")
    if order.broker != "paper" and client is None:
        # Only the ibkr worker holds the IBKR connection (one clientId): it does the cancel.
        from brokers.tasks import cancel_order_task

        order_id = order.id
        transaction.on_commit(lambda: cancel_order_task.apply_async(args=[order_id, reason], queue="ibkr"))
        return order
    try:
        (client or broker_get(order.broker)).cancel(order.key)
    except BrokerError as exc:
        raise ApplicationError(f"The broker could not cancel order {order.id}: {exc}") from exc
    with transaction.atomic():
        order = Order.objects.select_for_update().get(id=order.id)
        if order.status in (OrderStatus.SUBMITTING, OrderStatus.SUBMITTED):
            order.status, order.reason = OrderStatus.CANCELLED, reason
            for leg in order.legs.values():
                leg["status"] = "cancelled"
            order.save()
    return order


def kill_switch_set(*, on: bool, user, reason: str = "") -> tuple[TradingControl, list[str]]:
    """Turn the kill switch on (no new orders; working entries cancelled) or off. Returns cancel problems."""
    with transaction.atomic():
        control = TradingControl.objects.select_for_update().get(id=trading_control().id)
        control.kill_switch = on
        control.kill_switch_reason = (reason or "").strip()[:500] if on else ""
        control.kill_switch_at = timezone.now() if on else None
        control.updated_by = user
        control.save()
    problems = []
    if on:
        logger.warning("kill switch turned on by %s: %s", user, reason)
        for order in Order.objects.filter(status__in=[OrderStatus.SUBMITTING, OrderStatus.SUBMITTED]):
            try:
                order_cancel(order=order, reason="Cancelled by the kill switch")
            except ApplicationError as exc:
                problems.append(exc.message)
    return control, problems


@transaction.atomic
def trading_control_update(*, user, **values: Any) -> TradingControl:
    """Change the global trading switch or a limit; the kill switch has its own service."""
    control = TradingControl.objects.select_for_update().get(id=trading_control().id)
    allowed = {"trading_enabled", "max_notional", "max_open_positions", "daily_loss_limit"}
    unknown = set(values) - allowed
    if unknown:
        raise ApplicationError(f"Unknown trading settings: {', '.join(sorted(unknown))}")
    for name in ("max_notional", "daily_loss_limit"):
        if name in values and (values[name] is None or Decimal(values[name]) < 0):
            raise ApplicationError(f"{name} must be zero or more")
    if "max_open_positions" in values and int(values["max_open_positions"]) < 0:
        raise ApplicationError("max_open_positions must be zero or more")
    for name, value in values.items():
        setattr(control, name, value)
    control.updated_by = user
    control.save()
    return control
