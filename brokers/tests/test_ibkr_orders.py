"""The IBKR order adapter against FakeIB: a real ib_async.IB whose socket is a fake gateway."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from ib_async import LimitOrder, Stock, StopOrder
from ib_async.ib import StartupFetch

from brokers.adapters.base import (
    LEGS,
    BracketOrder,
    BrokerError,
    BrokerPosition,
    BrokerUnavailable,
    ExecutionEvent,
    StatusEvent,
)
from brokers.adapters.ibkr import broker as ibkr_orders
from brokers.adapters.ibkr import client as ibkr
from brokers.adapters.ibkr.broker import IbkrBroker
from brokers.tests.fake_ib import DONE, FakeGateway, FakeIB

KEY = "run-41:place_order"


@pytest.fixture(autouse=True)
def _paper(settings):
    settings.TRADING_MODE = "paper"
    settings.IBKR_HOST, settings.IBKR_PORT, settings.IBKR_CLIENT_ID = "127.0.0.1", 4002, 1
    settings.IBKR_ACCOUNT = ""


@pytest.fixture
def fake() -> FakeIB:
    return FakeIB()


def bracket(key: str = KEY, **changes) -> BracketOrder:
    fields = {"symbol": "AAPL", "side": "BUY", "quantity": 10, "entry": 100.0, "take_profit": 110.0, "stop_loss": 95.0}
    return BracketOrder(key=key, **{**fields, **changes})


def legs_of(fake: FakeIB, key: str = KEY) -> dict[str, object]:
    """ib_async's trades under the key, by leg (in placement order)."""
    trades = [t for t in fake.trades() if t.order.orderRef == key]
    return dict(zip(LEGS, trades, strict=True))


# The bracket


@pytest.mark.parametrize(("side", "exit_side", "prices", "tif"), [
    ("BUY", "SELL", (100.0, 110.0, 95.0), "GTC"),
    ("SELL", "BUY", (100.0, 90.0, 104.5), "DAY"),
])  # fmt: skip
def test_bracket_legs_transmit_flags_and_order_ref(fake, side, exit_side, prices, tif):
    entry, target, stop = prices
    placed = IbkrBroker(fake).place_bracket(
        bracket(side=side, entry=entry, take_profit=target, stop_loss=stop, tif=tif)
    )

    assert len(fake.placed) == 3
    (contract, parent), (_, take_profit), (_, stop_loss) = fake.placed
    assert contract.conId == 265598 and contract.symbol == "AAPL"
    assert type(parent) is LimitOrder and type(take_profit) is LimitOrder and type(stop_loss) is StopOrder
    assert (parent.action, parent.totalQuantity, parent.lmtPrice, parent.parentId) == (side, 10, entry, 0)
    assert (take_profit.action, take_profit.totalQuantity, take_profit.lmtPrice) == (exit_side, 10, target)
    assert (stop_loss.action, stop_loss.totalQuantity, stop_loss.auxPrice) == (exit_side, 10, stop)
    assert [o.transmit for o in (parent, take_profit, stop_loss)] == [False, False, True]
    assert take_profit.parentId == stop_loss.parentId == parent.orderId != 0
    for order in (parent, take_profit, stop_loss):
        assert order.orderRef == KEY and order.tif == tif and order.account == "DU1234567"
    assert placed.status == "submitted" and not placed.reconciled and placed.message == ""
    assert placed.account == "DU1234567"
    assert placed.broker_ids == {
        "entry": parent.orderId,
        "take_profit": take_profit.orderId,
        "stop_loss": stop_loss.orderId,
    }
    # The gateway transmitted the three together once the stop arrived.
    server = {so.order.orderId: so for so in fake.gateway.orders.values()}
    assert [server[o.orderId].status for o in (parent, take_profit, stop_loss)] == [
        "Submitted",
        "PreSubmitted",
        "PreSubmitted",
    ]


def test_the_fake_holds_untransmitted_legs_until_the_transmitting_child(fake):
    contract = fake.qualifyContracts(Stock("AAPL", "SMART", "USD"))[0]
    parent, take_profit, stop_loss = fake.bracketOrder("BUY", 1, 100, 110, 95, orderRef="x")
    trades = [fake.placeOrder(contract, parent), fake.placeOrder(contract, take_profit)]
    fake.sleep(1)
    assert [t.orderStatus.status for t in trades] == ["PendingSubmit", "PendingSubmit"]
    trades.append(fake.placeOrder(contract, stop_loss))
    fake.sleep(1)
    assert [t.orderStatus.status for t in trades] == ["Submitted", "PreSubmitted", "PreSubmitted"]


