"""Interactive Brokers orders through ib_async, behind the Broker protocol (brokers.adapters.base).

- Mode check before anything is sent (DESIGN §7 rule 1): port and account must both fit
  TRADING_MODE. Paper ports: 4002 IB Gateway, 7497 TWS, 4004 the compose gateway image's relay;
  live: 4001, 7496, 4003. A port of the other mode is refused; any other port (a tunnel, a custom
  relay) says nothing, so there the account alone decides. Paper accounts start with "D"
  (DU1234567, DF... for advisors), live ones do not. Both IBKR_PORT and the port the IB object
  is connected to are checked. Several managed accounts: IBKR_ACCOUNT names the one to trade;
  without it the adapter refuses rather than guess.
- Reconcile before any send (DESIGN §5): every leg carries orderRef = the idempotency key, and
  right before sending the adapter looks for that key in this session's trades (open and done),
  in every client's open orders (reqAllOpenOrders) and in the completed orders
  (reqCompletedOrders(apiOnly=True)). If any leg exists nothing is sent, and the existing
  bracket comes back as PlacedOrder(reconciled=True) with its ids and status. If the lookup
  fails nothing is sent either (BrokerUnavailable: the engine retries). IBKR keeps completed
  orders only since the gateway's last restart: our Order rows remain the first guard.
- Brackets only (rule 4), built by ib_async's IB.bracketOrder: limit parent and take-profit
  limit with transmit=False, stop with transmit=True (TWS then sends all three), children with
  parentId = parent (no ocaGroup: children of one parent already cancel each other at IBKR).
  A rejected leg gets the other legs cancelled: no entry stays without its stop.

The connection is the ibkr worker's process-wide IB (brokers.adapters.ibkr.client.default_ib, read-write, which
reconnects once per call when dropped and then reloads open and completed orders).

Events: ib_async emits orderStatusEvent / execDetailsEvent / commissionReportEvent inside its
asyncio loop, where Django's ORM refuses to run. The handlers (subscribed once per IB object)
only queue StatusEvent / ExecutionEvent; the queue goes to on_status / on_execution when a call
returns and on process_events(), which the ibkr worker should call periodically (IBKR messages
are only read while ib_async runs its loop). A fill goes out once, with its commission, when
its commission report arrives (or without it after COMMISSION_WAIT_S); every (re)connect
re-sends the day's executions, so a fill may come again later with the same exec_id.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

from django.conf import settings
from django.utils import timezone

from brokers.adapters.base import (
    LEGS,
    AccountSummary,
    BracketOrder,
    BrokerError,
    BrokerPosition,
    BrokerUnavailable,
    ConnectionStatus,
    ExecutionEvent,
    Leg,
    OpenOrder,
    PlacedOrder,
    StatusEvent,
)
from brokers.adapters.ibkr import client as ibkr
from workflows.errors import StepError, TransientStepError

logger = logging.getLogger(__name__)
T = TypeVar("T")

PAPER_PORTS = {4002: "IB Gateway paper", 7497: "TWS paper", 4004: "the gateway image's paper relay"}
LIVE_PORTS = {4001: "IB Gateway live", 7496: "TWS live", 4003: "the gateway image's live relay"}
ACK_WAIT_S = 2.0  # how long place_bracket waits for IBKR to acknowledge the parent
POLL_S = 0.1
COMMISSION_WAIT_S = 30.0  # a fill waits this long for its commission report before it goes without

_CANCELLED = frozenset({"Cancelled", "ApiCancelled"})
# Errors that end an order without IBKR refusing it: a cancel's answer, a cancel that raced.
_NOT_REJECTIONS = frozenset({202, 10147, 10148})
_UNSET = sys.float_info.max  # ib_async's UNSET_DOUBLE


def account_mode(account: str) -> Literal["paper", "live"]:
    """IBKR paper accounts start with D (DU..., DF...); every other account is live."""
    return "paper" if account.strip().upper().startswith("D") else "live"


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number != _UNSET else None


def _error_text(trade: Any) -> str:
    """The error IBKR ended this order with ("" for none, or for a plain cancel)."""
    if trade.orderStatus.status not in _CANCELLED | {"Inactive"}:
        return ""
    for entry in reversed(trade.log):
        if entry.errorCode and entry.errorCode not in _NOT_REJECTIONS and entry.status in _CANCELLED | {"Inactive"}:
            return entry.message or f"IBKR error {entry.errorCode}"
    return "IBKR set the order Inactive" if trade.orderStatus.status == "Inactive" else ""


def status_word(trade: Any) -> str:
    """ib_async's status -> ours: submitted, filled, cancelled or rejected."""
    status = trade.orderStatus.status
    if status == "Filled":
        return "filled"
    if status == "Inactive" or _error_text(trade):
        return "rejected"
    return "cancelled" if status in _CANCELLED else "submitted"


