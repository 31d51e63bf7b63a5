"""The runs list's filters, on the page (/runs/) and the API (GET /api/runs/)."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from conftest import chain_graph
from workflows import engine, services
from workflows.models import Run, Trigger

UTC = ZoneInfo("UTC")


@pytest.fixture
def runs(db, user, other_user, no_dispatch, settings):
    """Four runs of the user's two workflows on known days, and one of another user."""
    settings.TIME_ZONE = "America/New_York"
    first = services.workflow_create(owner=user, name="First", graph=chain_graph())
    second = services.workflow_create(owner=user, name="Second", graph=chain_graph())
    theirs = services.workflow_create(owner=other_user, name="Theirs", graph=chain_graph())

    def run(workflow, symbol, created_utc, *, trigger=Trigger.MANUAL, cancel=False):
        r = engine.run_start(workflow=workflow, user=workflow.owner, symbol=symbol, trigger=trigger)
        if cancel:
            engine.run_cancel(run=r)
        Run.objects.filter(pk=r.pk).update(created_at=created_utc)
        return r.pk

    return {
        "first": first.pk,
        "second": second.pk,
        "theirs": theirs.pk,
        "mar1": run(first, "AAPL", datetime(2026, 3, 1, 15, tzinfo=UTC)),
        # 03:00 UTC on March 10 is still March 9 in New York, the site's time zone.
        "mar9": run(first, "MSFT", datetime(2026, 3, 10, 3, tzinfo=UTC), cancel=True),
        "mar10": run(second, "AAPL", datetime(2026, 3, 10, 14, tzinfo=UTC), trigger=Trigger.API),
        "apr2": run(second, "SPY", datetime(2026, 4, 2, 12, tzinfo=UTC), trigger=Trigger.API, cancel=True),
        "other": run(theirs, "AAPL", datetime(2026, 3, 10, 14, tzinfo=UTC)),
    }


def shown(client, **params) -> set[int]:
    response = client.get(reverse("run-list"), params)
    assert response.status_code == 200
    return {r.pk for r in response.context["runs"]}


def test_each_page_filter_narrows(client, user, runs):
    client.force_login(user)
    mine = {runs[k] for k in ("mar1", "mar9", "mar10", "apr2")}
    assert shown(client) == mine
    assert shown(client, workflow=runs["first"]) == {runs["mar1"], runs["mar9"]}
    assert shown(client, workflow=runs["theirs"]) == set()  # another user's workflow: nothing
    assert shown(client, symbol="aapl") == {runs["mar1"], runs["mar10"]}
    assert shown(client, status="cancelled") == {runs["mar9"], runs["apr2"]}
    assert shown(client, trigger="api") == {runs["mar10"], runs["apr2"]}
    assert shown(client, date_from="2026-03-10") == {runs["mar10"], runs["apr2"]}
    assert shown(client, date_to="2026-03-09") == {runs["mar1"], runs["mar9"]}
    assert shown(client, date_from="2026-03-09", date_to="2026-03-10") == {runs["mar9"], runs["mar10"]}
    assert shown(client, date_from="2026-03-10", date_to="2026-03-10", trigger="api", symbol="AAPL") == {runs["mar10"]}
    assert shown(client, status="running", trigger="manual") == set()


def test_bad_page_filter_values_are_named_and_left_out(client, user, runs):
    client.force_login(user)
    for params, message in [
        ({"date_from": "abc"}, "From filter ignored: Date has wrong format."),
        ({"status": "nope"}, 'Status filter ignored: "nope" is not a valid choice.'),
        ({"workflow": "x"}, "Workflow filter ignored: A valid integer is required."),
        ({"date_from": "2026-03-10", "date_to": "2026-03-01"}, "To filter ignored: The end date is before the start"),
    ]:
        response = client.get(reverse("run-list"), params)
        assert response.status_code == 200, params
        assert message in response.context["error"], (params, response.context["error"])
        assert 'role="alert"' in response.content.decode()
    # The other filters still apply, and the page links keep only the good ones.
    response = client.get(reverse("run-list"), {"status": "nope", "symbol": "spy", "date_to": "2026-13-45"})
    assert {r.pk for r in response.context["runs"]} == {runs["apr2"]}
    assert "Status filter ignored" in response.context["error"] and "To filter ignored" in response.context["error"]
    assert response.context["filter_query"] == "symbol=SPY"


def test_pages_keep_the_filters(client, user, runs, settings):
    client.force_login(user)
    workflow = services.workflow_create(owner=user, name="Many", graph=chain_graph())
    for _ in range(51):
        engine.run_start(workflow=workflow, user=user, symbol="IBM")
    response = client.get(reverse("run-list"), {"symbol": "IBM", "date_from": "2026-01-01"})
    assert len(response.context["runs"]) == 50
    assert "symbol=IBM&amp;date_from=2026-01-01&amp;page=2" in response.content.decode()
    assert len(client.get(reverse("run-list"), {"symbol": "IBM", "page": 2}).context["runs"]) == 1
    assert client.get(reverse("run-list"), {"page": "abc"}).status_code == 200


def test_the_api_filters_the_same_way(user, runs):
    api = APIClient()
    api.force_authenticate(user)

    def listed(**params) -> set[int]:
        response = api.get("/api/runs/", params)
        assert response.status_code == 200, response.json()
        return {r["id"] for r in response.json()["results"]}

    assert listed(date_from="2026-03-10") == {runs["mar10"], runs["apr2"]}
    assert listed(date_to="2026-03-09") == {runs["mar1"], runs["mar9"]}
    assert listed(date_from="2026-03-09", date_to="2026-03-09", workflow=runs["first"]) == {runs["mar9"]}
    assert listed(trigger="api", status="cancelled") == {runs["apr2"]}
    assert listed(created_after="2026-03-10T12:00:00Z", date_to="2026-03-10") == {runs["mar10"]}
    for params, field in [
        ({"date_to": "9999-12-31"}, "date_to"),
        ({"date_from": "abc"}, "date_from"),
        ({"status": "nope"}, "status"),
        ({"date_from": "2026-03-10", "date_to": "2026-03-01"}, "date_to"),
    ]:
        response = api.get("/api/runs/", params)
        assert response.status_code == 400 and field in response.json(), (params, response.content)
