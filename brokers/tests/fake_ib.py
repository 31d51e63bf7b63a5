"""A fake IB Gateway behind a real `ib_async.IB`, for the order adapter's tests (no network).

`FakeIB` *is* an `ib_async.IB`: bracketOrder, placeOrder, cancelOrder, openTrades, trades,
reqCompletedOrders, reqAllOpenOrders, qualifyContracts, accountSummary, whatIfOrder, positions,
portfolio, connect and disconnect all run ib_async's own code. Only the socket is replaced:
`FakeGateway` stands where `ib_async.client.Client` stands and answers as TWS / IB Gateway does,
by calling the real `ib_async.wrapper.Wrapper` callbacks (openOrder, orderStatus, execDetails,
commissionReport, error, completedOrder, position, updatePortfolio, accountSummary, ...).

Faithful on purpose:
- Answers are queued and delivered from the asyncio loop, so they arrive only while ib_async
  runs its loop (`ib.sleep`, a blocking request), and event handlers run inside a running loop,
  as they do for real (where Django's ORM refuses to run).
- Orders with transmit=False are held at the gateway (no status, PendingSubmit in ib_async)
  until an order with transmit=True arrives for the same parent; then the parent goes
  `entry_status` (Submitted) and the children PreSubmitted (held until the parent fills).
- A parent fill releases its children; a child fill cancels its sibling (the bracket's OCA).
- A rejection is an `error` for the order (ib_async marks the trade Cancelled with the error in
  its log), optionally followed by orderStatus Inactive; a cancel answers orderStatus Cancelled
  and error 202. Every request on a dropped connection raises ConnectionError("Not connected"),
  as ib_async's Client.send does.
- The gateway keeps its order book, executions, positions and account values across
  disconnects; ib_async clears its own state on a disconnect and re-syncs open orders,
  completed orders (without orderId, clientId or parentId, as the wire format has none) and
  executions when it connects read-write.
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventkit import Event
from ib_async import (
    IB,
    CommissionReport,
    ConnectionStats,
    Contract,
    ContractDetails,
    Execution,
    Order,
    OrderState,
    Trade,
    util,
)
from ib_async.ib import StartupFetchALL
from ib_async.util import UNSET_DOUBLE

DONE = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
# symbol -> (conId, primaryExchange), the contracts the fake gateway knows.
KNOWN = {"AAPL": (265598, "NASDAQ"), "MSFT": (272093, "NASDAQ"), "SPY": (756733, "ARCA")}
SUMMARY = [
    ("AccountType", "INDIVIDUAL", ""),
    ("NetLiquidation", "100250.50", "USD"),
    ("TotalCashValue", "80100.25", "USD"),
    ("BuyingPower", "400000.00", "USD"),
    ("RealizedPnL", "120.50", "BASE"),
    ("RealizedPnL", "120.50", "USD"),
    ("UnrealizedPnL", "-30.25", "BASE"),
    ("UnrealizedPnL", "-30.25", "USD"),
]


def leg_of(order: Order) -> str:
    if order.orderType.startswith("STP"):
        return "stop_loss"
    return "take_profit" if order.parentId else "entry"


@dataclass
class ServerOrder:
    """The gateway's own record of an order (its copy, not ib_async's Trade)."""

    contract: Contract
    order: Order
    status: str = "PendingSubmit"
    filled: float = 0.0
    avg_price: float = 0.0
    why_held: str = ""
    transmitted: bool = False

    @property
    def remaining(self) -> float:
        return float(self.order.totalQuantity) - self.filled


class FakeGateway:
    """TWS / IB Gateway as ib_async's Client sees it: the methods IB and Wrapper call on `ib.client`."""

    def __init__(self, *, accounts: Iterable[str] = ("DU1234567",), server_version: int = 178) -> None:
        self.wrapper: Any = None
        self.accounts = list(accounts)
        self.server_version = server_version
        self.contracts = dict(KNOWN)
        self.orders: dict[int, ServerOrder] = {}  # permId -> order
        self.executions: list[tuple[Contract, Execution, CommissionReport]] = []
        self.holdings: dict[tuple[str, int], list[Any]] = {}  # (account, conId) -> [contract, qty, avg cost]
        self.market_prices: dict[int, float] = {}
        self.summary: dict[str, list[tuple[str, str, str]]] = {a: list(SUMMARY) for a in self.accounts}
        self.what_if_state = OrderState(
            status="PreSubmitted",
            initMarginChange="4512.30",
            maintMarginChange="4102.10",
            equityWithLoanChange="-1.05",
            commission=1.05,
            minCommission=UNSET_DOUBLE,
            maxCommission=UNSET_DOUBLE,
            commissionCurrency="USD",
        )
        self.what_ifs: list[tuple[Contract, Order]] = []
        self.refuse_connect = False
        self.acknowledge = True  # False: transmitted orders get no status at all (a silent gateway)
        self.commission_reports = True  # False: live fills come without their commission report
        self.entry_status = "Submitted"  # PreSubmitted outside regular hours
        self.reject_next: tuple[int, str, str | None, str] | None = None  # code, message, status, leg
        self.cancels: list[int] = []  # orderIds of every cancelOrder request
        self.host, self.port, self.clientId = "", -1, -1
        self._ready = False
        self._req_id = 0
        self._next_id = 1
        self._next_perm = 1_000_000_001
        self._exec_seq = 0
        self._inbox: deque[tuple[str, tuple[Any, ...]]] = deque()
        self._scheduled = False
        self.apiStart, self.apiEnd, self.apiError = Event("apiStart"), Event("apiEnd"), Event("apiError")

    def attach(self, wrapper: Any) -> None:
        """Serve this ib_async Wrapper (a new IB process after a restart): the old one is dropped."""
        if self.wrapper is not None and self.wrapper is not wrapper:
            self.drop()
        self.wrapper = wrapper
        self.apiEnd.clear()

    # The connection

    async def connectAsync(self, host: str, port: int, clientId: int, timeout: float | None = 2.0) -> None:
        if self.refuse_connect:
            raise ConnectionRefusedError(111, f"Connect call failed ('{host}', {port})")
        self.host, self.port, self.clientId = host, int(port), int(clientId)
        self._ready = True
        self._req_id = self._next_id  # nextValidId
        self.wrapper.managedAccounts(",".join(self.accounts))
        self.apiStart.emit()

    def isConnected(self) -> bool:
        return self._ready

    def isReady(self) -> bool:
        return self._ready

    def serverVersion(self) -> int:
        return self.server_version if self._ready else 0

    def getReqId(self) -> int:
        if not self._ready:
            raise ConnectionError("Not connected")
        self._req_id += 1
        self._next_id = max(self._next_id, self._req_id)
        return self._req_id - 1

    def updateReqId(self, minReqId: int) -> None:
        self._req_id = max(self._req_id, minReqId)

    def getAccounts(self) -> list[str]:
        if not self._ready:
            raise ConnectionError("Not connected")
        return list(self.accounts)

    def connectionStats(self) -> ConnectionStats:
        return ConnectionStats(0.0, 0.0, 0, 0, 0, 0)

    def disconnect(self) -> None:
        """The client closes the socket (IB.disconnect then resets its wrapper)."""
        self._ready = False
        self._inbox.clear()

    def drop(self) -> None:
        """The gateway goes away (restart, network): what ib_async's Client does on a closed socket."""
        was_ready, self._ready = self._ready, False
        self._inbox.clear()
        self.wrapper.setEventsDone()
        if was_ready:
            self.wrapper.connectionClosed()
            self.apiEnd.emit()

    # Messages to ib_async: queued, delivered from the asyncio loop

    def _send(self, method: str, *args: Any) -> None:
        if not self._ready:
            return  # nobody to tell: ib_async learns on its next connect (open/completed orders, executions)
        self._inbox.append((method, args))
        if not self._scheduled:
            self._scheduled = True
            util.getLoop().call_soon(self._deliver)

    def _deliver(self) -> None:
        self._scheduled = False
        if not self._ready:
            self._inbox.clear()
            return
        self.wrapper.tcpDataArrived()
        while self._inbox:
            method, args = self._inbox.popleft()
            getattr(self.wrapper, method)(*args)
        self.wrapper.tcpDataProcessed()

    def _send_order(self, so: ServerOrder) -> None:
        o = so.order
        self._send("openOrder", o.orderId, so.contract, copy.copy(o), OrderState(status=so.status))
        self._send_status(so)

    def _send_status(self, so: ServerOrder, last_price: float = 0.0) -> None:
        o = so.order
        self._send(
            "orderStatus", o.orderId, so.status, so.filled, so.remaining, so.avg_price, o.permId, o.parentId,
            last_price, o.clientId, so.why_held, 0.0,
        )  # fmt: skip

    # Orders

    def find(self, order_id: int, client_id: int | None = None) -> ServerOrder | None:
        client_id = self.clientId if client_id is None else client_id
        return next(
            (s for s in self.orders.values() if (s.order.clientId, s.order.orderId) == (client_id, order_id)), None
        )

    def _children(self, so: ServerOrder) -> list[ServerOrder]:
        o = so.order
        return [s for s in self.orders.values() if s.order.parentId == o.orderId and s.order.clientId == o.clientId]

    def send(self, *fields: Any) -> None:
        """Client.send: every request goes through it, and it refuses on a closed connection."""
        if not self._ready:
            raise ConnectionError("Not connected")

    def placeOrder(self, orderId: int, contract: Contract, order: Order) -> None:
        self.send()
        if order.whatIf:
            self.what_ifs.append((contract, order))
            echo = copy.copy(order)
            echo.orderId = orderId
            self._send("openOrder", orderId, contract, echo, copy.copy(self.what_if_state))
            return
        self._next_id = max(self._next_id, orderId + 1)
        existing = self.find(orderId)
        if existing:  # a modification
            existing.order.lmtPrice, existing.order.auxPrice = order.lmtPrice, order.auxPrice
            if existing.transmitted:
                self._send_order(existing)
            return
        mine = copy.copy(order)
        mine.orderId, mine.clientId, mine.permId = orderId, self.clientId, self._next_perm
        self._next_perm += 1
        so = ServerOrder(contract=copy.copy(contract), order=mine)
        self.orders[mine.permId] = so
        if order.transmit:
            self._transmit(self.find(mine.parentId) if mine.parentId else so)

    def _transmit(self, parent: ServerOrder | None) -> None:
        if parent is None:
            return
        group = [s for s in (parent, *self._children(parent)) if not s.transmitted]
        for s in group:
            s.transmitted = True
        rejected = None
        if self.reject_next:
            code, message, status, leg = self.reject_next
            self.reject_next = None
            rejected = next(s for s in group if leg_of(s.order) == leg)
            self._send("error", rejected.order.orderId, code, message, "")
            rejected.status = status or "Cancelled"
            if status:
                self._send_status(rejected)
            if rejected is parent:  # the children go with it
                for child in group[1:]:
                    child.status = "Cancelled"
                    self._send_status(child)
                return
        for s in group:
            if s is rejected:
                continue
            s.status, s.why_held = (self.entry_status, "") if s is parent else ("PreSubmitted", "child")
            if self.acknowledge:
                self._send_order(s)

    def cancelOrder(self, orderId: int, manualCancelOrderTime: str = "") -> None:
        self.send()
        self.cancels.append(orderId)
        so = self.find(orderId)
        if so is None or so.status in DONE:
            self._send("error", orderId, 10147, f"OrderId {orderId} that needs to be cancelled is not found.", "")
            return
        for s in (so, *self._children(so)):
            if s.status not in DONE:
                self.cancel_by_gateway(s, reason="")

    def cancel_by_gateway(self, so: ServerOrder, *, reason: str = "") -> None:
        """The gateway cancels an order (a cancel request, a DAY order at the close)."""
        so.status = "Cancelled"
        self._send_status(so)
        self._send("error", so.order.orderId, 202, f"Order Canceled - reason:{reason}", "")

    def fill(
        self, so: ServerOrder, *, price: float | None = None, quantity: float | None = None, commission: float = 1.0
    ) -> Execution:
        o = so.order
        qty = float(quantity if quantity is not None else so.remaining)
        px = float(price if price is not None else (o.auxPrice if o.orderType.startswith("STP") else o.lmtPrice))
        so.avg_price = (so.avg_price * so.filled + px * qty) / (so.filled + qty)
        so.filled += qty
        so.status = "Filled" if so.remaining <= 0 else "Submitted"
        self._exec_seq += 1
        account = o.account or self.accounts[0]
        execution = Execution(
            execId=f"0000e0d5.{self._exec_seq:08x}.01.01", time=datetime.now(UTC), acctNumber=account,
            exchange="ISLAND", side="BOT" if o.action == "BUY" else "SLD", shares=qty, price=px, permId=o.permId,
            clientId=o.clientId, orderId=o.orderId, cumQty=so.filled, avgPrice=so.avg_price, orderRef=o.orderRef,
        )  # fmt: skip
        report = CommissionReport(execution.execId, commission, "USD", UNSET_DOUBLE, UNSET_DOUBLE, 0)
        self.executions.append((so.contract, execution, report))
        self._send("execDetails", -1, so.contract, copy.copy(execution))
        self._send_status(so, last_price=px)
        if self.commission_reports:
            self._send("commissionReport", copy.copy(report))
        self._hold(account, so.contract, qty if o.action == "BUY" else -qty, px)
        if so.status == "Filled":
            if not o.parentId:
                for child in self._children(so):
                    if child.status not in DONE:
                        child.status, child.why_held = "Submitted", ""
                        self._send_status(child)
            else:
                parent = self.find(o.parentId, o.clientId)
                for sibling in self._children(parent) if parent else []:
                    if sibling is not so and sibling.status not in DONE:
                        self.cancel_by_gateway(sibling, reason="OCA group")
        return execution

    # Positions and account

    def _hold(self, account: str, contract: Contract, qty: float, price: float) -> None:
        row = self.holdings.setdefault((account, contract.conId), [copy.copy(contract), 0.0, 0.0])
        before = row[1]
        row[1] = before + qty
        if row[1] and (before == 0 or (before > 0) == (qty > 0)):
            row[2] = (row[2] * abs(before) + price * abs(qty)) / abs(row[1])
        self.market_prices.setdefault(contract.conId, price)
        self._send("position", account, row[0], row[1], row[2])
        self._send_portfolio(account, row)

    def set_position(self, account: str, symbol: str, qty: float, avg_cost: float, market_price: float | None) -> None:
        con_id, primary = self.contracts[symbol]
        contract = Contract(secType="STK", conId=con_id, symbol=symbol, currency="USD", primaryExchange=primary)
        self.holdings[(account, con_id)] = [contract, float(qty), float(avg_cost)]
        if market_price is not None:
            self.market_prices[con_id] = market_price

    def _send_portfolio(self, account: str, row: list[Any]) -> None:
        contract, qty, avg = row
        if contract.conId not in self.market_prices:
            return  # no portfolio line without a price
        price = self.market_prices[contract.conId]
        self._send(
            "updatePortfolio", contract, qty, price, qty * price, avg, (price - avg) * qty, 0.0, account
        )  # fmt: skip

    # Requests (answers through the loop, then their End message)

    def reqContractDetails(self, reqId: int, contract: Contract) -> None:
        self.send()
        by_id = {cid: (sym, ex) for sym, (cid, ex) in self.contracts.items()}
        if contract.conId in by_id:
            symbol, primary = by_id[contract.conId]
        elif contract.symbol in self.contracts:
            symbol, primary = contract.symbol, self.contracts[contract.symbol][1]
        else:
            self._send("error", reqId, 200, "No security definition has been found for the request", "")
            return
        found = Contract(
            secType="STK", conId=self.contracts[symbol][0], symbol=symbol, exchange="SMART",
            primaryExchange=primary, currency="USD", localSymbol=symbol, tradingClass=primary,
        )  # fmt: skip
        self._send("contractDetails", reqId, ContractDetails(contract=found, minTick=0.01))
        self._send("contractDetailsEnd", reqId)

    def _open(self, *, all_clients: bool) -> None:
        for so in self.orders.values():
            if so.status not in DONE and (all_clients or so.order.clientId == self.clientId):
                self._send_order(so)
        self._send("openOrderEnd")

    def reqOpenOrders(self) -> None:
        self.send()
        self._open(all_clients=False)

    def reqAllOpenOrders(self) -> None:
        self.send()
        self._open(all_clients=True)

    def reqAutoOpenOrders(self, bAutoBind: bool) -> None:
        self.send()

    def reqCompletedOrders(self, apiOnly: bool) -> None:
        self.send()
        for so in self.orders.values():
            if so.status in DONE:
                echo = copy.copy(so.order)
                echo.orderId = echo.clientId = echo.parentId = 0  # not in the completedOrder message
                state = OrderState(status=so.status, completedStatus=so.status)
                self._send("completedOrder", copy.copy(so.contract), echo, state)
        self._send("completedOrdersEnd")

    def reqExecutions(self, reqId: int, execFilter: Any) -> None:
        self.send()
        for contract, execution, report in self.executions:
            self._send("execDetails", reqId, copy.copy(contract), copy.copy(execution))
            self._send("commissionReport", copy.copy(report))
        self._send("execDetailsEnd", reqId)

    def reqPositions(self) -> None:
        self.send()
        for (account, _), (contract, qty, avg) in self.holdings.items():
            self._send("position", account, contract, qty, avg)
        self._send("positionEnd")

    def reqAccountUpdates(self, subscribe: bool, acctCode: str) -> None:
        self.send()
        for tag, value, currency in self.summary.get(acctCode, []):
            self._send("updateAccountValue", tag, value, currency, acctCode)
        for (account, _), row in self.holdings.items():
            if account == acctCode:
                self._send_portfolio(account, row)
        self._send("accountDownloadEnd", acctCode)

    def reqAccountUpdatesMulti(self, reqId: int, account: str, modelCode: str, ledgerAndNLV: bool) -> None:
        self.send()
        self._send("accountUpdateMultiEnd", reqId)

    def reqAccountSummary(self, reqId: int, groupName: str, tags: str) -> None:
        self.send()
        for account, values in self.summary.items():
            for tag, value, currency in values:
                self._send("accountSummary", reqId, account, tag, value, currency)
        self._send("accountSummaryEnd", reqId)

    def cancelAccountSummary(self, reqId: int) -> None:
        self.send()


