"""Brokers and market-data sources are plugins: a kind registered through the registry alone (no other
edit) receives a workflow's order, behind the same trading gate, or serves its bars. And a name nobody
registered is a clear error naming the known ones."""

from typing import Any

import pandas as pd
import pytest

from brokers.adapters.base import AccountSummary, BracketOrder, ConnectionStatus, PlacedOrder
from brokers.adapters.registry import BrokerKind, SourceKind, broker_kinds, source_kinds
from brokers.models import Order, OrderStatus, TradingControl
from brokers.orders.selectors import trading_control
from brokers.tests.test_order_steps import chain, start
from workflows.models import RunStatus
from workflows.registry import registry


class Recorder:
    """A broker that keeps every bracket it is sent."""

    name = "recorder"

    def __init__(self) -> None:
        self.sent: list[BracketOrder] = []

    def place_bracket(self, order: BracketOrder) -> PlacedOrder:
        self.sent.append(order)
        ids = {"entry": 1, "take_profit": 2, "stop_loss": 3}
        return PlacedOrder(key=order.key, status=OrderStatus.SUBMITTED, broker_ids=ids, account="REC-1")

    def find(self, key: str) -> PlacedOrder | None:
        return None

    def cancel(self, key: str) -> None: ...

    def open_orders(self) -> list:
        return []

    def positions(self) -> list:
        return []

    def account_summary(self) -> AccountSummary:
        return AccountSummary(account="REC-1", mode="paper", currency="USD", equity=100_000.0, cash=100_000.0)

    def connection_status(self) -> ConnectionStatus:
        return ConnectionStatus(broker=self.name, connected=True, account="REC-1", mode="paper")

    def what_if(self, order: BracketOrder) -> dict[str, Any]:
        return {}


@pytest.fixture
def recorder():
    broker = Recorder()

    class RecorderKind(BrokerKind):
        name = "recorder"
        label = "Recorder (test)"

        def create(self) -> Recorder:
            return broker

    broker_kinds.register(RecorderKind())
    yield broker
    broker_kinds.unregister("recorder")


def _to(graph: dict, broker: str) -> dict:
    for n in graph["nodes"]:
        if n["type"] in ("risk.position_size", "broker.place_order"):
            n["params"]["broker"] = broker
    return graph


def test_a_registered_broker_receives_the_order_of_a_run(eager_engine, user, recorder):
    TradingControl.objects.filter(id=trading_control().id).update(trading_enabled=True)
    run, steps = start(user, _to(chain(), "recorder"))
    assert run.status == RunStatus.SUCCEEDED, run.error
    [bracket] = recorder.sent
    # Sized on the recorder's own equity (100 000): 10% / 36 -> 277 shares, as with the paper broker.
    assert (bracket.symbol, bracket.side, bracket.quantity, bracket.entry) == ("AAPL", "BUY", 277, 36.0)
    assert (bracket.take_profit, bracket.stop_loss) == (38.0, 35.0)
    order = Order.objects.get(run=run)
    assert (order.broker, order.status, order.account, order.mode) == ("recorder", "submitted", "REC-1", "paper")
    assert steps["order"].outputs["order"]["sent"] is True


def test_a_registered_broker_stands_behind_the_trading_gate(eager_engine, user, recorder):
    # Not a simulation: the global trading switch (off by default) stops it, and nothing is sent.
    run, _ = start(user, _to(chain(), "recorder"))
    order = Order.objects.get(run=run)
    assert order.status == OrderStatus.BLOCKED and "global trading switch is off" in order.reason
    assert recorder.sent == []


def test_the_editor_offers_registered_brokers_and_refuses_unknown_ones(recorder):
    schema = registry.get("broker.place_order").Params.model_json_schema()["properties"]["broker"]
    assert schema["enum"] == ["default", "paper", "ibkr", "recorder"]  # simulations first, as before
    with pytest.raises(ValueError, match='Unknown broker "nowhere"; use one of: ibkr, paper, recorder'):
        registry.get("broker.place_order").Params(broker="nowhere")


def test_a_registered_source_serves_the_fetch_step(eager_engine, user):
    days = pd.date_range("2024-01-02", periods=30, freq="B")
    bars = pd.DataFrame(
        {"open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 1000.0}, index=days.rename("timestamp")
    )

    class Constant:
        def bars(self, *, symbol: str, bar: str, period: str, end=None) -> pd.DataFrame:
            return bars

    class ConstantKind(SourceKind):
        name = "constant"
        label = "Constant bars (test)"

        def create(self, *, owner_id: int | None = None) -> Constant:
            return Constant()

    source_kinds.register(ConstantKind())
    try:
        graph = {
            "nodes": [
                {"id": "fetch", "type": "market.fetch_bars", "params": {"symbol": "{{symbol}}", "source": "constant"}}
            ]
        }
        run, steps = start(user, graph, symbol="ACME")
        assert run.status == RunStatus.SUCCEEDED, run.error
        ref = steps["fetch"].outputs["bars"]
        assert ref["source"] == "constant" and ref["rows"] == 30 and ref["symbol"] == "ACME"
        schema = registry.get("market.fetch_bars").Params.model_json_schema()["properties"]["source"]
        assert "constant" in schema["enum"] and "constant: Constant bars (test)" in schema["description"]
    finally:
        source_kinds.unregister("constant")


def test_an_unknown_source_is_a_validation_error_naming_the_known_ones():
    with pytest.raises(ValueError, match='Unknown market-data source "nowhere"; use one of: bundled, ibkr, upload'):
        registry.get("market.fetch_bars").Params(symbol="AAPL", source="nowhere")


@pytest.mark.parametrize("setting", ["BROKER", "MARKET_DATA_SOURCE"])
def test_a_setting_naming_no_registered_kind_stops_the_start(settings, setting):
    from django.apps import apps
    from django.core.exceptions import ImproperlyConfigured

    setattr(settings, setting, "nowhere")
    with pytest.raises(ImproperlyConfigured, match=f"{setting}='nowhere': Unknown"):
        apps.get_app_config("brokers").ready()
