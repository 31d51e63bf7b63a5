"""Strategies: what is refused at save time (naming the field), running one as a batch with its
overrides and pinned version, its AI budget and its live switch."""

from decimal import Decimal

import pytest

from strategies.models import AiRecord, Strategy, StrategyBatch
from strategies.selectors import strategy_batches, strategy_of_run
from strategies.services import StrategyInvalid, strategy_create, strategy_run, strategy_update
from strategies.tests.strategy_helpers import SYMBOLS, fetch_graph, make_strategy, make_workflow
from workflows import services
from workflows.engine import StepContext
from workflows.errors import ApplicationError, StepError
from workflows.models import Run, RunStatus, Trigger

pytestmark = pytest.mark.django_db


def refused(**values) -> dict[str, list[str]]:
    with pytest.raises(StrategyInvalid) as caught:
        strategy_create(**values)
    assert not Strategy.objects.exists()
    return caught.value.by_field()


def base(user, workflow, **changes):
    return {"owner": user, "name": "S", "workflow_id": workflow.pk, "symbols": ["AAPL"], **changes}


@pytest.mark.usefixtures("no_dispatch")
def test_symbols_are_cleaned_and_deduplicated(user):
    strategy = make_strategy(user, symbols=[" aapl", "AAPL", "brk.b", "msft "])
    assert strategy.symbols == ["AAPL", "BRK.B", "MSFT"]


def test_bad_symbols_are_refused_by_name(user):
    workflow = make_workflow(user)
    errors = refused(**base(user, workflow, symbols=["AAPL", "$$$", "A B"]))
    assert list(errors) == ["symbols"] and '"$$$"' in errors["symbols"][0]
    assert "at least one symbol" in refused(**base(user, workflow, symbols=[" ", ""]))["symbols"][0]
    too_many = [f"S{i}" for i in range(501)]
    assert "at most 500 symbols" in refused(**base(user, workflow, symbols=too_many))["symbols"][0]


def test_an_override_the_graph_refuses_is_reported_at_save_time(user):
    workflow = make_workflow(user)
    errors = refused(**base(user, workflow, overrides={"period_1": "banana"}))
    assert list(errors) == ["overrides"]
    assert 'period_1 = "banana" is refused: Node "fetch", field "period"' in errors["overrides"][0]


@pytest.mark.parametrize(
    ("overrides", "text"),
    [
        ({"perod_1": "2y"}, '"perod_1" is not a parameter of v1 (its parameters: bar_1, period_1, tag)'),
        ({"symbol": "MSFT"}, '"symbol" cannot be overridden'),
        ({"1abc": 1}, '"1abc" is not a valid parameter name'),
        ({"tag": ["a", "b"]}, '"tag" must be text, a number or true/false'),
        ({"tag": None}, '"tag" must be text, a number or true/false'),
        ("period_1=2y", "Overrides must be an object"),
    ],
)
def test_bad_overrides_are_refused(user, overrides, text):
    errors = refused(**base(user, make_workflow(user), overrides=overrides))
    assert any(text in m for m in errors["overrides"]), errors


def test_the_workflow_must_be_the_owners_and_the_version_its_own(user, other_user):
    theirs = make_workflow(other_user)
    assert "no workflow" in refused(**base(user, theirs))["workflow"][0]
    mine = make_workflow(user)
    assert "has no version 7" in refused(**base(user, mine, version_number=7))["version"][0]
    assert (
        "cannot be negative" in refused(**base(user, mine, ai_cost_budget_usd=Decimal("-1")))["ai_cost_budget_usd"][0]
    )
    assert "needs a name" in refused(**base(user, mine, name="  "))["name"][0]
    # Everything wrong at once is reported at once.
    assert set(refused(**base(user, mine, name="", symbols=["$$$"], overrides={"period_1": "x"}))) == {
        "name",
        "symbols",
        "overrides",
    }


def test_an_update_is_checked_again_and_writes_nothing_when_refused(user, no_dispatch):
    strategy = make_strategy(user)
    with pytest.raises(StrategyInvalid):
        strategy_update(strategy=strategy, symbols=["AAPL"], overrides={"period_1": "banana"})
    strategy.refresh_from_db()
    assert strategy.overrides == {"period_1": "2y"} and strategy.symbols == SYMBOLS