class FakeIB(IB):
    """A real ib_async.IB talking to a FakeGateway instead of a socket; connected on creation."""

    def __init__(
        self,
        *,
        accounts: Iterable[str] = ("DU1234567",),
        gateway: FakeGateway | None = None,
        connected: bool = True,
        port: int = 4002,
        client_id: int = 1,
    ) -> None:
        super().__init__()
        self.gateway = gateway or FakeGateway(accounts=accounts)
        self.client = self.gateway  # type: ignore[assignment]
        self._attach()
        self.RequestTimeout = 5  # a lost answer fails the test instead of hanging it
        self.RaiseRequestErrors = True
        self.placed: list[tuple[Contract, Order]] = []  # every placeOrder call, in order
        self.connect_calls: list[dict[str, Any]] = []
        self.slept: list[float] = []
        if connected:
            self.connect(port=port, clientId=client_id)

    def connect(  # type: ignore[override]
        self,
        host: str = "127.0.0.1",
        port: int = 7497,
        clientId: int = 1,
        timeout: float = 4,
        readonly: bool = False,
        account: str = "",
        raiseSyncErrors: bool = False,
        fetchFields: Any = StartupFetchALL,
    ) -> IB:
        self.connect_calls.append({"host": host, "port": port, "clientId": clientId, "readonly": readonly})
        self._attach()
        return super().connect(host, port, clientId, timeout, readonly, account, raiseSyncErrors, fetchFields)

    def __del__(self) -> None:
        pass  # no socket to close (IB.__del__ would disconnect, and log, at interpreter exit)

    def _attach(self) -> None:
        if self.gateway.wrapper is not self.wrapper:
            self.gateway.attach(self.wrapper)
            self.gateway.apiEnd += self.disconnectedEvent

    def disconnect(self) -> str | None:
        if self.gateway.wrapper is not self.wrapper:
            return None  # an IB replaced by a newer one (restart): the gateway serves that one now
        return super().disconnect()

    def placeOrder(self, contract: Contract, order: Order) -> Trade:
        self.placed.append((contract, order))
        return super().placeOrder(contract, order)

    def sleep(self, secs: float = 0.02) -> bool:  # type: ignore[override]
        """Let the queued gateway messages in (one loop run) without waiting in real time."""
        self.slept.append(secs)
        util.run(asyncio.sleep(0))
        return True

    # Test helpers: the gateway acts, then ib_async's loop runs so its state and events follow.

    def server_order(self, trade: Trade) -> ServerOrder:
        so = self.gateway.orders.get(trade.order.permId) or self.gateway.find(trade.order.orderId)
        assert so is not None, f"the gateway has no order {trade.order.orderId}"
        return so

    def fill(
        self, trade: Trade, *, price: float | None = None, quantity: float | None = None, commission: float = 1.0
    ) -> Execution:
        execution = self.gateway.fill(self.server_order(trade), price=price, quantity=quantity, commission=commission)
        self.sleep(0)
        return execution

    def reject_next(
        self,
        code: int = 201,
        message: str = "Order rejected - reason:",
        status: str | None = "Inactive",
        leg: str = "entry",
    ) -> None:
        """IBKR rejects one leg of the next transmitted bracket: error `code`, then orderStatus `status`
        (None: the error alone). A rejected parent takes its children with it."""
        self.gateway.reject_next = (code, message, status, leg)

    def cancel_at_gateway(self, trade: Trade, reason: str = "") -> None:
        self.gateway.cancel_by_gateway(self.server_order(trade), reason=reason)
        self.sleep(0)

    def drop(self) -> None:
        """The gateway goes away: ib_async sees a closed socket (disconnectedEvent, state cleared)."""
        self.gateway.drop()
