"""Writes for orders: the trading gate, placing a bracket once, broker events, cancels, the kill switch.

`order_place` is the one way an order reaches a broker. Right before sending, in code, it checks
(DESIGN §7): the kill switch; for a real broker the global trading switch; for a live account
also the workflow's live switch and TRADING_MODE=live (the IBKR adapter then checks the account
and port); the most an order may be worth; the most symbols held at once; today's realised loss.
A refusal is an Order row with status BLOCKED and the reasons, never a send. The order's key
comes from (run, node): a second delivery of the same step finds the row and sends nothing; a
row left SUBMITTING by a crash is sent again only through the broker's reconcile (IBKR: open and
completed orders with that orderRef), so nothing is ever sent twice.

A cancelled run sends nothing: `order_place` reads the run's cancel under the run's row lock, in
the transaction that holds the TradingControl lock and writes the order, and `engine.run_cancel`
takes the same run lock, so each order is written wholly before a cancel (then
`orders_cancel_for_run`, a RUN_CANCELLED_HOOKS hook, cancels its unfilled legs) or after it (then
it is BLOCKED: "The run was cancelled"). A cancel that lands while the bracket is on its way is
seen again after the send, and the order cancelled there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from brokers.adapters.base import BracketOrder, Broker, BrokerError, BrokerUnavailable, ExecutionEvent, StatusEvent
from brokers.adapters.registry import broker_kind, broker_mode, source_name, source_queue
from brokers.models import ORDER_SENT, Fill, Order, OrderStatus, Position, TradingControl
from brokers.orders.selectors import open_symbols, realized_today, trading_control
from workflows.errors import ApplicationError
from workflows.models import Run

logger = logging.getLogger(__name__)

RUN_CANCELLED = "The run was cancelled"


def broker_get(name: str) -> Broker:
    """The broker by name ("default": the BROKER setting), from the registry of brokers/adapters/."""
    return broker_kind(name).create()


def trading_gate(
    *, control: TradingControl, broker: str, mode: str, live_allowed: bool, symbol: str, notional: Decimal
) -> list[str]:
    """Every reason this order may not be sent now; empty when it may."""
    reasons = []
    if control.kill_switch:
        since = f" since {timezone.localtime(control.kill_switch_at):%Y-%m-%d %H:%M}" if control.kill_switch_at else ""
        why = f": {control.kill_switch_reason}" if control.kill_switch_reason else ""
        reasons.append(f"The kill switch is on{since}{why}; no new orders")
    if not broker_kind(broker).simulated and not control.trading_enabled:
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
    if loss > 0 and loss >= control.daily_loss_limit:  # a limit of 0: any loss today stops new orders
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
    kind = broker_kind(broker)
    broker, mode = kind.name, broker_mode(kind)
    look_only: list[str] = []  # the gate's reasons when a SUBMITTING row may no longer be sent
    with transaction.atomic():
        control = TradingControl.objects.select_for_update().get(id=trading_control().id)
        # Same transaction, same order of locks as every order (TradingControl, then the run): a cancel
        # (engine.run_cancel locks the run) is wholly before this order is written or wholly after.
        cancelled = _run_cancelled(run_id)
        order = Order.objects.select_for_update().filter(key=request.key).first()
        if order is not None and order.status in ORDER_SENT and order.status != OrderStatus.SUBMITTING:
            sent_before = order  # a redelivery sends nothing
        elif order is not None and order.status == OrderStatus.SUBMITTING:
            # Left by a crash or a lost connection: what may go is exactly what was first written and
            # gated, never this request's values; and only if the gate still lets it.
            sent_before = None
            look_only = [RUN_CANCELLED] if cancelled else _gate(order, control=control, live_allowed=live_allowed)
        else:
            sent_before = None
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
                "data_source": source_name(request.data_source),
                "reason": "",
            }
            candidate = Order(key=request.key, **fields)
            bracket_of(candidate)  # an invalid bracket is refused before anything is written
            reasons = [RUN_CANCELLED] if cancelled else _gate(candidate, control=control, live_allowed=live_allowed)
            status = OrderStatus.BLOCKED if reasons else OrderStatus.SUBMITTING
            order, _ = Order.objects.update_or_create(
                key=request.key, defaults={**fields, "status": status, "reason": "; ".join(reasons)}
            )
            if reasons:
                logger.warning("order %s blocked: %s", request.key, "; ".join(reasons))
                return order
    client = client or broker_get(broker)
    if sent_before is not None:
        return _kill_check(sent_before, client)
    # Committed as SUBMITTING before anything leaves: a crash from here on is reconciled, not resent.
    bracket = bracket_of(order)
    try:
        if look_only:
            placed = client.find(order.key)
            if placed is None:
                reason = "; ".join(look_only) + " (it never reached the broker, so it was not sent)"
                Order.objects.filter(id=order.id).update(status=OrderStatus.BLOCKED, reason=reason)
                order.refresh_from_db()
                return order
        else:
            if not kind.simulated:
                _preview(order, client, bracket)
            placed = client.place_bracket(bracket)
    except BrokerUnavailable:
        raise  # the step is retried; the retry reconciles with the broker first
    except BrokerError as exc:
        Order.objects.filter(id=order.id).update(status=OrderStatus.REJECTED, reason=str(exc)[:2000])
        order.refresh_from_db()
        return order
    legs = {leg: {"id": broker_id, "status": placed.status} for leg, broker_id in placed.broker_ids.items()}
    with transaction.atomic():
        # The run's lock again (before the order's, as above): a cancel committed while the bracket was
        # on its way is seen here; one that comes later finds the order SUBMITTED and cancels it itself.
        cancelled = _run_cancelled(order.run_id)
        order = Order.objects.select_for_update().get(id=order.id)
        cancelled_on_the_way = order.status == OrderStatus.CANCELLED and placed.status == OrderStatus.SUBMITTED
        if order.status == OrderStatus.SUBMITTING or cancelled_on_the_way:
            # Events may have moved it on already. A cancel that found nothing at the broker yet
            # (CANCELLED) is wrong now that the broker has it: it is working, and cancelled below.
            order.status = placed.status
        order.legs = {**legs, **order.legs}
        order.account = placed.account or order.account
        if (placed.message or placed.reconciled) and order.status != OrderStatus.CANCELLED:
            note = "Found at the broker under its key; nothing was sent again. " if placed.reconciled else ""
            order.reason = (note + placed.message).strip()
        order.save()
    if cancelled and order.status in (OrderStatus.SUBMITTING, OrderStatus.SUBMITTED):
        return _run_cancel_check(order, client)
    if kind.simulated and order.status == OrderStatus.SUBMITTED:
        order = _paper_process_now_or_later(order)
    return _kill_check(order, client)


def _run_cancelled(run_id: int | None) -> bool:
    """Whether the order's run was cancelled, read under the run's row lock (the caller's transaction)."""
    if run_id is None:
        return False
    return bool(Run.objects.select_for_update().filter(id=run_id).values_list("cancel_requested", flat=True).first())


def _run_cancel_check(order: Order, client: Broker) -> Order:
    """The run was cancelled while this order was on its way to the broker: cancel it there now."""
    try:
        order_cancel(order=order, reason=f"{RUN_CANCELLED} while the order was being sent", client=client)
    except (ApplicationError, BrokerUnavailable) as exc:
        # Filled meanwhile (it keeps its exits), or the broker is away: the run's cancel hook tries too.
        logger.warning("run cancelled: order %s not cancelled: %s", order.key, exc)
    order.refresh_from_db()
    return order


def bracket_of(order: Order) -> BracketOrder:
    return BracketOrder(
        key=order.key,
        symbol=order.symbol,
        side=order.side,  # type: ignore[arg-type]
        quantity=order.quantity,
        entry=float(order.entry_price),
        take_profit=float(order.take_profit),
        stop_loss=float(order.stop_loss),
        tif=order.tif,  # type: ignore[arg-type]
    )


def _gate(order: Order, *, control: TradingControl, live_allowed: bool) -> list[str]:
    reasons = trading_gate(
        control=control,
        broker=order.broker,
        mode=order.mode,
        live_allowed=live_allowed,
        symbol=order.symbol,
        notional=order.quantity * order.entry_price,
    )
    if broker_kind(order.broker).simulated and not order.placed_after:
        reasons.append("The plan has no last bar (last_date), so the paper broker cannot know which bars fill it")
    return reasons


def _paper_process_now_or_later(order: Order) -> Order:
    from brokers.adapters.paper.broker import paper_order_process
    from brokers.tasks import process_paper_order_task

    queue = source_queue(order.data_source, "default")
    if queue != "default":
        # Bars from a source held by its own worker (IBKR's one connection) are read there, never here.
        order_id = order.id
        transaction.on_commit(lambda: process_paper_order_task.apply_async(args=[order_id], queue=queue))
        return order
    return paper_order_process(order_id=order.id)


def _kill_check(order: Order, client: Broker) -> Order:
    """An order still working while the kill switch is on is cancelled (it went on while it was sent)."""
    if not (trading_control().kill_switch and order.status in (OrderStatus.SUBMITTING, OrderStatus.SUBMITTED)):
        return order
    try:
        order_cancel(order=order, reason="Cancelled by the kill switch", client=client)
    except (ApplicationError, BrokerUnavailable) as exc:
        # The orders sync cancels it later: it cancels every working order while the switch is on.
        logger.warning("kill switch: order %s not cancelled yet: %s", order.key, exc)
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
    working = (OrderStatus.SUBMITTING, OrderStatus.SUBMITTED)
    if event.leg == "entry":
        if event.filled and event.filled > order.filled_quantity:
            order.filled_quantity = round(event.filled)  # a partly filled entry is a position already
        if word == "filled" and order.status in (*working, OrderStatus.CANCELLED):
            # A fill beats a cancel that arrived too late: the position is real.
            order.status, order.filled_at = OrderStatus.FILLED, now
            order.filled_quantity = round(event.filled or order.quantity)
            if event.avg_price:
                order.avg_entry_price = _dec(event.avg_price)
        elif word == "cancelled" and order.status in working:
            order.status = OrderStatus.CANCELLED
        elif word == "rejected" and order.status in working:
            order.status, order.reason = OrderStatus.REJECTED, event.message or order.reason
        elif word == "submitted" and order.status == OrderStatus.SUBMITTING:
            order.status = OrderStatus.SUBMITTED
    elif word == "filled" and order.status == OrderStatus.FILLED:
        order.status, order.closed_at, order.exit_reason = OrderStatus.CLOSED, now, event.leg
        if event.avg_price:
            order.avg_exit_price = _dec(event.avg_price)
        _realize(order)
    order.save()
    return order


def position_apply_fill(*, broker: str, account: str, symbol: str, quantity: int, price: Decimal, commission: Decimal):
    """Update the position with a fill (`quantity` signed: + buys, - sells); realised P&L after commission."""
    position, _ = Position.objects.select_for_update().get_or_create(broker=broker, account=account, symbol=symbol)
    held = position.quantity
    realized = -commission
    if held == 0 or (held > 0) == (quantity > 0):
        total = held + quantity
        position.avg_cost = (position.avg_cost * abs(held) + price * abs(quantity)) / abs(total)
        position.quantity = total
    else:
        closing = min(abs(quantity), abs(held))
        realized += (price - position.avg_cost) * closing * (1 if held > 0 else -1)
        position.quantity = held + quantity
        if position.quantity == 0:
            position.avg_cost = Decimal(0)
        elif (position.quantity > 0) != (held > 0):  # flipped: the rest opens at this price
            position.avg_cost = price
    position.realized_pnl += realized
    position.last_price = price
    position.save()
    return position


def _realize(order: Order) -> None:
    """Realised P&L of a closed order from its fills: price moves on the exited quantity, all commissions off."""
    if order.status != OrderStatus.CLOSED:
        return
    fills = list(order.fills.all())
    entries = [f for f in fills if f.leg == "entry"]
    exits = [f for f in fills if f.leg != "entry"]
    sign = 1 if order.side == "BUY" else -1
    if entries and exits:
        entry = sum(f.price * f.quantity for f in entries) / sum(f.quantity for f in entries)
        exit_qty = sum(f.quantity for f in exits)
        exit_price = sum(f.price * f.quantity for f in exits) / exit_qty
        order.avg_exit_price = exit_price
        order.realized_pnl = sign * (exit_price - entry) * exit_qty - sum(f.commission for f in fills)
    elif order.avg_exit_price is not None:  # the fills are not in yet: from the status, until they are
        entry = order.avg_entry_price or order.entry_price
        quantity = order.filled_quantity or order.quantity
        order.realized_pnl = sign * (order.avg_exit_price - entry) * quantity - order.commission


@transaction.atomic
def order_execution_apply(event: ExecutionEvent) -> Fill | None:
    """A broker's fill, recorded once (by exec id) with its commission and the position it moves."""
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
    _realize(order)  # an exit's commission report comes after its status: the P&L is settled here
    order.save(update_fields=["commission", "avg_exit_price", "realized_pnl", "updated_at"])
    buy = (order.side == "BUY") == (event.leg == "entry")
    position_apply_fill(
        broker=order.broker,
        account=event.account or order.account,
        symbol=order.symbol,
        quantity=quantity if buy else -quantity,
        price=fill.price,
        commission=fill.commission,
    )
    return fill


def order_cancel(*, order: Order, reason: str = "Cancelled by user", client: Broker | None = None) -> Order:
    """Cancel a working order at its broker. An entry that has filled, even in part, keeps its exits: its
    stop protects the position. At IBKR the order is cancelled when IBKR says so (its status event), so a
    fill that beats the cancel is never lost."""
    if order.status == OrderStatus.FILLED or order.filled_quantity:
        raise ApplicationError(
            f"The entry of order {order.id} has filled ({order.filled_quantity or order.quantity} shares): the "
            "position is open and keeps its stop-loss and take-profit"
        )
    if order.status not in (OrderStatus.SUBMITTING, OrderStatus.SUBMITTED):
        raise ApplicationError(f"Order {order.id} is {order.get_status_display().lower()}; nothing to cancel")
    kind = broker_kind(order.broker)
    if kind.queue != "default" and client is None:
        # A broker held by its own worker (IBKR: one connection, one clientId) is cancelled there.
        from brokers.tasks import cancel_order_task

        order_id = order.id
        transaction.on_commit(lambda: cancel_order_task.apply_async(args=[order_id, reason], queue=kind.queue))
        return order
    client = client or broker_get(order.broker)
    nothing_there = False
    try:
        client.cancel(order.key)
    except BrokerError as exc:
        # A SUBMITTING order the broker never got has nothing to cancel there.
        nothing_there = order.status == OrderStatus.SUBMITTING and client.find(order.key) is None
        if not nothing_there:
            raise ApplicationError(f"The broker could not cancel order {order.id}: {exc}") from exc
    with transaction.atomic():
        order = Order.objects.select_for_update().get(id=order.id)
        if order.status in (OrderStatus.SUBMITTING, OrderStatus.SUBMITTED):
            if kind.simulated or nothing_there:
                order.status, order.reason = OrderStatus.CANCELLED, reason
                for leg in order.legs.values():
                    leg["status"] = "cancelled"
            else:
                order.reason = f"Cancel requested ({reason}); waiting for the broker to confirm"
            order.save()
    process = getattr(client, "process_events", None)
    if not kind.simulated and callable(process):
        process(wait_s=1.0)  # IBKR's Cancelled (or a last fill) arrives as events
        order.refresh_from_db()
    return order


def orders_cancel_for_run(*, run_id: int) -> str | None:
    """A RUN_CANCELLED_HOOKS hook: cancel the unfilled legs of every order the cancelled run sent, and
    say so on the run. An entry that filled, even in part, keeps its stop-loss and take-profit."""
    lines = []
    for order in Order.objects.filter(run_id=run_id).exclude(status=OrderStatus.BLOCKED).order_by("id"):
        sent = f"Cancelled after order {order.id} was sent"
        if order.status == OrderStatus.FILLED or order.filled_quantity:
            shares = order.filled_quantity or order.quantity
            lines.append(
                f"{sent}; its entry had filled ({shares} shares): the position keeps its stop-loss and take-profit."
            )
            continue
        if order.status not in (OrderStatus.SUBMITTING, OrderStatus.SUBMITTED):
            continue  # rejected, cancelled or closed already: nothing works at the broker
        try:
            order = order_cancel(order=order, reason="Cancelled with its run")
        except (ApplicationError, BrokerUnavailable) as exc:
            message = exc.message if isinstance(exc, ApplicationError) else str(exc)
            lines.append(f"{sent}; it could not be cancelled: {message}.")
            continue
        if order.status == OrderStatus.CANCELLED:
            lines.append(f"{sent}; its unfilled legs were cancelled.")
        else:  # a broker held by its own worker (IBKR) cancels it there and confirms by its events
            lines.append(f"{sent}; the cancel of its unfilled legs was sent to {order.broker.upper()}.")
    return " ".join(lines) or None


def kill_switch_sweep() -> int:
    """While the kill switch is on, cancel whatever still works (a cancel that failed, or raced a send)."""
    if not trading_control().kill_switch:
        return 0
    asked = 0
    for order in Order.objects.filter(status__in=[OrderStatus.SUBMITTING, OrderStatus.SUBMITTED]):
        try:
            order_cancel(order=order, reason="Cancelled by the kill switch")
            asked += 1
        except (ApplicationError, BrokerUnavailable) as exc:
            logger.warning("kill switch sweep: order %s: %s", order.key, exc)
    return asked


def kill_switch_set(*, on: bool, user, reason: str = "") -> tuple[TradingControl, list[str]]:
    """Turn the kill switch on (no new orders; working entries cancelled) or off. Returns cancel problems."""
    with transaction.atomic():
        control = TradingControl.objects.select_for_update().get(id=trading_control().id)
        control.kill_switch = on
        control.kill_switch_reason = (reason or "").strip()[:500] if on else ""
        control.kill_switch_at = timezone.now() if on else None
        control.updated_by = user
        control.save()
        from workflows.notify.alerts import alert_later

        # NOTIFY_ALERTS_CHANNEL hears of it after commit, from a task: a slow channel never delays the switch.
        alert_later(
            text=("Kill switch ON: no new orders, working entries cancelled" if on else "Kill switch OFF")
            + f" (by {user}){': ' + control.kill_switch_reason if control.kill_switch_reason else ''}"
        )
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
