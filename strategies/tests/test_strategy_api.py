"""The strategies API through the HTTP client: every endpoint as owner, other user and anonymous,
and bad input refused with the field named and nothing saved."""

import pytest
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from strategies.models import Strategy, StrategyBatch, StrategySchedule
from strategies.schedules.services import schedule_create
from strategies.tests.strategy_helpers import SYMBOLS, make_strategy, make_workflow
from workflows.models import Run, Trigger

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_dispatch")]


@pytest.fixture
def world(user):
    strategy = make_strategy(user)
    schedule = schedule_create(strategy=strategy, cron="30 9 * * 1-5", timezone="America/New_York")
    return strategy, schedule


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def endpoints(strategy, schedule) -> list[tuple[str, str, dict | None, int]]:
    """(method, url, body, status for the owner)."""
    s, sc = strategy.pk, schedule.pk
    return [
        ("get", f"/api/strategies/{s}/", None, 200),
        ("patch", f"/api/strategies/{s}/", {"description": "new words"}, 200),
        (
            "put",
            f"/api/strategies/{s}/",
            {"name": "Renamed", "workflow": strategy.workflow_id, "symbols": ["SPY"]},
            200,
        ),
        ("post", f"/api/strategies/{s}/run/", None, 201),
        ("get", f"/api/strategies/{s}/batches/", None, 200),
        ("get", f"/api/strategies/{s}/schedules/", None, 200),
        ("post", f"/api/strategies/{s}/schedules/", {"cron": "0 16 * * 1-5"}, 201),
        ("get", f"/api/strategies/{s}/schedules/{sc}/", None, 200),
        ("patch", f"/api/strategies/{s}/schedules/{sc}/", {"trading_hours_only": True}, 200),
        ("post", f"/api/strategies/{s}/schedules/{sc}/disable/", None, 200),
        ("post", f"/api/strategies/{s}/schedules/{sc}/enable/", None, 200),
        ("delete", f"/api/strategies/{s}/schedules/{sc}/", None, 204),
        ("delete", f"/api/strategies/{s}/", None, 204),
    ]


def test_every_endpoint_for_the_owner(user, world):
    client = client_for(user)
    for method, url, body, expected in endpoints(*world):
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == expected, (method, url, response.content)
    assert not Strategy.objects.exists() and not PeriodicTask.objects.exists()
    assert StrategyBatch.objects.count() == 0  # deleted with the strategy; its runs stay
    assert Run.objects.filter(trigger=Trigger.API).count() == 1  # the PUT left one symbol: SPY


def test_another_user_gets_404_and_changes_nothing(other_user, world):
    strategy, schedule = world
    client = client_for(other_user)
    for method, url, body, _ in endpoints(strategy, schedule):
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.status_code)
    assert client.get("/api/strategies/").json()["results"] == []
    assert not StrategyBatch.objects.exists() and StrategySchedule.objects.count() == 1
    strategy.refresh_from_db()
    assert strategy.name == "Three symbols"


def test_anonymous_gets_403_everywhere(world):
    client = client_for()
    for method, url, body, _ in [
        *endpoints(*world),
        ("get", "/api/strategies/", None, 0),
        ("post", "/api/strategies/", {}, 0),
    ]:
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 403, (method, url, response.status_code)


def test_staff_see_every_strategy(staff_user, world):
    strategy, _ = world
    response = client_for(staff_user).get("/api/strategies/")
    assert [s["id"] for s in response.json()["results"]] == [strategy.pk]