def test_the_lock_is_held_while_sending(fake, monkeypatch):
    held = []
    place = fake.placeOrder
    monkeypatch.setattr(fake, "placeOrder", lambda c, o: held.append(ibkr._IB_LOCK._is_owned()) or place(c, o))
    IbkrBroker(fake).place_bracket(bracket())
    assert held == [True, True, True]


def test_an_unknown_symbol_sends_nothing(fake):
    with pytest.raises(BrokerError, match="IBKR error 200"):
        IbkrBroker(fake).place_bracket(bracket(symbol="NOPE"))
    assert fake.placed == []


def test_the_wait_for_the_acknowledgement_is_bounded(fake):
    fake.gateway.acknowledge = False
    placed = IbkrBroker(fake, ack_wait_s=2.0, poll_s=0.5).place_bracket(bracket())
    assert fake.slept == [0.5, 0.5, 0.5, 0.5]
    assert placed.status == "submitted" and "not acknowledged the bracket within 2 s" in placed.message


# Idempotency: one bracket per key


def test_a_duplicate_place_sends_one_bracket(fake):
    first = IbkrBroker(fake).place_bracket(bracket())
    second = IbkrBroker(fake).place_bracket(bracket())  # a redelivered task: a new broker, the same IB
    assert len(fake.placed) == 3
    assert second.reconciled and not first.reconciled
    assert second.broker_ids == first.broker_ids and second.status == "submitted"
    assert "nothing was sent" in second.message
    # another key is another bracket
    IbkrBroker(fake).place_bracket(bracket(key="run-42:place_order"))
    assert len(fake.placed) == 6


def test_a_resend_after_a_reconnect_of_the_default_connection_reconciles(settings, monkeypatch):
    fake = FakeIB()
    monkeypatch.setattr(ibkr, "_default_ib", fake)
    broker = IbkrBroker()  # the process-wide connection
    first = broker.place_bracket(bracket())
    fake.drop()
    assert not fake.isConnected() and fake.trades() == []  # ib_async forgot everything

    second = broker.place_bracket(bracket())  # default_ib() reconnects through ibkr._connect

    assert fake.connect_calls[-1] == {"host": "127.0.0.1", "port": 4002, "clientId": 1, "readonly": False}
    assert len(fake.placed) == 3
    assert second.reconciled and second.broker_ids == first.broker_ids and second.status == "submitted"


def test_a_failed_reconnect_is_unavailable_and_sends_nothing(monkeypatch):
    fake = FakeIB()
    monkeypatch.setattr(ibkr, "_default_ib", fake)
    fake.drop()
    fake.gateway.refuse_connect = True
    with pytest.raises(BrokerUnavailable, match=r"Cannot connect to IBKR at 127.0.0.1:4002 \(clientId 1\)"):
        IbkrBroker().place_bracket(bracket())
    assert fake.placed == [] and len(fake.connect_calls) == 2  # created, then one reconnect


def test_a_given_disconnected_ib_is_unavailable(fake):
    fake.drop()
    with pytest.raises(BrokerUnavailable, match="disconnected"):
        IbkrBroker(fake).place_bracket(bracket())
    with pytest.raises(BrokerUnavailable):
        IbkrBroker(fake).cancel(KEY)
    assert fake.placed == [] and len(fake.connect_calls) == 1


@pytest.mark.parametrize("how", ["reconnect", "restart", "restart without the startup sync"])
@pytest.mark.parametrize(("outcome", "status"), [("filled", "filled"), ("cancelled", "cancelled")])
def test_a_bracket_found_only_among_completed_orders_is_not_resent(fake, how, outcome, status):
    broker = IbkrBroker(fake)
    first = broker.place_bracket(bracket())
    legs = legs_of(fake)
    if outcome == "filled":
        fake.fill(legs["entry"])
        fake.fill(legs["take_profit"])  # the stop is cancelled with it (OCA)
    else:
        broker.cancel(KEY)
        fake.sleep(0)
    assert all(so.status in DONE for so in fake.gateway.orders.values())
    perm_ids = {leg: t.order.permId for leg, t in legs.items()}

    fake.drop()
    if how == "reconnect":
        fake.connect(port=4002)
        ib = fake
    elif how == "restart":  # a new worker process: a new IB, the same gateway
        ib = FakeIB(gateway=fake.gateway)
    else:  # ib_async only logs a startup request that timed out: the adapter must ask itself
        ib = FakeIB(gateway=fake.gateway, connected=False)
        ib.connect(port=4002, fetchFields=StartupFetch.POSITIONS)
        assert ib.trades() == []
    assert ib.openTrades() == []

    second = IbkrBroker(ib).place_bracket(bracket())
    assert len(fake.placed) == 3 and (ib is fake or ib.placed == [])
    assert second.reconciled and second.status == status
    # Completed orders carry no orderId: their permIds stand in.
    assert second.broker_ids == perm_ids and first.broker_ids != second.broker_ids


