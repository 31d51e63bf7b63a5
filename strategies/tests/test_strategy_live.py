"""Safety rule 1 for strategies: a strategy's run sends a live order only with the strategy's own live
switch on (with the global switch and TRADING_MODE=live); the workflow's switch does not count for it."""

import pytest

from brokers.models import Order, OrderStatus
from brokers.tests.test_order_steps import chain
from strategies.services import strategy_create, strategy_run, strategy_update
from workflows import services
from workflows.models import RunStatus


@pytest.fixture
def live_gateway(settings, monkeypatch):
    """A live IBKR account on the live port, as the ibkr worker's connection (a FakeIB)."""
    from brokers.adapters.ibkr import broker as ibkr_orders
    from brokers.orders.services import trading_control_update
    from brokers.tests.fake_ib import FakeIB

    settings.BROKER, settings.TRADING_MODE, settings.IBKR_PORT, settings.IBKR_ACCOUNT = "ibkr", "live", 4001, ""
    fake = FakeIB(accounts=("U7654321",), port=4001)
    monkeypatch.setattr(ibkr_orders.ibkr, "default_ib", lambda: fake)
    trading_control_update(user=None, trading_enabled=True)
    return fake


def _order_of(strategy, user) -> Order:
    link = strategy_run(strategy=strategy, user=user)
    run = link.batch.runs.get()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return Order.objects.get(run=run)


def test_a_strategys_live_switch_is_what_a_live_order_checks(eager_engine, user, live_gateway):
    # The workflow's own live switch is on: it does not make a strategy's order live.
    workflow = services.workflow_create(owner=user, name="chain", graph=chain())
    services.workflow_update(workflow=workflow, live_trading=True)
    strategy = strategy_create(owner=user, name="Live?", workflow_id=workflow.pk, symbols=["AAPL"])
    assert strategy.live is False  # off by default

    order = _order_of(strategy, user)
    assert order.status == OrderStatus.BLOCKED and "Live trading is off" in order.reason
    assert live_gateway.placed == []

    # The strategy's switch on (and the workflow's off): the order goes to the live account.
    services.workflow_update(workflow=workflow, live_trading=False)
    strategy_update(strategy=strategy, live=True)
    order = _order_of(strategy, user)
    assert order.status == OrderStatus.SUBMITTED, order.reason
    assert order.mode == "live" and order.account == "U7654321"
    assert len(live_gateway.placed) == 3  # the bracket's three legs


def test_a_rerun_of_a_strategys_run_keeps_the_strategys_switches(eager_engine, user, live_gateway):
    from workflows import engine

    # The workflow's switch is on, the strategy's off: a rerun of the strategy's run is not live either.
    workflow = services.workflow_create(owner=user, name="chain", graph=chain())
    services.workflow_update(workflow=workflow, live_trading=True)
    strategy = strategy_create(owner=user, name="Paper", workflow_id=workflow.pk, symbols=["AAPL"])
    first = strategy_run(strategy=strategy, user=user).batch.runs.get()
    first.refresh_from_db()
    rerun = engine.run_rerun(run=first, user=user, from_failed=False, latest=False)
    rerun.refresh_from_db()
    assert rerun.batch_id is None and rerun.status == RunStatus.SUCCEEDED, rerun.error
    order = Order.objects.get(key=f"run{first.id}-order")  # reruns share the first run's key: one row
    assert order.status == OrderStatus.BLOCKED and "Live trading is off" in order.reason
    assert live_gateway.placed == []

    # A disabled strategy's runs send nothing, reruns included.
    strategy_update(strategy=strategy, enabled=False)
    again = engine.run_rerun(run=first, user=user, from_failed=False, latest=False)
    again.refresh_from_db()
    out = again.steps.get(node_id="order").outputs["order"]
    assert out["sent"] is False and out["reason"] == 'the strategy "Paper" is disabled'