def test_running_a_strategy_makes_a_batch_with_its_overrides_on_the_pinned_version(user, no_dispatch):
    workflow = make_workflow(user)
    graph = fetch_graph()
    graph["params"]["period_1"] = "5y"
    v2 = services.version_save(workflow=workflow, graph=graph, author=user, message="longer")
    assert v2.number == 2
    strategy = make_strategy(
        user, workflow=workflow, version_number=1, overrides={"tag": "strategy-tag", "bar_1": "1w"}
    )

    link = strategy_run(strategy=strategy, user=user, trigger=Trigger.API)
    runs = list(Run.objects.filter(batch=link.batch).order_by("symbol"))
    assert [r.symbol for r in runs] == sorted(SYMBOLS)
    assert link.batch.label == "Three symbols" and link.batch.trigger == Trigger.API
    for run in runs:
        assert run.version.number == 1 and run.trigger == Trigger.API
        # Overrides over the v1 defaults (period_1 "1y", not v2's "5y"), the run's own symbol.
        assert run.params == {"period_1": "1y", "bar_1": "1w", "tag": "strategy-tag", "symbol": run.symbol}
        steps = {s.node_id: s.params for s in run.steps.all()}
        assert steps["fetch"]["period"] == "1y" and steps["fetch"]["bar"] == "1w"
        assert steps["tagged"]["tag"] == "strategy-tag"
        assert steps["literal"]["tag"] == "literal"  # a step's own value comes first
        assert strategy_of_run(run_id=run.id) == strategy

    [progress] = strategy_batches(strategy=strategy)
    assert (progress["total"], progress["finished"], progress["state"]) == (3, 0, "running")
    Run.objects.filter(batch=link.batch, symbol="AAPL").update(status=RunStatus.SUCCEEDED)
    Run.objects.filter(batch=link.batch, symbol="IBM").update(status=RunStatus.FAILED)
    [progress] = strategy_batches(strategy=strategy)
    assert (progress["finished"], progress["succeeded"], progress["failed"], progress["percent"]) == (2, 1, 1, 67)


def test_the_latest_version_is_used_when_nothing_is_pinned(user, no_dispatch):
    workflow = make_workflow(user)
    strategy = make_strategy(user, workflow=workflow)
    services.version_save(workflow=workflow, graph=fetch_graph(), author=user)
    link = strategy_run(strategy=strategy, user=user)
    assert {r.version.number for r in link.batch.runs.all()} == {2}


def test_a_disabled_strategy_does_not_run(user, no_dispatch):
    strategy = make_strategy(user, enabled=False)
    with pytest.raises(ApplicationError, match="is disabled"):
        strategy_run(strategy=strategy, user=user)
    assert not StrategyBatch.objects.exists() and not Run.objects.exists()


def _budget_check(run, **kwargs):
    from strategies.ai.steps import _budget

    step = run.steps.first()
    ctx = StepContext(
        run_id=run.id, step_run_id=step.id, node_id=step.node_id, symbol=run.symbol, run_params={}, attempt=1,
        idempotency_key="k",
    )  # fmt: skip
    return _budget(ctx, **kwargs)


def test_the_strategys_ai_budget_is_the_runs_budget(user, no_dispatch):
    strategy = make_strategy(user, ai_cost_budget_usd=Decimal("0.25"))
    run = strategy_run(strategy=strategy, user=user).batch.runs.first()
    AiRecord.objects.create(
        run=run, step_run=run.steps.first(), node_id="x", symbol=run.symbol, kind="analysis", analyst="model",
        cost_usd=Decimal("0.30"),
    )  # fmt: skip
    # The workflow allows 1 USD; the strategy 0.25, which 0.30 spent is over.
    assert strategy.workflow.ai_cost_budget_usd == Decimal("1")
    with pytest.raises(StepError, match=r"over its AI budget of 0.2500 USD.*"):
        _budget_check(run, after=True)
    with pytest.raises(StepError, match='Raise the budget on the strategy "Three symbols"'):
        _budget_check(run, cost=0.01)
    # Without its own budget, the workflow's applies: 0.30 of 1 USD is fine.
    strategy_update(strategy=strategy, ai_cost_budget_usd=None)
    _budget_check(run, after=True)