def test_orders_of_another_client_id_are_found_too():
    gateway = FakeGateway()
    IbkrBroker(FakeIB(gateway=gateway, client_id=1)).place_bracket(bracket())
    other = FakeIB(gateway=gateway, client_id=7)  # the worker came back with another IBKR_CLIENT_ID
    assert other.openTrades() == []  # reqOpenOrders only covers this client's orders
    broker = IbkrBroker(other)
    assert broker.place_bracket(bracket()).reconciled
    assert other.placed == []
    with pytest.raises(BrokerError, match="clientId 1 can only be cancelled by that client"):
        broker.cancel(KEY)
    assert gateway.cancels == []


def test_a_connection_lost_mid_bracket_is_unavailable_and_the_retry_sends_nothing(monkeypatch):
    fake = FakeIB()
    monkeypatch.setattr(ibkr, "_default_ib", fake)
    place = fake.placeOrder

    def drop_before_the_stop(contract, order):
        if order.transmit:
            fake.drop()
        return place(contract, order)

    monkeypatch.setattr(fake, "placeOrder", drop_before_the_stop)
    with pytest.raises(BrokerUnavailable, match="IBKR connection lost: Not connected; will be retried"):
        IbkrBroker().place_bracket(bracket())
    assert len(fake.gateway.orders) == 2  # the stop never reached the gateway

    again = IbkrBroker().place_bracket(bracket())
    assert len(fake.placed) == 3 and len(fake.gateway.orders) == 2
    assert again.reconciled and set(again.broker_ids) == {"entry", "take_profit"}
    # No entry may work without its stop: the legs that got through are cancelled, nothing is resent.
    assert again.status == "rejected" and "incomplete (missing stop_loss)" in again.message
    parent = next(so for so in fake.gateway.orders.values() if not so.order.parentId)
    assert parent.order.orderId in fake.gateway.cancels  # its child goes with it at IBKR


# The mode check


@pytest.mark.parametrize(("mode", "port", "connected_port", "accounts", "message"), [
    ("paper", 4002, 4002, ["U1234567"],
     "Connected IBKR account U1234567 is a live account but TRADING_MODE is paper; "
     "refusing to send orders (port 4002)"),
    ("live", 4001, 4001, ["DU1234567"],
     "Connected IBKR account DU1234567 is a paper account but TRADING_MODE is live; refusing to send orders"),
    ("paper", 4001, 4001, ["DU1234567"],
     "IBKR port 4001 is a live port (IB Gateway live) but TRADING_MODE is paper; refusing to send orders "
     "(account DU1234567)"),
    ("paper", 4002, 7496, ["DU1234567"], "IBKR port 7496 is a live port (TWS live)"),
    ("live", 7497, 7497, ["U1234567"], "IBKR port 7497 is a paper port (TWS paper) but TRADING_MODE is live"),
    ("paper", 5555, 5555, ["U1234567"], "account U1234567 is a live account"),
    ("paper", 4002, 4002, ["DU111", "DU222"],
     "IBKR reports 2 managed accounts (DU111, DU222): set IBKR_ACCOUNT to the one to trade"),
    ("demo", 4002, 4002, ["DU1234567"], 'TRADING_MODE is "demo", not "paper" or "live"'),
])  # fmt: skip
def test_a_mode_mismatch_is_refused_before_anything_is_sent(settings, mode, port, connected_port, accounts, message):
    settings.TRADING_MODE, settings.IBKR_PORT = mode, port
    fake = FakeIB(accounts=accounts, port=connected_port)
    broker = IbkrBroker(fake)
    with pytest.raises(BrokerError, match=re.escape(message)):
        broker.place_bracket(bracket())
    with pytest.raises(BrokerError, match=re.escape(message)):
        broker.what_if(bracket())
    assert fake.placed == [] and fake.gateway.orders == {} and fake.gateway.what_ifs == []


