"""Cancel means no new order: a run cancelled before its order is sent sends nothing (the order step's own
check, then the trading gate's under the run's lock); one cancelled while or after it is sent has the
order's unfilled legs cancelled and says so on the run; an entry that filled keeps its exits.

Each cancel is made to land at one exact moment by wrapping the call right after it with a call of the
real `engine.run_cancel` (the eager engine runs the whole run in this process)."""

from __future__ import annotations

from typing import Any

import pytest

from brokers.models import Order, OrderStatus
from brokers.orders import services as order_services
from brokers.orders.services import RUN_CANCELLED
from brokers.tests.test_order_steps import chain, start
from workflows import engine
from workflows.models import Run, RunStatus, StepStatus

# A trade on the last bundled AAPL bar (2024-12-30, close 252.20): no bar follows, so its entry stays unfilled.
# R (266 - 252) / (252 - 246) = 2.33, margin 14 / 252 = 5.6%: it passes the default limits.
UNFILLED = {"end": "2024-12-31", "entry": 252.0, "stop_loss": 246.0}
UNFILLED_TARGETS = {"take_profit_conservative": 266.0, "take_profit_aggressive": 270.0}


def _cancel(run_id: int) -> None:
    engine.run_cancel(run=Run.objects.get(id=run_id))


def _cancel_before(monkeypatch, target: Any, name: str, run_id_of) -> None:
    """Replace target.name with the real call preceded by a cancel of the run (run_id_of(args, kwargs))."""
    real = getattr(target, name)

    def cancelling_first(*args, **kwargs):
        _cancel(run_id_of(args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, cancelling_first)


def _cancel_after_order_place(monkeypatch) -> None:
    """The order is sent and recorded; then, before the step has finished, the run is cancelled."""
    real = order_services.order_place

    def then_cancel(**kwargs):
        order = real(**kwargs)
        _cancel(kwargs["run_id"])
        return order

    monkeypatch.setattr(order_services, "order_place", then_cancel)


def _only_run() -> Run:
    return Run.objects.get()


def _order_step(run: Run):
    return run.steps.get(node_id="order")


@pytest.fixture
def ibkr(settings, monkeypatch):
    """The ibkr worker's connection is a FakeIB (a paper account on 4002), with trading switched on."""
    from brokers.adapters.ibkr import broker as ibkr_orders
    from brokers.orders.services import trading_control_update
    from brokers.tests.fake_ib import FakeIB

    settings.BROKER, settings.TRADING_MODE, settings.IBKR_PORT, settings.IBKR_ACCOUNT = "ibkr", "paper", 4002, ""
    fake = FakeIB()
    monkeypatch.setattr(ibkr_orders.ibkr, "default_ib", lambda: fake)
    trading_control_update(user=None, trading_enabled=True)
    return fake


def _working_at_ibkr(fake) -> list:
    return [t for t in fake.trades() if not t.isDone()]


# Before the send


def test_a_run_cancelled_before_the_order_step_places_sends_nothing(eager_engine, user, monkeypatch):
    import strategies.selectors

    # The cancel lands while the step reads the strategy, right before it would place the order.
    _cancel_before(monkeypatch, strategies.selectors, "strategy_of_run", lambda a, kw: kw["run_id"])
    start(user, chain())
    run = _only_run()
    assert run.status == RunStatus.CANCELLED
    step = _order_step(run)
    assert step.status == StepStatus.CANCELLED and step.outputs == {}
    # The step's own check: no order is even written (the gate would write a BLOCKED row).
    assert not Order.objects.exists()


@pytest.mark.parametrize("broker", ["paper", "ibkr"])
def test_the_gate_blocks_an_order_of_a_run_cancelled_after_the_steps_check(
    eager_engine, user, monkeypatch, request, broker
):
    fake = request.getfixturevalue("ibkr") if broker == "ibkr" else None
    # The cancel lands after the step's last check, as order_place is entered: only the gate can see it.
    _cancel_before(monkeypatch, order_services, "order_place", lambda a, kw: kw["run_id"])
    start(user, chain())
    run = _only_run()
    order = Order.objects.get(run=run)
    assert order.status == OrderStatus.BLOCKED and order.reason == RUN_CANCELLED
    assert not order.fills.exists() and order.legs == {}
    if fake is not None:
        assert fake.placed == []
    step = _order_step(run)
    assert step.status == StepStatus.CANCELLED and step.outputs == {}
    assert any(m.startswith("No order sent: ") and m.endswith(RUN_CANCELLED) for m in _messages(step))
    # Nothing was sent, so the run claims no order.
    assert run.status == RunStatus.CANCELLED and run.error == "Cancelled by user"


# While the bracket is on its way


def test_a_cancel_while_a_paper_order_is_on_its_way_cancels_it(eager_engine, user, monkeypatch):
    from brokers.adapters.paper.broker import PaperBroker

    # The order row is committed SUBMITTING (the gate let it through); the cancel lands before the send.
    _cancel_before(monkeypatch, PaperBroker, "place_bracket", lambda a, kw: Order.objects.get(key=a[1].key).run_id)
    start(user, chain())
    run = _only_run()
    order = Order.objects.get(run=run)
    assert order.status == OrderStatus.CANCELLED and order.reason == "Cancelled with its run"
    assert not order.fills.exists()
    assert run.status == RunStatus.CANCELLED
    assert f"Cancelled after order {order.id} was sent; its unfilled legs were cancelled." in run.error
    assert _order_step(run).status == StepStatus.CANCELLED


def test_a_cancel_while_an_ibkr_order_is_on_its_way_cancels_it_once_ibkr_has_it(eager_engine, user, monkeypatch, ibkr):
    from brokers.adapters.ibkr.broker import IbkrBroker

    # The run's cancel hook asks IBKR to cancel before the bracket is there (nothing to cancel yet: the row
    # is marked cancelled); the bracket then arrives, and order_place cancels it at IBKR.
    _cancel_before(monkeypatch, IbkrBroker, "place_bracket", lambda a, kw: Order.objects.get(key=a[1].key).run_id)
    start(user, chain())
    run = _only_run()
    order = Order.objects.get(run=run)
    assert len(ibkr.placed) == 3 and _working_at_ibkr(ibkr) == []
    assert order.status == OrderStatus.CANCELLED
    assert {leg["status"] for leg in order.legs.values()} == {"cancelled"}
    assert run.status == RunStatus.CANCELLED and f"Cancelled after order {order.id} was sent" in run.error
    assert _order_step(run).status == StepStatus.CANCELLED


# After the send


def test_a_cancel_after_an_ibkr_order_was_sent_cancels_its_legs_and_the_run_says_so(
    eager_engine, user, monkeypatch, ibkr
):
    _cancel_after_order_place(monkeypatch)
    start(user, chain())
    run = _only_run()
    order = Order.objects.get(run=run)
    assert len(ibkr.placed) == 3 and _working_at_ibkr(ibkr) == []
    assert order.status == OrderStatus.CANCELLED and order.filled_quantity == 0
    assert run.status == RunStatus.CANCELLED
    assert run.error.startswith(f"Cancelled by user. Cancelled after order {order.id} was sent;")
    step = _order_step(run)
    assert step.status == StepStatus.CANCELLED
    assert any(f"Order {order.id} " in m and "was sent, then the run was cancelled" in m for m in _messages(step))


def test_a_cancel_after_a_paper_order_was_sent_cancels_its_unfilled_legs(eager_engine, user, monkeypatch):
    _cancel_after_order_place(monkeypatch)
    start(user, chain(**UNFILLED, **UNFILLED_TARGETS))
    run = _only_run()
    order = Order.objects.get(run=run)
    assert order.status == OrderStatus.CANCELLED and order.reason == "Cancelled with its run"
    assert {leg["status"] for leg in order.legs.values()} == {"cancelled"}
    assert run.error == (
        f"Cancelled by user. Cancelled after order {order.id} was sent; its unfilled legs were cancelled."
    )


def test_a_cancel_after_the_entry_filled_keeps_the_stop_and_says_so(eager_engine, user, monkeypatch):
    from brokers.orders.services import broker_get

    _cancel_after_order_place(monkeypatch)
    # Entry 36 fills on 2019-01-04; neither the stop 35 nor a target of 500 is ever reached: the position is open.
    start(user, chain(take_profit_conservative=500.0, take_profit_aggressive=500.0))
    run = _only_run()
    order = Order.objects.get(run=run)
    assert order.status == OrderStatus.FILLED and order.legs["stop_loss"]["status"] != "cancelled"
    assert {(o.key, o.leg) for o in broker_get("paper").open_orders()} >= {(order.key, "stop_loss")}
    assert run.status == RunStatus.CANCELLED
    assert (
        f"Cancelled after order {order.id} was sent; its entry had filled (277 shares): the position keeps its "
        "stop-loss and take-profit." in run.error
    )


def test_a_failing_cancel_hook_never_undoes_the_cancel_and_is_written_on_the_run(eager_engine, user, settings):
    settings.RUN_CANCELLED_HOOKS = ["brokers.tests.test_run_cancel.hook_that_fails", *settings.RUN_CANCELLED_HOOKS]
    run, _ = start(user, chain(approval=True))  # parked at the approval: cancellable
    engine.run_cancel(run=run)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    hook = "brokers.tests.test_run_cancel.hook_that_fails"
    assert run.error == f"Cancelled by user. The cancel hook {hook} failed: RuntimeError"
    assert not Order.objects.exists()


def hook_that_fails(*, run_id: int) -> str:
    raise RuntimeError(f"broken hook for run {run_id}")


def _messages(step) -> list[str]:
    return [line["message"] for line in step.logs]
