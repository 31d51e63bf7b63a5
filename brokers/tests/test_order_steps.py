"""The decision-to-order chain as steps: risk.r_check -> risk.position_size -> broker.place_order."""

from decimal import Decimal

import pytest
from pydantic import BaseModel, ConfigDict

from brokers.models import Order, OrderStatus
from conftest import node
from workflows import engine, services
from workflows.models import Run, RunStatus, StepRun, StepStatus
from workflows.registry import Port, StepType, register, registry


class _DecisionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str = "BUY"
    entry: float | None = 36.0
    stop_loss: float | None = 35.0
    take_profit_conservative: float | None = 38.0
    take_profit_aggressive: float | None = 40.0


if registry.get("test.decision") is None:

    @register
    class FixedDecision(StepType):
        """A decision as an AI step would give it, with levels chosen by the test."""

        name = "test.decision"
        label = "Test decision"
        category = "test"
        Params = _DecisionParams
        inputs = (Port("bars", "bars"),)
        outputs = (Port("decision", "decision"),)

        def run(self, ctx, inputs, params):
            return {"decision": {**params.model_dump(), "symbol": ctx.symbol, "record_id": None}}


def chain(*, end="2019-01-03", approval=False, **decision) -> dict:
    nodes = [
        node("fetch", "market.fetch_bars", symbol="{{symbol}}", period="1y", bar="1d", end=end),
        node("decide", "test.decision", **decision),
        node("r_check", "risk.r_check"),
        node("size", "risk.position_size"),
        node("order", "broker.place_order"),
    ]
    e = lambda s, sp, t, tp: {"source": s, "source_port": sp, "target": t, "target_port": tp}  # noqa: E731
    edges = [
        e("fetch", "bars", "decide", "bars"),
        e("decide", "decision", "r_check", "decision"),
        e("fetch", "bars", "r_check", "bars"),
        e("r_check", "risk", "size", "risk"),
    ]
    if approval:
        nodes.append(node("ask", "flow.approval"))
        edges += [e("size", "plan", "ask", "item"), e("ask", "item", "order", "plan")]
    else:
        edges.append(e("size", "plan", "order", "plan"))
    return {"schema": 1, "params": {}, "nodes": nodes, "edges": edges}


def start(user, graph, symbol="AAPL"):
    workflow = services.workflow_create(owner=user, name="chain", graph=graph)
    run = engine.run_start(workflow=workflow, user=user, symbol=symbol)
    run.refresh_from_db()
    return run, {s.node_id: s for s in run.steps.all()}


def test_a_passing_decision_becomes_a_sized_paper_order_filled_by_hand(eager_engine, user, client):
    run, steps = start(user, chain())
    assert run.status == RunStatus.SUCCEEDED, run.error
    risk = steps["r_check"].outputs["risk"]
    # Last close 2019-01-03 (split-adjusted file) 35.55; R = (38 - 36) / (36 - 35) = 2; margin 2 / 36 = 5.56%.
    assert risk["passed"] and risk["r"] == 2.0 and risk["last_price"] == 35.55
    plan = steps["size"].outputs["plan"]
    # Equity 100 000: 1% risk / 1.00 = 1000 shares; 10% of equity / 36 = 277.7; 25 000 / 36 = 694.4 -> 277.
    assert plan["quantity"] == 277 and plan["sizing"]["limited_by"] == "max_position_pct"
    order = Order.objects.get(run=run)
    assert steps["order"].outputs["order"] == {**steps["order"].outputs["order"], "sent": True, "order_id": order.id}
    assert order.key == f"run{run.id}-order" and order.r_planned == 2.0 and order.step_run_id == steps["order"].id
    # Entry 36 on 2019-01-04, target 38 on 2019-01-09: (38 - 36) * 277 - 2 * max(1, 277 * 0.005) = 551.23.
    assert order.status == OrderStatus.CLOSED and order.realized_pnl == Decimal("551.23")
    # The run page shows the check as computed: margin 2 / 36 = 5.56%.
    client.force_login(user)
    page = client.get(f"/runs/{run.id}/").content.decode()
    assert "Passed" in page and "5.56%" in page


@pytest.mark.parametrize(
    ("decision", "reason"),
    [
        ({"action": "HOLD", "entry": None, "stop_loss": None, "take_profit_conservative": None}, "HOLD: no trade"),
        ({"stop_loss": 36.0}, "stop equals entry"),
        ({"take_profit_conservative": 36.5}, "R 0.50 is below the minimum 1.00"),
        ({"entry": 40.0, "stop_loss": 39.0, "take_profit_conservative": 44.0}, "from the last price"),
    ],
)
def test_a_failing_check_sends_nothing_and_says_why(eager_engine, user, decision, reason):
    run, steps = start(user, chain(**decision))
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert steps["r_check"].outputs["risk"]["passed"] is False
    assert any(reason in r for r in steps["r_check"].outputs["risk"]["reasons"])
    out = steps["order"].outputs["order"]
    assert out["sent"] is False and "the risk check did not pass" in out["reason"] and reason in out["reason"]
    assert not Order.objects.exists()


def test_a_duplicated_delivery_of_place_order_sends_one_order(eager_engine, user):
    run, steps = start(user, chain(take_profit_conservative=100.0, take_profit_aggressive=100.0, end="2019-01-03"))
    first = Order.objects.get(run=run)
    # The worker sent the order, then died before recording it: the message is delivered again.
    StepRun.objects.filter(id=steps["order"].id).update(status=StepStatus.QUEUED)
    Run.objects.filter(id=run.id).update(status=RunStatus.RUNNING, finished_at=None)
    engine.step_run_execute(step_run_id=steps["order"].id)
    again = StepRun.objects.get(id=steps["order"].id)
    assert again.status == StepStatus.SUCCEEDED and again.attempt == 2
    assert Order.objects.count() == 1 and again.outputs["order"]["order_id"] == first.id
    assert first.fills.filter(leg="entry").count() == 1