@pytest.mark.parametrize(("mode", "port", "account"), [
    ("paper", 4004, "DU1234567"),  # the compose gateway's paper relay
    ("paper", 5555, "DU1234567"),  # an unknown port: the account decides
    ("live", 4001, "U7654321"),
    ("live", 4003, "U7654321"),
])  # fmt: skip
def test_a_fitting_port_and_account_may_send(settings, mode, port, account):
    settings.TRADING_MODE, settings.IBKR_PORT = mode, port
    fake = FakeIB(accounts=[account], port=port)
    placed = IbkrBroker(fake).place_bracket(bracket())
    assert placed.status == "submitted" and placed.account == account and len(fake.placed) == 3


def test_ibkr_account_chooses_among_several(settings):
    settings.IBKR_ACCOUNT = "DU222"
    fake = FakeIB(accounts=["DU111", "DU222"])
    placed = IbkrBroker(fake).place_bracket(bracket())
    assert placed.account == "DU222" and {o.account for _, o in fake.placed} == {"DU222"}
    settings.IBKR_ACCOUNT = "DU333"
    with pytest.raises(BrokerError, match=r"IBKR_ACCOUNT DU333 is not an account of this IBKR login \(DU111, DU222\)"):
        IbkrBroker(fake).place_bracket(bracket(key="other"))


def test_the_mode_argument_wins_over_the_setting(settings):
    settings.TRADING_MODE = "live"
    fake = FakeIB()
    assert IbkrBroker(fake, mode="paper").place_bracket(bracket()).status == "submitted"
    with pytest.raises(BrokerError, match="but TRADING_MODE is live"):
        IbkrBroker(fake).place_bracket(bracket(key="other"))


# Events


@pytest.mark.django_db
def test_status_events_and_fills_reach_the_callbacks_outside_ib_async_loop(fake):
    statuses: list[StatusEvent] = []
    executions: list[ExecutionEvent] = []

    def on_status(event: StatusEvent) -> None:
        get_user_model().objects.count()  # the ORM refuses to run inside ib_async's event loop
        statuses.append(event)

    broker = IbkrBroker(fake, on_status=on_status, on_execution=executions.append)
    placed = broker.place_bracket(bracket())
    ids = placed.broker_ids
    assert [(e.key, e.leg, e.status, e.broker_id) for e in statuses] == [
        (KEY, "entry", "Submitted", ids["entry"]),
        (KEY, "take_profit", "PreSubmitted", ids["take_profit"]),
        (KEY, "stop_loss", "PreSubmitted", ids["stop_loss"]),
    ]

    statuses.clear()
    execution = fake.fill(legs_of(fake)["entry"], price=99.5, commission=1.25)
    assert statuses == [] and executions == []  # queued until the adapter is called
    assert broker.process_events() == 4  # 3 statuses, 1 execution

    assert [(e.leg, e.status, e.filled, e.avg_price) for e in statuses] == [
        ("entry", "Filled", 10.0, 99.5),
        ("take_profit", "Submitted", 0.0, None),
        ("stop_loss", "Submitted", 0.0, None),
    ]
    # one event per execution, with the commission of its report
    assert executions == [ExecutionEvent(KEY, "entry", execution.execId, 10.0, 99.5, 1.25, execution.time, "DU1234567")]

    # A reconnect re-sends the day's executions (the services keep one Fill per exec_id).
    fake.drop()
    fake.connect(port=4002)
    broker.process_events()
    assert [e.exec_id for e in executions] == [execution.execId, execution.execId]
    assert [(e.leg, e.status) for e in statuses[-2:]] == [("take_profit", "Submitted"), ("stop_loss", "Submitted")]


def test_fills_during_a_disconnect_arrive_after_the_reconnect_with_their_leg(fake):
    executions: list[ExecutionEvent] = []
    broker = IbkrBroker(fake, on_execution=executions.append)
    broker.place_bracket(bracket())
    legs = legs_of(fake)
    fake.fill(legs["entry"])
    fake.drop()
    target = fake.gateway.fill(fake.server_order(legs["take_profit"]), price=110.0)  # unseen by ib_async
    fake.connect(port=4002)
    broker.process_events()
    # Only completed orders (no parentId) remain for this bracket: the leg still comes out right.
    assert fake.openTrades() == [] and {t.order.parentId for t in fake.trades()} == {0}
    assert [(e.leg, e.exec_id, e.price) for e in executions][-1] == ("take_profit", target.execId, 110.0)
    assert [e.leg for e in executions] == ["entry", "entry", "take_profit"]  # the entry's again: a catch-up


