"""Analytics on a fixture of runs, steps, decisions and orders whose every figure is worked out by
hand below; then the page and the API as owner, other user, staff and anonymous."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from brokers.models import Order, OrderStatus
from conftest import chain_graph
from strategies.analytics.selectors import analytics_compute, analytics_scope, date_range, nearest_rank
from strategies.models import AiRecord, PromptTemplate, Strategy, StrategyBatch
from workflows import services
from workflows.errors import ApplicationError
from workflows.models import Batch, Run, RunStatus, StepRun, StepStatus

pytestmark = pytest.mark.django_db

NOW = timezone.now()
DAY_A = NOW - timedelta(days=3)  # r1, r2, r3
DAY_B = NOW - timedelta(days=1)  # r4, r5


def _prompt(key: str, version: int) -> PromptTemplate:
    return PromptTemplate.objects.create(key=key, version=version, kind="decide", title=key, system="s", user="u")


def _run(workflow, status: str, *, at, seconds: float, symbol: str = "AAPL") -> Run:
    run = Run.objects.create(
        workflow=workflow,
        version=workflow.versions.first(),
        created_by=workflow.owner,
        symbol=symbol,
        status=status,
        started_at=at,
        finished_at=at + timedelta(seconds=seconds),
    )
    Run.objects.filter(id=run.id).update(created_at=at)
    return run


def _step(run: Run, node_id: str, step_type: str, seconds: float | None, *, status=StepStatus.SUCCEEDED, **fields):
    start = run.started_at
    return StepRun.objects.create(
        run=run,
        node_id=node_id,
        step_type=step_type,
        status=status,
        started_at=start if seconds is not None else None,
        finished_at=start + timedelta(seconds=seconds) if seconds is not None else None,
        **fields,
    )


def _decision(run: Run, action: str, prompt, tokens: tuple[int, int], cost: str, kind: str = "decision"):
    # The record's step: the run's decide node, or one without times (so not in the durations).
    step = run.steps.filter(node_id="decide").first() or _step(run, "decide", "ai.decide", None)
    return AiRecord.objects.create(
        run=run,
        step_run=step,
        node_id="decide",
        symbol=run.symbol,
        kind=kind,
        analyst="model",
        prompt=prompt,
        action=action,
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        cost_usd=Decimal(cost),
    )


def _order(run: Run, key: str, *, status: str, side: str = "BUY", stop: str = "95", exit_: str | None = None, **f):
    closed = status == OrderStatus.CLOSED
    return Order.objects.create(
        key=key,
        run=run,
        owner=run.workflow.owner,
        broker="paper",
        symbol=run.symbol,
        side=side,
        quantity=20,
        entry_price=Decimal("100"),
        take_profit=Decimal("110") if side == "BUY" else Decimal("90"),
        stop_loss=Decimal(stop),
        status=status,
        avg_entry_price=Decimal("100") if closed else None,
        avg_exit_price=Decimal(exit_) if exit_ else None,
        filled_at=run.finished_at if closed else None,
        closed_at=run.finished_at + timedelta(hours=1) if closed else None,
        **f,
    )


@pytest.fixture
def fixture(user, other_user):
    """Five runs of one workflow in the last 30 days (3 succeeded, 2 failed), plus rows that must
    not count: an older run, another workflow's run, another user's run."""
    workflow = services.workflow_create(owner=user, name="Two timeframes", graph=chain_graph())
    decide_v1, decide_v2, chart_v1 = _prompt("decide", 1), _prompt("decide", 2), _prompt("chart_daily", 1)
    r1 = _run(workflow, RunStatus.SUCCEEDED, at=DAY_A, seconds=10)
    r2 = _run(workflow, RunStatus.SUCCEEDED, at=DAY_A + timedelta(minutes=1), seconds=20)
    r3 = _run(workflow, RunStatus.SUCCEEDED, at=DAY_A + timedelta(minutes=2), seconds=30)
    r4 = _run(workflow, RunStatus.FAILED, at=DAY_B, seconds=5)
    r5 = _run(workflow, RunStatus.FAILED, at=DAY_B + timedelta(minutes=1), seconds=15)

    # Step "fetch" (market.fetch_bars) in every run: 1, 2, 3, 4, 10 s.
    for run, seconds in ((r1, 1), (r2, 2), (r3, 3), (r4, 4), (r5, 10)):
        _step(run, "fetch", "market.fetch_bars", seconds, status=StepStatus.FAILED if run is r5 else "succeeded")
    # A second node of the same type, in r1 only: 5 s.
    _step(r1, "fetch_weekly", "market.fetch_bars", 5)
    # "decide" (ai.decide): 2, 4, 6 s, and 8 s in r4 where it failed; skipped in r5 (no times).
    for run, seconds in ((r1, 2), (r2, 4), (r3, 6)):
        _step(run, "decide", "ai.decide", seconds)
    _step(r4, "decide", "ai.decide", 8, status=StepStatus.FAILED)
    _step(r5, "decide", "ai.decide", None, status=StepStatus.SKIPPED)
    # Reused by a rerun: its times are the old run's, so it is left out (else decide's p95 would be 100).
    _step(r2, "decide_again", "ai.decide", 100, reused_from=r1.steps.get(node_id="decide"))

    # Decisions: BUY, BUY, SELL with decide v1; HOLD, HOLD with decide v2.
    # Tokens (prompt, completion): (1000, 200), (1200, 300), (800, 100), (900, 150), (1100, 250).
    # Costs: 0.010 + 0.020 + 0.005 + 0.0075 + 0.0125 = 0.055 USD.
    _decision(r1, "BUY", decide_v1, (1000, 200), "0.010")
    _decision(r2, "BUY", decide_v1, (1200, 300), "0.020")
    _decision(r3, "SELL", decide_v1, (800, 100), "0.005")
    _decision(r4, "HOLD", decide_v2, (900, 150), "0.0075")
    _decision(r5, "HOLD", decide_v2, (1100, 250), "0.0125")
    # A chart analysis in r1: counts in tokens and cost (500, 50, 0.001), not in decisions.
    _decision(r1, "", chart_v1, (500, 50), "0.001", kind="analysis")

    # Orders, entry 100, risk 5 a share (stop 95 long, 105 short):
    # A r1 BUY exit 110: R +2.0, P&L +200; B r2 BUY exit 95: R -1.0, P&L -100;
    # C r3 SELL exit 97.5: R +0.5, P&L +50; D r2 (a second order node) blocked by the kill switch.
    _order(r1, "A", status=OrderStatus.CLOSED, exit_="110", realized_pnl=Decimal("200"))
    _order(r2, "B", status=OrderStatus.CLOSED, exit_="95", realized_pnl=Decimal("-100"))
    _order(r3, "C", status=OrderStatus.CLOSED, side="SELL", stop="105", exit_="97.5", realized_pnl=Decimal("50"))
    _order(r2, "D", status=OrderStatus.BLOCKED, reason="kill switch")

    # Outside every figure below: 40 days old; another workflow of the same user; another user's.
    old = _run(workflow, RunStatus.SUCCEEDED, at=NOW - timedelta(days=40), seconds=999)
    _order(old, "OLD", status=OrderStatus.CLOSED, exit_="200", realized_pnl=Decimal("1000"))
    _decision(old, "BUY", decide_v1, (9999, 9999), "9")
    other_wf = services.workflow_create(owner=user, name="Other", graph=chain_graph())
    _decision(_run(other_wf, RunStatus.FAILED, at=DAY_B, seconds=1), "SELL", decide_v1, (7, 7), "1")
    bobs = services.workflow_create(owner=other_user, name="Bob's", graph=chain_graph())
    _decision(_run(bobs, RunStatus.SUCCEEDED, at=DAY_B, seconds=1), "BUY", decide_v1, (5, 5), "2")

    # A strategy whose batch holds r1 and r2.
    strategy = Strategy.objects.create(owner=user, name="Momentum", workflow=workflow, symbols=["AAPL"])
    batch = Batch.objects.create(workflow=workflow, version=workflow.versions.first(), symbols=["AAPL"])
    StrategyBatch.objects.create(strategy=strategy, batch=batch)
    Run.objects.filter(id__in=[r1.id, r2.id]).update(batch=batch)
    return {"workflow": workflow, "strategy": strategy, "bobs": bobs, "runs": [r1, r2, r3, r4, r5]}


def _figures(user, **scope):
    start, end = date_range()
    return analytics_compute(scope=analytics_scope(user=user, **scope), start=start, end=end)


def test_workflow_figures_match_the_hand_computed_values(user, fixture):
    figures = _figures(user, workflow=fixture["workflow"].id)
    assert figures["scope"] == {"kind": "workflow", "id": fixture["workflow"].id, "label": "Two timeframes"}
    # Runs: 5 in range (the 40-day-old one is out); 3 succeeded / (3 + 2) = 0.6.
    # Run durations 10, 20, 30, 5, 15: mean 16, median 15, p95 (nearest rank ceil(0.95*5)=5th) 30.
    assert figures["runs"] == {
        "total": 5,
        "succeeded": 3,
        "failed": 2,
        "cancelled": 0,
        "unfinished": 0,
        "success_rate": 0.6,
        "duration": {"count": 5, "mean_s": 16.0, "median_s": 15.0, "p95_s": 30.0},
    }

    # fetch: 1, 2, 3, 4, 10 -> mean 4, median 3, p95 10 (5th of 5).
    # decide: 2, 4, 6, 8 (the failed one counts; skipped and reused do not) -> mean 5, median 5, p95 8.
    # fetch_weekly: 5.
    def stats(count, mean, median, p95):
        return {"count": count, "mean_s": mean, "median_s": median, "p95_s": p95}

    assert figures["steps"]["by_node"] == [
        {"node_id": "decide", "step_type": "ai.decide", **stats(4, 5.0, 5.0, 8.0)},
        {"node_id": "fetch", "step_type": "market.fetch_bars", **stats(5, 4.0, 3.0, 10.0)},
        {"node_id": "fetch_weekly", "step_type": "market.fetch_bars", **stats(1, 5.0, 5.0, 5.0)},
    ]
    # By type, market.fetch_bars: 1, 2, 3, 4, 10, 5 -> mean 25/6, median (3+4)/2 = 3.5, p95 6th of 6 = 10.
    assert figures["steps"]["by_type"] == [
        {"step_type": "ai.decide", "count": 4, "mean_s": 5.0, "median_s": 5.0, "p95_s": 8.0},
        {"step_type": "market.fetch_bars", "count": 6, "mean_s": 25 / 6, "median_s": 3.5, "p95_s": 10.0},
    ]
    assert figures["decisions"] == {"BUY": 2, "SELL": 1, "HOLD": 2, "total": 5}
    # Orders A, B, C closed (all filled), D blocked: 4 rows, 3 sent. Wins: A and C -> 2/3.
    # R: (2.0 - 1.0 + 0.5) / 3 = 0.5. P&L: 200 - 100 + 50 = 150.
    assert figures["orders"] == {
        "total": 4,
        "sent": 3,
        "blocked": 1,
        "filled": 3,
        "closed": 3,
        "wins": 2,
        "win_rate": 2 / 3,
        "r_count": 3,
        "r_mean": 0.5,
        "realized_pnl": 150.0,
    }
    # Tokens: decisions 5000 + 1000, the analysis 500 + 50; cost 0.055 + 0.001.
    assert figures["ai"] == {
        "calls": 6,
        "prompt_tokens": 5500,
        "completion_tokens": 1050,
        "total_tokens": 6550,
        "cost_usd": 0.056,
    }
    by_day = {d["date"]: d for d in figures["series"]["runs_by_day"]}
    assert len(by_day) == 30  # every day of the default range, empty ones too
    day_a = timezone.localdate(DAY_A).isoformat()
    assert by_day[day_a] == {"date": day_a, "succeeded": 3, "failed": 0, "other": 0}
    assert by_day[timezone.localdate(DAY_B).isoformat()]["failed"] == 2
    # Cumulative P&L in close order A, B, C: 200, 100, 150.
    assert [p["cumulative"] for p in figures["series"]["pnl"]] == [200.0, 100.0, 150.0]


def test_strategy_figures_cover_its_batches_runs_only(user, fixture):
    figures = _figures(user, strategy=fixture["strategy"].id)
    # r1 and r2: both succeeded; decisions BUY, BUY; orders A (+200, R 2), B (-100, R -1), D blocked.
    assert figures["runs"]["total"] == 2 and figures["runs"]["success_rate"] == 1.0
    assert figures["decisions"] == {"BUY": 2, "SELL": 0, "HOLD": 0, "total": 2}
    orders = figures["orders"]
    assert (orders["sent"], orders["blocked"], orders["closed"], orders["wins"]) == (2, 1, 2, 1)
    assert orders["win_rate"] == 0.5 and orders["r_mean"] == 0.5 and orders["realized_pnl"] == 100.0
    # Tokens: r1's decision and analysis, r2's decision: 1000 + 500 + 1200, 200 + 50 + 300; cost 0.031.
    assert figures["ai"]["prompt_tokens"] == 2700 and figures["ai"]["completion_tokens"] == 550
    assert figures["ai"]["cost_usd"] == 0.031


def test_prompt_version_figures_count_its_own_calls(user, fixture):
    figures = _figures(user, prompt="decide:1")
    # decide v1 decided r1, r2, r3 (BUY, BUY, SELL) in range; other_wf's run used it too (SELL, failed).
    # Bob's run used it but is not alice's; the 40-day-old one is out of range.
    assert figures["scope"]["key"] == "decide" and figures["scope"]["version"] == 1
    assert figures["runs"]["total"] == 4 and figures["runs"]["succeeded"] == 3 and figures["runs"]["failed"] == 1
    assert figures["decisions"] == {"BUY": 2, "SELL": 2, "HOLD": 0, "total": 4}
    # Only that prompt's calls: 1000 + 1200 + 800 + 7, 200 + 300 + 100 + 7; 0.010 + 0.020 + 0.005 + 1.
    assert figures["ai"] == {
        "calls": 4,
        "prompt_tokens": 3007,
        "completion_tokens": 607,
        "total_tokens": 3614,
        "cost_usd": 1.035,
    }
    # Orders of those runs: A, B, C, D.
    assert figures["orders"]["realized_pnl"] == 150.0


def test_a_date_range_narrows_every_figure(user, fixture):
    day = timezone.localdate(DAY_B)
    figures = analytics_compute(scope=analytics_scope(user=user, workflow=fixture["workflow"].id), start=day, end=day)
    # Only r4 and r5: both failed, HOLD, no orders.
    assert figures["runs"]["total"] == 2 and figures["runs"]["success_rate"] == 0.0
    assert figures["decisions"]["HOLD"] == 2 and figures["orders"]["total"] == 0
    assert figures["orders"]["win_rate"] is None and figures["orders"]["r_mean"] is None
    assert figures["from"] == figures["to"] == day.isoformat()


def test_all_runs_scope_is_the_users_own_or_everything_for_staff(user, staff_user, fixture):
    # Alice: 5 + 1 (other_wf) in range.
    assert _figures(user)["runs"]["total"] == 6
    # Staff: Bob's run too.
    assert _figures(staff_user)["runs"]["total"] == 7


def test_nearest_rank():
    assert nearest_rank([], 95) is None
    assert nearest_rank([3, 1, 2], 50) == 2
    assert nearest_rank(list(range(1, 101)), 95) == 95
    assert nearest_rank(list(range(1, 21)), 95) == 19


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "2026-13-01"}, "from must be a date"),
        ({"start": "2026-02-01", "end": "2026-01-01"}, "is after to"),
        ({"start": "2000-01-01", "end": "2026-01-01"}, "at most"),
    ],
)
def test_bad_ranges_are_explained(kwargs, message):
    with pytest.raises(ApplicationError, match=message):
        date_range(**kwargs)


def test_the_default_range_is_the_last_30_days_up_to_today():
    start, end = date_range()
    assert end == timezone.localdate() and (end - start).days == 29


# The page and the API


def _api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_api_as_owner_gives_the_figures(user, fixture):
    response = _api(user).get("/api/analytics/", {"workflow": fixture["workflow"].id})
    assert response.status_code == 200
    body = response.json()
    assert body["runs"]["total"] == 5 and body["orders"]["realized_pnl"] == 150.0 and body["ai"]["cost_usd"] == 0.056
    ranged = _api(user).get("/api/analytics/", {"strategy": fixture["strategy"].id, "from": "2000-01-01"})
    assert ranged.status_code == 400 and "at most" in ranged.json()["detail"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"workflow": "abc"}, 400),
        ({"workflow": "1", "strategy": "1"}, 400),
        ({"prompt": "decide"}, 400),
        ({"prompt": "nope:1"}, 404),
        ({"to": "yesterday"}, 400),
    ],
)
def test_api_bad_parameters(user, fixture, params, status):
    response = _api(user).get("/api/analytics/", params)
    assert response.status_code == status
    assert response.json()["detail"]


def test_another_users_workflow_or_strategy_is_a_404(other_user, staff_user, fixture):
    assert _api(other_user).get("/api/analytics/", {"workflow": fixture["workflow"].id}).status_code == 404
    assert _api(other_user).get("/api/analytics/", {"strategy": fixture["strategy"].id}).status_code == 404
    assert _api(other_user).get("/api/analytics/", {"workflow": 999_999}).status_code == 404
    # Bob's own workflow is fine; staff see alice's.
    assert _api(other_user).get("/api/analytics/", {"workflow": fixture["bobs"].id}).status_code == 200
    assert _api(staff_user).get("/api/analytics/", {"workflow": fixture["workflow"].id}).json()["runs"]["total"] == 5


def test_anonymous_gets_403_from_the_api_and_the_login_page_from_the_page(client, fixture):
    assert _api().get("/api/analytics/").status_code == 403
    response = client.get(reverse("analytics"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_page_as_owner_shows_the_figures_and_loads_plotly_locally(client, user, fixture):
    client.force_login(user)
    response = client.get(reverse("analytics"), {"scope": f"workflow:{fixture['workflow'].id}"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-figure="runs">5<' in html
    assert 'data-figure="success-rate">60%<' in html
    assert 'data-figure="r-mean">0.50<' in html
    assert 'data-figure="pnl">150.00<' in html
    assert 'data-figure="cost">0.0560 USD<' in html
    assert "/static/vendor/plotly/plotly.min.js" in html and "cdn" not in html.lower()
    assert f'<option value="workflow:{fixture["workflow"].id}" selected>' in html
    assert 'id="analytics-series"' in html
    # The nav links the page.
    assert f'href="{reverse("analytics")}" class="active"' in html


def test_the_page_for_another_users_workflow_is_a_404_and_bad_input_a_400(client, other_user, fixture):
    client.force_login(other_user)
    assert client.get(reverse("analytics"), {"scope": f"workflow:{fixture['workflow'].id}"}).status_code == 404
    assert client.get(reverse("analytics"), {"strategy": fixture["strategy"].id}).status_code == 404
    response = client.get(reverse("analytics"), {"from": "not-a-date"})
    assert response.status_code == 400 and "from must be a date" in response.content.decode()


def test_the_page_with_nothing_selected_shows_all_own_runs(client, user, fixture):
    client.force_login(user)
    html = client.get(reverse("analytics")).content.decode()
    assert 'data-figure="runs">6<' in html
    assert "Two timeframes" in html and "Momentum" in html and "decide v1" in html  # the selector's choices
    assert "Bob&#x27;s" not in html and "Bob's" not in html


def test_dates_out_of_range_are_a_clear_error(user):
    from strategies.analytics.selectors import date_range
    from workflows.errors import ApplicationError

    with pytest.raises(ApplicationError, match="to must be a date from 1970-01-01 to 2999-12-31"):
        date_range(end="9999-12-31")