def test_an_approval_can_change_the_quantity_and_a_rejection_sends_nothing(eager_engine, user):
    from workflows.approvals.services import approval_decide
    from workflows.models import Approval

    run, _ = start(user, chain(approval=True))
    assert run.status == RunStatus.WAITING and not Order.objects.exists()
    approval = Approval.objects.get(run=run)
    assert approval.quantity == 277 and approval.summary["side"] == "BUY"
    approval_decide(approval=approval, user=user, approve=True, quantity=50)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and Order.objects.get(run=run).quantity == 50

    # Raising it over what the sizing rules allow sends nothing: equity is now 100 098 (the first run made
    # 50 x (38 - 36) - 2 x 1.00 = 98), 10% of it / 36 = 278.05 -> 278 shares at most.
    run, _ = start(user, chain(approval=True))
    approval_decide(approval=Approval.objects.get(run=run), user=user, approve=True, quantity=5000)
    run.refresh_from_db()
    out = run.steps.get(node_id="order").outputs["order"]
    assert (
        out["sent"] is False
        and out["reason"] == "the quantity 5000 is over the 278 the sizing rules allow for this trade"
    )

    run, _ = start(user, chain(approval=True))
    approval_decide(approval=Approval.objects.get(run=run), user=user, approve=False)
    run.refresh_from_db()
    out = run.steps.get(node_id="order").outputs["order"]
    assert out["sent"] is False and out["reason"] == "the approval was rejected by alice"
    assert not Order.objects.filter(run=run).exists()


def test_place_order_refuses_a_plan_without_a_real_risk_check(eager_engine, user):
    graph = {
        "schema": 1,
        "params": {},
        "nodes": [node("src", "test.source"), node("risk", "test.risk"), node("order", "broker.place_order")],
        "edges": [
            {"source": "src", "source_port": "out", "target": "risk", "target_port": "in"},
            {"source": "risk", "source_port": "out", "target": "order", "target_port": "plan"},
        ],
    }
    run, steps = start(user, graph)
    assert run.status == RunStatus.FAILED
    assert "does not come through a passing risk.r_check" in steps["order"].error
    assert not Order.objects.exists()


@pytest.fixture
def fake_ib(settings, monkeypatch):
    """The ibkr worker's connection is a FakeIB (no gateway can run here): a paper account on 4002."""
    from brokers.adapters.ibkr import broker as ibkr_orders
    from brokers.tests.fake_ib import FakeIB

    settings.BROKER, settings.TRADING_MODE, settings.IBKR_PORT, settings.IBKR_ACCOUNT = "ibkr", "paper", 4002, ""
    fake = FakeIB()
    monkeypatch.setattr(ibkr_orders.ibkr, "default_ib", lambda: fake)
    return fake


def test_an_ibkr_order_is_sent_once_and_its_events_update_our_rows(eager_engine, user, fake_ib):
    from brokers.orders.services import broker_get, trading_control_update

    trading_control_update(user=None, trading_enabled=True)
    run, steps = start(user, chain())
    assert run.status == RunStatus.SUCCEEDED, run.error
    order = Order.objects.get(run=run)
    assert order.broker == "ibkr" and order.mode == "paper" and order.account == "DU1234567"
    assert order.status == OrderStatus.SUBMITTED and len(fake_ib.placed) == 3
    assert {o.orderRef for _, o in fake_ib.placed} == {f"run{run.id}-order"}
    assert "initMarginChange" in order.preview

    # The message is delivered again after a crash: the adapter finds the orders by orderRef.
    StepRun.objects.filter(id=steps["order"].id).update(status=StepStatus.QUEUED)
    Run.objects.filter(id=run.id).update(status=RunStatus.RUNNING, finished_at=None)
    Order.objects.filter(id=order.id).update(status=OrderStatus.SUBMITTING)
    engine.step_run_execute(step_run_id=steps["order"].id)
    assert len(fake_ib.placed) == 3 and Order.objects.count() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.SUBMITTED and "nothing was sent again" in order.reason

    # IBKR fills the entry, then the target: our Order, Fill and Position rows follow its events.
    legs = [t for t in fake_ib.trades() if t.order.orderRef == order.key]
    entry = next(t for t in legs if t.order.parentId == 0)
    take_profit = next(t for t in legs if t.order.parentId and t.order.orderType == "LMT")
    fake_ib.fill(entry, price=36.0)
    broker_get("ibkr").process_events()
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED and order.fills.get().price == Decimal("36")
    fake_ib.fill(take_profit, price=38.0)
    broker_get("ibkr").process_events()
    order.refresh_from_db()
    assert order.status == OrderStatus.CLOSED and order.exit_reason == "take_profit"
    assert order.fills.count() == 2


def test_a_live_account_is_refused_in_paper_mode(eager_engine, user, settings, monkeypatch):
    from brokers.adapters.ibkr import broker as ibkr_orders
    from brokers.orders.services import trading_control_update
    from brokers.tests.fake_ib import FakeIB

    settings.BROKER, settings.TRADING_MODE, settings.IBKR_PORT = "ibkr", "paper", 4002
    fake = FakeIB(accounts=("U7654321",))
    monkeypatch.setattr(ibkr_orders.ibkr, "default_ib", lambda: fake)
    trading_control_update(user=None, trading_enabled=True)
    run, steps = start(user, chain())
    order = Order.objects.get(run=run)
    assert order.status == OrderStatus.REJECTED and "U7654321" in order.reason and fake.placed == []
    assert steps["order"].outputs["order"]["sent"] is False