def test_a_fill_whose_commission_report_never_comes_still_arrives(fake, monkeypatch):
    executions: list[ExecutionEvent] = []
    broker = IbkrBroker(fake, on_execution=executions.append)
    broker.place_bracket(bracket())
    fake.gateway.commission_reports = False
    execution = fake.fill(legs_of(fake)["entry"])
    broker.process_events()
    assert executions == []  # still waiting for its commission
    monkeypatch.setattr(ibkr_orders, "COMMISSION_WAIT_S", 0.0)
    broker.process_events()
    assert executions == [ExecutionEvent(KEY, "entry", execution.execId, 10.0, 100.0, 0.0, execution.time, "DU1234567")]


def test_orders_without_an_order_ref_are_ignored(fake):
    statuses, executions = [], []
    broker = IbkrBroker(fake, on_status=statuses.append, on_execution=executions.append)
    contract = fake.qualifyContracts(Stock("MSFT", "SMART", "USD"))[0]
    manual = fake.placeOrder(contract, LimitOrder("BUY", 5, 400.0))  # someone else's order
    fake.sleep(0)
    fake.fill(manual)
    assert broker.process_events() == 0
    assert statuses == [] and executions == [] and broker.open_orders() == []


def test_events_are_subscribed_once_per_ib(fake):
    before = len(fake.orderStatusEvent), len(fake.execDetailsEvent)
    statuses: list[StatusEvent] = []
    for _ in range(3):
        IbkrBroker(fake, on_status=statuses.append)
    assert (len(fake.orderStatusEvent), len(fake.execDetailsEvent)) == (before[0] + 1, before[1] + 1)
    IbkrBroker(fake).place_bracket(bracket())
    assert len(statuses) == 3  # one per leg, not one per broker


@pytest.mark.parametrize("then", ["Inactive", None])
def test_a_rejected_entry_is_rejected_with_the_message(fake, then):
    reason = "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. YOUR EQUITY WITH LOAN VALUE MUST EXCEED THE MARGIN"
    fake.reject_next(201, reason, status=then)
    statuses: list[StatusEvent] = []
    broker = IbkrBroker(fake, on_status=statuses.append)
    placed = broker.place_bracket(bracket())
    assert placed.status == "rejected" and not placed.reconciled
    assert placed.message.startswith("IBKR rejected the entry leg: Error 201") and "NOT ACCEPTED" in placed.message
    assert all(so.status in DONE for so in fake.gateway.orders.values())
    assert any(e.leg == "entry" and "Error 201" in e.message for e in statuses)
    # the same key is not sent again
    again = broker.place_bracket(bracket())
    assert again.reconciled and again.status == "rejected" and "NOT ACCEPTED" in again.message
    assert len(fake.placed) == 3


def test_a_rejected_stop_cancels_the_rest_of_the_bracket(fake):
    fake.reject_next(201, "Order rejected - reason:stop price too close", status=None, leg="stop_loss")
    placed = IbkrBroker(fake).place_bracket(bracket())
    assert placed.status == "rejected" and "stop_loss leg" in placed.message
    fake.sleep(0)
    assert {so.status for so in fake.gateway.orders.values()} == {"Cancelled"}
    assert fake.gateway.cancels == [placed.broker_ids["entry"]]  # the take-profit went with its parent


# Cancel


def test_cancel_cancels_the_working_legs(fake):
    statuses: list[StatusEvent] = []
    broker = IbkrBroker(fake, on_status=statuses.append)
    placed = broker.place_bracket(bracket())
    statuses.clear()
    broker.cancel(KEY)
    assert fake.gateway.cancels == [placed.broker_ids["entry"]]  # IBKR cancels the children with it
    broker.process_events()
    assert {so.status for so in fake.gateway.orders.values()} == {"Cancelled"}
    assert {(e.leg, e.status) for e in statuses} >= {(leg, "Cancelled") for leg in LEGS}
    assert all(t.orderStatus.status == "Cancelled" for t in legs_of(fake).values())
    assert broker.place_bracket(bracket()).status == "cancelled"  # a cancel, not a rejection
    broker.cancel(KEY)  # nothing working any more: nothing to do
    assert len(fake.gateway.cancels) == 1