def _leg(order: Any) -> Leg:
    if order.orderType.startswith("STP"):
        return "stop_loss"
    return "take_profit" if order.parentId else "entry"


def _trade_leg(trade: Any, trades: Iterable[Any]) -> Leg:
    """The leg of one trade among its bracket's. Completed orders come without parentId: there the
    take-profit is the limit order on the stop's side."""
    leg = _leg(trade.order)
    if leg != "entry":
        return leg
    ref, action = trade.order.orderRef, trade.order.action
    stops = [t for t in trades if t.order.orderRef == ref and t.order.orderType.startswith("STP")]
    return "take_profit" if stops and stops[0].order.action == action else "entry"


def _legs(trades: Iterable[Any]) -> dict[Leg, Any]:
    trades = list(trades)
    legs: dict[Leg, Any] = {}
    for trade in trades:
        legs.setdefault(_trade_leg(trade, trades), trade)
    return legs


def _broker_id(order: Any) -> int:
    # Completed orders carry no orderId (the wire format has none): their permId stands in.
    return order.orderId or order.permId


def _symbol(contract: Any) -> str:
    if contract.secType == "STK" and contract.currency == "USD" and contract.symbol:
        return contract.symbol
    return f"conid:{contract.conId}"


def _cancel_working(ib: Any, trades: Iterable[Any]) -> None:
    working = [t for t in trades if not t.isDone()]
    parents = {t.order.orderId for t in working}
    for trade in working:
        if trade.order.parentId not in parents:  # a child goes with its parent at IBKR
            ib.cancelOrder(trade.order)


class _Events:
    """One IB object's order events, queued for delivery outside ib_async's loop."""

    def __init__(self, ib: Any) -> None:
        self._trades = weakref.WeakMethod(ib.trades)  # weak: _EVENTS must not keep the IB alive
        self.queue: deque[StatusEvent | ExecutionEvent] = deque()
        self.on_status: dict[Callable[[StatusEvent], None], None] = {}  # ordered set
        self.on_execution: dict[Callable[[ExecutionEvent], None], None] = {}
        self.pending: dict[str, tuple[float, ExecutionEvent]] = {}  # exec_id -> (seen at, event)

    def _leg(self, trade: Any) -> Leg:
        trades = self._trades()
        return _trade_leg(trade, trades() if trades else [])

    def status(self, trade: Any) -> None:
        order, status = trade.order, trade.orderStatus
        if not order.orderRef:  # not ours: a manual order, another tool's
            return
        last = trade.log[-1] if trade.log else None
        fallback = last.message if last and last.errorCode and last.errorCode not in _NOT_REJECTIONS else ""
        message = _error_text(trade) or fallback
        avg_price = _number(status.avgFillPrice) or None
        args = (order.orderRef, self._leg(trade), status.status, float(status.filled), avg_price, _broker_id(order))
        self.queue.append(StatusEvent(*args, message=message))

    def _execution(self, trade: Any, fill: Any, commission: float) -> ExecutionEvent:
        e, order = fill.execution, trade.order  # execution.time is IBKR's, Fill.time ib_async's receipt
        return ExecutionEvent(
            order.orderRef,
            self._leg(trade),
            e.execId,
            float(e.shares),
            float(e.price),
            commission,
            e.time,
            account=e.acctNumber or order.account or "",
        )

    def fill(self, trade: Any, fill: Any) -> None:
        # Held for its commission report: one event per execution, as Fill rows are keyed by exec_id.
        if trade.order.orderRef:
            self.pending[fill.execution.execId] = (time.monotonic(), self._execution(trade, fill, 0.0))

    def commission(self, trade: Any, fill: Any, report: Any) -> None:
        # Also sent for the day's executions on every (re)connect: a catch-up, deduplicated by exec_id.
        if trade.order.orderRef:
            self.pending.pop(fill.execution.execId, None)
            self.queue.append(self._execution(trade, fill, _number(report.commission) or 0.0))

    def release_overdue(self) -> None:
        """Fills whose commission report is overdue go without it, rather than not at all."""
        for exec_id, (at, event) in list(self.pending.items()):
            if time.monotonic() - at >= COMMISSION_WAIT_S:
                del self.pending[exec_id]
                self.queue.append(event)