def test_create_list_and_run(user):
    workflow = make_workflow(user)
    client = client_for(user)
    body = {
        "name": "API",
        "workflow": workflow.pk,
        "version": 1,
        "symbols": ["aapl", "msft", "AAPL"],
        "overrides": {"period_1": "3y"},
    }
    response = client.post("/api/strategies/", body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["symbols"] == ["AAPL", "MSFT"] and data["version"] == 1 and data["owner"] == "alice"
    assert data["live"] is False and data["ai_cost_budget_usd"] is None
    assert client.get("/api/strategies/").json()["count"] == 1

    batch = client.post(f"/api/strategies/{data['id']}/run/").json()
    assert batch["total"] == 2 and batch["trigger"] == "api" and batch["state"] == "running"
    assert {r["symbol"] for r in batch["runs"]} == {"AAPL", "MSFT"}
    assert {r.params["period_1"] for r in Run.objects.all()} == {"3y"}

    # Unpin: null runs the latest version.
    response = client.patch(f"/api/strategies/{data['id']}/", {"version": None}, format="json")
    assert response.status_code == 200 and response.json()["version"] is None


def test_schedule_detail_has_the_next_runs_in_both_zones(user, world):
    strategy, schedule = world
    data = client_for(user).get(f"/api/strategies/{strategy.pk}/schedules/{schedule.pk}/").json()
    assert len(data["next_runs"]) == 5
    first = data["next_runs"][0]
    assert first["local"].endswith(("-05:00", "-04:00")) and first["utc"].endswith("Z")
    assert data["periodic_task"] == f"strategy-schedule-{schedule.pk}" and data["ticks"] == []


@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        ({"symbols": ["$$$"]}, "symbols", '"$$$"'),
        ({"overrides": {"period_1": "banana"}}, "overrides", 'period_1 = "banana" is refused'),
        ({"version": 9}, "version", "has no version 9"),
        ({"name": " "}, "name", "needs a name"),
    ],
)
def test_a_bad_strategy_is_a_400_naming_the_field_and_saves_nothing(user, body, field, text):
    workflow = make_workflow(user)
    client = client_for(user)
    response = client.post(
        "/api/strategies/", {"name": "X", "workflow": workflow.pk, "symbols": ["AAPL"], **body}, format="json"
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors[0]["field"] == field and text in errors[0]["message"], errors
    assert response.json()["detail"].startswith(f"{field}: ")
    assert not Strategy.objects.exists()


def test_another_users_workflow_is_a_400_on_the_workflow_field(user, other_user):
    theirs = make_workflow(other_user)
    response = client_for(user).post(
        "/api/strategies/", {"name": "X", "workflow": theirs.pk, "symbols": ["AAPL"]}, format="json"
    )
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "workflow"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "30 9 * * 1-5", "timezone": "Mars/Base"}, "timezone"),
        ({"cron": "30 9 * * 1-5", "overlap": "queue"}, "overlap"),
    ],
)
def test_a_bad_schedule_is_a_400_naming_the_field_and_saves_nothing(user, world, body, field):
    strategy, schedule = world
    client = client_for(user)
    response = client.post(f"/api/strategies/{strategy.pk}/schedules/", body, format="json")
    assert response.status_code == 400
    data = response.json()
    assert field in [e["field"] for e in data["errors"]], data
    assert StrategySchedule.objects.count() == 1 and PeriodicTask.objects.count() == 1
    # An update that fails leaves the schedule as it was.
    response = client.patch(f"/api/strategies/{strategy.pk}/schedules/{schedule.pk}/", body, format="json")
    assert response.status_code == 400
    schedule.refresh_from_db()
    assert (schedule.cron, schedule.timezone) == ("30 9 * * 1-5", "America/New_York")


def test_runs_api_filters_by_strategy(user, world):
    strategy, _ = world
    client = client_for(user)
    client.post(f"/api/strategies/{strategy.pk}/run/")
    make_strategy(user, name="Other", symbols=["SPY"])  # its own workflow; never run
    outside = make_workflow(user, name="Loose")
    client.post("/api/runs/", {"workflow": outside.pk, "symbol": "GOOG"}, format="json")
    results = client.get(f"/api/runs/?strategy={strategy.pk}").json()["results"]
    assert sorted(r["symbol"] for r in results) == sorted(SYMBOLS)
    assert client.get("/api/runs/?strategy=0").status_code == 400