def test_cancel_after_the_entry_filled_cancels_the_exits(fake):
    broker = IbkrBroker(fake)
    placed = broker.place_bracket(bracket())
    fake.fill(legs_of(fake)["entry"])
    broker.cancel(KEY)
    assert sorted(fake.gateway.cancels) == [placed.broker_ids["take_profit"], placed.broker_ids["stop_loss"]]


def test_cancel_of_an_unknown_key_is_an_error(fake):
    with pytest.raises(BrokerError, match="IBKR has no orders under key nope"):
        IbkrBroker(fake).cancel("nope")


# Reads


def test_open_orders_are_ours_by_leg(fake):
    broker = IbkrBroker(fake)
    placed = broker.place_bracket(bracket())
    orders = {o.leg: o for o in broker.open_orders()}
    assert set(orders) == set(LEGS)
    assert (orders["entry"].side, orders["entry"].price, orders["entry"].quantity) == ("BUY", 100.0, 10.0)
    assert (orders["stop_loss"].side, orders["stop_loss"].price) == ("SELL", 95.0)
    assert orders["take_profit"].broker_id == placed.broker_ids["take_profit"]
    assert {o.key for o in orders.values()} == {KEY} and {o.status for o in orders.values()} == {"submitted"}


def test_connection_status(fake, settings, monkeypatch):
    status = IbkrBroker(fake).connection_status()
    assert (status.broker, status.connected, status.account, status.mode) == ("ibkr", True, "DU1234567", "paper")
    assert status.detail.startswith("Connected to IBKR at 127.0.0.1:4002 (clientId 1), account DU1234567 (paper)")
    assert status.checked_at is not None

    fake.drop()
    status = IbkrBroker(fake).connection_status()
    assert not status.connected and "Disconnected from IBKR at 127.0.0.1:4002" in status.detail
    assert "API enabled" in status.detail and len(fake.connect_calls) == 1  # checking never connects

    monkeypatch.setattr(ibkr, "_default_ib", None)
    status = IbkrBroker().connection_status()
    assert not status.connected and "the ibkr worker holds the connection" in status.detail

    live = FakeIB(accounts=["U1234567"])
    status = IbkrBroker(live).connection_status()
    assert status.connected and status.mode == "live" and "refusing to send orders" in status.detail

    broken = FakeIB()

    def boom() -> bool:
        raise RuntimeError("boom")

    monkeypatch.setattr(broken, "isConnected", boom)
    status = IbkrBroker(broken).connection_status()
    assert not status.connected and status.detail == "IBKR status check failed: boom"


def test_account_summary(fake):
    summary = IbkrBroker(fake).account_summary()
    assert (summary.account, summary.mode, summary.currency) == ("DU1234567", "paper", "USD")
    assert (summary.equity, summary.cash, summary.buying_power) == (100250.5, 80100.25, 400000.0)
    assert (summary.realized_pnl, summary.unrealized_pnl) == (120.5, -30.25)


def test_positions_with_market_prices_where_known():
    gateway = FakeGateway()
    gateway.set_position("DU1234567", "MSFT", -5, 410.0, market_price=400.0)
    gateway.set_position("DU1234567", "SPY", 3, 500.0, market_price=None)
    positions = IbkrBroker(FakeIB(gateway=gateway)).positions()  # synced at connect
    assert sorted(positions, key=lambda p: p.symbol) == [
        BrokerPosition("MSFT", -5.0, 410.0, market_price=400.0, unrealized_pnl=50.0, realized_pnl=0.0),
        BrokerPosition("SPY", 3.0, 500.0),
    ]


def test_a_fill_shows_in_positions(fake):
    broker = IbkrBroker(fake)
    broker.place_bracket(bracket())
    fake.fill(legs_of(fake)["entry"], price=100.0)
    assert broker.positions() == [BrokerPosition("AAPL", 10.0, 100.0, 100.0, 0.0, 0.0)]


def test_what_if_asks_for_the_entry_without_sending(fake):
    result = IbkrBroker(fake).what_if(bracket())
    assert result == {
        "initMarginChange": 4512.3,
        "maintMarginChange": 4102.1,
        "equityWithLoanChange": -1.05,
        "commission": 1.05,
        "commissionCurrency": "USD",
    }
    assert fake.placed == [] and fake.gateway.orders == {}
    [(contract, order)] = fake.gateway.what_ifs
    assert contract.conId == 265598 and order.whatIf
    assert (order.action, order.totalQuantity, order.lmtPrice, order.orderType) == ("BUY", 10, 100.0, "LMT")