_EVENTS: weakref.WeakKeyDictionary[Any, _Events] = weakref.WeakKeyDictionary()


def _events_for(ib: Any) -> _Events:
    with ibkr._IB_LOCK:
        events = _EVENTS.get(ib)
        if events is None:
            events = _EVENTS[ib] = _Events(ib)
            ib.orderStatusEvent += events.status
            ib.execDetailsEvent += events.fill
            ib.commissionReportEvent += events.commission
        return events


def _call(fn: Callable[[Any], T], ib: Any) -> T:
    """Run fn(ib), with ib_async's failures as BrokerError / BrokerUnavailable."""
    from ib_async import RequestError

    try:
        return fn(ib)
    except RequestError as exc:
        error = ibkr._request_error(exc)
        raise (BrokerUnavailable if isinstance(error, TransientStepError) else BrokerError)(str(error)) from exc
    except TimeoutError as exc:
        raise BrokerUnavailable("IBKR did not answer in time; will be retried") from exc
    except (ConnectionError, OSError) as exc:
        raise BrokerUnavailable(f"IBKR connection lost: {exc or type(exc).__name__}; will be retried") from exc


class IbkrBroker:
    """Interactive Brokers as a Broker. `ib` defaults to the process-wide connection."""

    name = "ibkr"

    def __init__(
        self,
        ib: Any = None,
        *,
        mode: str | None = None,
        on_status: Callable[[StatusEvent], None] | None = None,
        on_execution: Callable[[ExecutionEvent], None] | None = None,
        ack_wait_s: float = ACK_WAIT_S,
        poll_s: float = POLL_S,
    ) -> None:
        self._ib = ib
        self.mode = (mode or settings.TRADING_MODE or "").strip().lower()
        self.on_status, self.on_execution = on_status, on_execution
        self.ack_wait_s, self.poll_s = ack_wait_s, poll_s
        self._source = ibkr.IbkrSource(ib)  # contract qualification, shared with market data
        if ib is not None:
            self._listen(ib)

    # Connection, events, errors

    def _listen(self, ib: Any) -> _Events:
        events = _events_for(ib)
        if self.on_status:
            events.on_status[self.on_status] = None
        if self.on_execution:
            events.on_execution[self.on_execution] = None
        return events

    def _connection(self) -> Any:
        if self._ib is None:
            try:
                ib = ibkr.default_ib()  # reconnects (once) through ibkr._connect when dropped
            except TransientStepError as exc:
                raise BrokerUnavailable(str(exc)) from exc
        else:
            ib = self._ib
            if not ib.isConnected():
                raise BrokerUnavailable("IBKR is disconnected (the IB connection is not connected); will be retried")
        self._listen(ib)
        return ib

    def _deliver(self, ib: Any) -> int:
        events = _events_for(ib)
        with ibkr._IB_LOCK:
            events.release_overdue()
            batch = list(events.queue)
            events.queue.clear()
            on_status, on_execution = list(events.on_status), list(events.on_execution)
        for event in batch:
            for callback in on_status if isinstance(event, StatusEvent) else on_execution:
                try:
                    callback(event)
                except Exception:
                    logger.exception("IBKR %s handler failed for key %s", type(event).__name__, event.key)
        return len(batch)

    def _run(self, fn: Callable[[Any], T]) -> T:
        ib = None
        try:
            with ibkr._IB_LOCK:  # ib_async is not thread-safe
                ib = self._connection()
                return _call(fn, ib)
        finally:
            if ib is not None:
                self._deliver(ib)  # outside the lock and outside ib_async's loop

    def process_events(self, wait_s: float = 0.0) -> int:
        """Let ib_async read IBKR's pending messages for wait_s, then deliver the queued events."""
        with ibkr._IB_LOCK:
            ib = self._connection()
            _call(lambda ib: ib.sleep(wait_s), ib)
        return self._deliver(ib)

    # The mode check

    def _account(self, ib: Any, *, check_mode: bool) -> str:
        mode = self.mode
        if mode not in ("paper", "live"):
            raise BrokerError(f'TRADING_MODE is "{mode}", not "paper" or "live"; refusing to send orders')
        accounts = [a for a in ib.managedAccounts() if a]
        wanted = (getattr(settings, "IBKR_ACCOUNT", "") or "").strip()
        if wanted and wanted not in accounts:
            raise BrokerError(f"IBKR_ACCOUNT {wanted} is not an account of this IBKR login ({', '.join(accounts)})")
        if not wanted and len(accounts) != 1:
            listed = ", ".join(accounts) or "none"
            raise BrokerError(
                f"IBKR reports {len(accounts)} managed accounts ({listed}): set IBKR_ACCOUNT to the one to trade; "
                "refusing to guess"
            )
        account = wanted or accounts[0]
        if check_mode:
            ports = {int(settings.IBKR_PORT)}
            connected = getattr(getattr(ib, "client", None), "port", None)
            if isinstance(connected, int) and connected > 0:
                ports.add(connected)
            other, other_mode = (LIVE_PORTS, "live") if mode == "paper" else (PAPER_PORTS, "paper")
            wrong = sorted(ports & other.keys())
            if wrong:
                raise BrokerError(
                    f"IBKR port {wrong[0]} is a {other_mode} port ({other[wrong[0]]}) but TRADING_MODE is {mode}; "
                    f"refusing to send orders (account {account})"
                )
            if account_mode(account) != mode:
                raise BrokerError(
                    f"Connected IBKR account {account} is a {account_mode(account)} account but TRADING_MODE is "
                    f"{mode}; refusing to send orders (port {', '.join(map(str, sorted(ports)))})"
                )
        return account

    def _contract(self, symbol: str) -> Any:
        try:
            return self._source.qualify(ibkr.parse_symbol(symbol))
        except TransientStepError as exc:
            raise BrokerUnavailable(str(exc)) from exc
        except StepError as exc:
            raise BrokerError(str(exc)) from exc

    # Orders

    def _find(self, ib: Any, key: str) -> list[Any]:
        """Every IBKR order under this key: this session's, other clients' open ones, completed ones."""
        others = [*ib.reqAllOpenOrders(), *ib.reqCompletedOrders(apiOnly=True)]
        found, seen = [], set()
        for trade in [*ib.trades(), *others]:
            order = trade.order
            ident = order.permId or id(trade)
            if order.orderRef != key or ident in seen or id(trade) in seen:
                continue
            seen.update({ident, id(trade)})
            found.append(trade)
        return found

    def place_bracket(self, order: BracketOrder) -> PlacedOrder:
        def place(ib: Any) -> PlacedOrder:
            account = self._account(ib, check_mode=True)
            contract = self._contract(order.symbol)
            existing = self._find(ib, order.key)
            if existing:
                return self._reconciled(order.key, existing, account, ib)
            prices = (order.entry, order.take_profit, order.stop_loss)
            bracket = ib.bracketOrder(
                order.side, order.quantity, *prices, orderRef=order.key, tif=order.tif, account=account
            )
            legs: dict[Leg, Any] = {leg: ib.placeOrder(contract, o) for leg, o in zip(LEGS, bracket, strict=True)}
            self._await_ack(ib, legs["entry"])
            if not ib.isConnected():
                raise BrokerUnavailable(
                    f"IBKR connection lost while sending bracket {order.key}; the retry reconciles before sending"
                )
            return self._placed(ib, order.key, legs, account)

        return self._run(place)

    def find(self, key: str) -> PlacedOrder | None:
        """The bracket IBKR has under this key, or None; nothing is sent."""

        def look(ib: Any) -> PlacedOrder | None:
            account = self._account(ib, check_mode=False)
            existing = self._find(ib, key)
            return self._reconciled(key, existing, account, ib) if existing else None

        return self._run(look)

    def _await_ack(self, ib: Any, parent: Any) -> None:
        for _ in range(math.ceil(self.ack_wait_s / self.poll_s) if self.ack_wait_s > 0 else 0):
            if parent.orderStatus.status != "PendingSubmit":
                return
            ib.sleep(self.poll_s)

    def _placed(self, ib: Any, key: str, legs: dict[Leg, Any], account: str) -> PlacedOrder:
        ids = {leg: _broker_id(t.order) for leg, t in legs.items()}
        rejected = [(leg, t) for leg, t in legs.items() if status_word(t) == "rejected"]
        if rejected:
            _cancel_working(ib, legs.values())  # no entry without its stop
            leg, trade = rejected[0]
            why = _error_text(trade)
            return PlacedOrder(key, "rejected", ids, account, f"IBKR rejected the {leg} leg: {why}")
        parent = legs["entry"]
        message = ""
        if parent.orderStatus.status == "PendingSubmit":
            message = f"IBKR has not acknowledged the bracket within {self.ack_wait_s:g} s (still PendingSubmit)"
        return PlacedOrder(key, status_word(parent), ids, account, message)

    def _reconciled(self, key: str, trades: list[Any], account: str, ib: Any) -> PlacedOrder:
        legs = _legs(trades)
        main = legs.get("entry") or next(iter(legs.values()))
        message = f"IBKR already has orders under key {key}: nothing was sent"
        missing = [leg for leg in LEGS if leg not in legs]
        ids = {leg: _broker_id(t.order) for leg, t in legs.items()}
        if missing and "entry" in legs and status_word(legs["entry"]) != "filled":
            # A bracket cut short by a dropped connection: no entry may work without its stop.
            _cancel_working(ib, trades)
            message += f"; the bracket is incomplete (missing {', '.join(missing)}), so its legs were cancelled"
            return PlacedOrder(key, "rejected", ids, main.order.account or account, message, reconciled=True)
        if missing:
            message += f"; legs not found at IBKR: {', '.join(missing)} (check TWS)"
        if _error_text(main):
            message += f"; {_error_text(main)}"
        return PlacedOrder(key, status_word(main), ids, main.order.account or account, message, reconciled=True)

    def cancel(self, key: str) -> None:
        def cancel(ib: Any) -> None:
            found = self._find(ib, key)
            if not found:
                raise BrokerError(f"IBKR has no orders under key {key}")
            client_id = getattr(ib.client, "clientId", None)
            working = [t for t in found if not t.isDone()]
            # Another client's orderId means another order here: only that client may cancel it.
            foreign = [t for t in working if t.order.clientId != client_id]
            _cancel_working(ib, [t for t in working if t not in foreign])
            if foreign:
                others = ", ".join(f"order {t.order.orderId} of clientId {t.order.clientId}" for t in foreign)
                raise BrokerError(f"Key {key}: {others} can only be cancelled by that client or in TWS")

        self._run(cancel)

    # Reads

    def open_orders(self) -> list[OpenOrder]:
        def read(ib: Any) -> list[OpenOrder]:
            ib.sleep(0)  # read IBKR's pending messages first: the list is current, their events delivered
            result = []
            for t in ib.openTrades():
                o = t.order
                if o.orderRef:
                    price = _number(o.auxPrice if o.orderType.startswith("STP") else o.lmtPrice)
                    row = (o.orderRef, _symbol(t.contract), o.action, float(t.remaining()), _leg(o), status_word(t))
                    result.append(OpenOrder(*row, broker_id=_broker_id(o), price=price))
            return result

        return self._run(read)

    def positions(self) -> list[BrokerPosition]:
        def read(ib: Any) -> list[BrokerPosition]:
            account = self._account(ib, check_mode=False)
            items = {item.contract.conId: item for item in ib.portfolio(account)}
            result = []
            for p in ib.positions(account):
                row = [_symbol(p.contract), float(p.position), float(p.avgCost)]
                item = items.get(p.contract.conId)  # the portfolio has prices only for priced positions
                if item:
                    row += [_number(item.marketPrice), _number(item.unrealizedPNL), _number(item.realizedPNL)]
                result.append(BrokerPosition(*row))
            return result

        return self._run(read)

    def account_summary(self) -> AccountSummary:
        def read(ib: Any) -> AccountSummary:
            account = self._account(ib, check_mode=False)
            values = {(v.tag, v.currency): v.value for v in ib.accountSummary(account)}
            currency = next((c for tag, c in values if tag == "NetLiquidation"), "USD")

            def pick(tag: str) -> float | None:
                # $LEDGER tags come per currency and as BASE (the account's base currency).
                found = [_number(values[(tag, c)]) for c in ("BASE", currency) if (tag, c) in values]
                return found[0] if found else None

            equity = pick("NetLiquidation")
            if equity is None:
                raise BrokerError(f"IBKR sent no NetLiquidation for account {account}")
            cash, realized, unrealized = (pick(t) or 0.0 for t in ("TotalCashValue", "RealizedPnL", "UnrealizedPnL"))
            mode = account_mode(account)
            return AccountSummary(account, mode, currency, equity, cash, realized, unrealized, pick("BuyingPower"))

        return self._run(read)

    def connection_status(self) -> ConnectionStatus:
        """Never raises, never connects (a second connection with our clientId would evict the worker's)."""
        now = timezone.now()
        where = f"{settings.IBKR_HOST}:{settings.IBKR_PORT} (clientId {settings.IBKR_CLIENT_ID})"
        try:
            ib = self._ib if self._ib is not None else ibkr._default_ib
            if ib is None:
                detail = f"This process has not connected to IBKR at {where}; the ibkr worker holds the connection"
                return ConnectionStatus(self.name, False, mode=self.mode, detail=detail, checked_at=now)
            if not ib.isConnected():
                detail = f"Disconnected from IBKR at {where}: is IB Gateway or TWS running with the API enabled?"
                return ConnectionStatus(self.name, False, mode=self.mode, detail=detail, checked_at=now)
            with ibkr._IB_LOCK:
                accounts = list(ib.managedAccounts())
                try:
                    account, problem = self._account(ib, check_mode=True), ""
                except BrokerError as exc:
                    account, problem = (accounts[0] if len(accounts) == 1 else ""), str(exc)
            mode = account_mode(account) if account else self.mode
            detail = problem or f"Connected to IBKR at {where}, account {account} ({mode}), TRADING_MODE {self.mode}"
            return ConnectionStatus(self.name, True, account, mode, detail, now)
        except Exception as exc:
            detail = f"IBKR status check failed: {exc or type(exc).__name__}"
            return ConnectionStatus(self.name, False, mode=self.mode, detail=detail, checked_at=now)

    def what_if(self, order: BracketOrder) -> dict[str, Any]:
        def ask(ib: Any) -> dict[str, Any]:
            from ib_async import LimitOrder

            account = self._account(ib, check_mode=True)
            contract = self._contract(order.symbol)
            entry = LimitOrder(order.side, order.quantity, order.entry, tif=order.tif, account=account)
            state = ib.whatIfOrder(contract, entry)
            if not state:
                raise BrokerError(f"IBKR gave no what-if answer for {order.symbol}")
            result: dict[str, Any] = {}
            for name in ("initMarginChange", "maintMarginChange", "equityWithLoanChange", "commission"):
                value = _number(getattr(state, name, None))
                if value is not None:
                    result[name] = value
            for name in ("commissionCurrency", "warningText"):
                if getattr(state, name, ""):
                    result[name] = getattr(state, name)
            return result

        return self._run(ask)


__all__ = ["LIVE_PORTS", "PAPER_PORTS", "IbkrBroker", "account_mode", "status_word"]
