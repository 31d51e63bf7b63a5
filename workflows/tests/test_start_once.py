"""Starting a run never fails after it was saved, and never starts twice for one request.

The task broker down at start: the run is committed, its first steps stay queued (marked
`dispatch_failed`), the API answers 202 and the page says so; the sweeper sends them once the
broker is back. A retried request with the same Idempotency-Key answers with the first run.
"""

import time

import pytest
from rest_framework.test import APIClient

from conftest import chain_graph, node
from workflows import engine, services
from workflows.idempotency import HEADER
from workflows.models import Run, RunStatus, StepRun, StepStatus
from workflows.tests import step_types

QUEUED = "queued; the task broker is unavailable, it will start when it is back"


@pytest.fixture
def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def _workflow(user, name="wf"):
    return services.workflow_create(owner=user, name=name, graph=chain_graph(node("b", "test.echo")))


def test_broker_down_at_start_is_a_202_and_the_sweeper_starts_the_run_once_it_is_back(broker_down, api, user):
    workflow = _workflow(user)
    started = time.monotonic()
    response = api.post("/api/runs/", {"workflow": workflow.pk, "symbol": "AAPL"}, format="json")
    assert time.monotonic() - started < 15  # a refused connection fails fast, it does not hang the request
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["message"] == QUEUED and body["status"] == RunStatus.PENDING
    run = Run.objects.get(pk=body["id"])
    src = run.steps.get(node_id="src")
    assert src.status == StepStatus.QUEUED and src.dispatch_failed  # saved, queued, marked for the sweeper
    assert run.steps.get(node_id="b").status == StepStatus.PENDING

    broker_down()  # the broker is back
    # The next pass sends it: a step whose send failed does not wait ENGINE_QUEUED_STALE_S.
    assert engine.step_runs_sweep()["redispatched"] == 1
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert [k for k, _ in step_types.records("exec")] == [f"{run.pk}-src", f"{run.pk}-b"]  # each step once
    assert not StepRun.objects.filter(run=run, dispatch_failed=True).exists()
    assert Run.objects.count() == 1


def test_a_retried_send_that_fails_again_stays_marked(broker_down, user):
    workflow = _workflow(user)
    with engine.dispatch_watch() as watch:
        run = engine.run_start(workflow=workflow, user=user, symbol="AAPL")
    assert watch.failed(run.pk) and not watch.failed(run.pk + 1)
    # The broker is still down at the sweeper's pass (run in-process): marked again, never raised.
    assert engine.step_runs_sweep()["redispatched"] == 1
    assert run.steps.get(node_id="src").dispatch_failed


def test_the_workflow_page_says_queued_instead_of_an_error(broker_down, client, user):
    workflow = _workflow(user)
    client.force_login(user)
    response = client.post(f"/workflows/{workflow.pk}/run/", {"symbol": "AAPL"}, follow=True)
    assert response.status_code == 200
    run = Run.objects.get()
    assert response.redirect_chain[-1][0] == f"/runs/{run.pk}/"
    assert f"Run {run.pk} {QUEUED}." in response.content.decode()
    assert run.steps.get(node_id="src").status == StepStatus.QUEUED


def test_a_started_run_answers_201_without_a_message(eager_engine, api, user):
    workflow = _workflow(user)
    response = api.post("/api/runs/", {"workflow": workflow.pk, "symbol": "AAPL"}, format="json")
    assert response.status_code == 201 and "message" not in response.json()


# Idempotency-Key


def test_the_same_key_twice_starts_one_run(eager_engine, api, user):
    workflow = _workflow(user)
    body = {"workflow": workflow.pk, "symbol": "AAPL"}
    first = api.post("/api/runs/", body, format="json", headers={HEADER: "k-1"})
    again = api.post("/api/runs/", body, format="json", headers={HEADER: "k-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Run.objects.count() == 1
    run_id = first.json()["id"]
    assert [k for k, _ in step_types.records("exec")] == [f"{run_id}-src", f"{run_id}-b"]  # its steps ran once
    # Another key, or none, is another run.
    assert api.post("/api/runs/", body, format="json", headers={HEADER: "k-2"}).status_code == 201
    assert api.post("/api/runs/", body, format="json").status_code == 201
    assert Run.objects.count() == 3


def test_the_same_key_with_another_body_is_a_409(no_dispatch, api, user):
    workflow = _workflow(user)
    api.post("/api/runs/", {"workflow": workflow.pk, "symbol": "AAPL"}, format="json", headers={HEADER: "k"})
    response = api.post("/api/runs/", {"workflow": workflow.pk, "symbol": "MSFT"}, format="json", headers={HEADER: "k"})
    assert response.status_code == 409
    assert "Idempotency-Key 'k' was already used for another request" in response.json()["detail"]
    assert list(Run.objects.values_list("symbol", flat=True)) == ["AAPL"]


def test_keys_are_per_user(no_dispatch, api, user, other_user):
    body = {"workflow": _workflow(user).pk, "symbol": "AAPL"}
    other_body = {"workflow": _workflow(other_user).pk, "symbol": "AAPL"}
    assert api.post("/api/runs/", body, format="json", headers={HEADER: "same"}).status_code == 201
    other = APIClient()
    other.force_authenticate(other_user)
    response = other.post("/api/runs/", other_body, format="json", headers={HEADER: "same"})
    assert response.status_code == 201  # not bob's key: a run of his own, not a 409 nor alice's run
    assert Run.objects.get(pk=response.json()["id"]).created_by == other_user


@pytest.mark.parametrize("key", ["", "x" * 201, "caf\u00e9", "tab\there", "   "])
def test_a_malformed_key_is_a_400_naming_the_header(no_dispatch, api, user, key):
    workflow = _workflow(user)
    response = api.post("/api/runs/", {"workflow": workflow.pk, "symbol": "AAPL"}, format="json", headers={HEADER: key})
    assert response.status_code == 400 and "Idempotency-Key header" in response.json()["detail"]
    assert not Run.objects.exists()


def test_a_200_character_key_is_accepted(no_dispatch, api, user):
    workflow = _workflow(user)
    key = "k" * 200
    response = api.post("/api/runs/", {"workflow": workflow.pk, "symbol": "AAPL"}, format="json", headers={HEADER: key})
    assert response.status_code == 201 and Run.objects.get().idempotency_key == key


def test_the_database_refuses_a_second_run_with_one_key(no_dispatch, user):
    """The claim is the unique constraint: a request that found no run with its key (it raced
    another) cannot write a second one; start_once then answers with the winner's."""
    from django.db import IntegrityError, transaction

    from workflows.idempotency import Idempotency

    workflow = _workflow(user)
    idem = Idempotency(key="race", fingerprint="f")
    first = engine.run_start(workflow=workflow, user=user, symbol="AAPL", idempotency=idem)
    with pytest.raises(IntegrityError), transaction.atomic():
        engine.run_start(workflow=workflow, user=user, symbol="AAPL", idempotency=idem)
    assert list(Run.objects.values_list("pk", flat=True)) == [first.pk]


def test_start_once_answers_with_the_winner_of_a_race(no_dispatch, user, monkeypatch):
    """The lost race itself: the lookup finds nothing (the other request has not committed yet),
    the insert then fails at the constraint, and the answer is the other request's run."""
    from workflows import idempotency as idem_module
    from workflows.idempotency import Idempotency, start_once

    workflow = _workflow(user)
    idem = Idempotency(key="race", fingerprint="f")
    winner = engine.run_start(workflow=workflow, user=user, symbol="AAPL", idempotency=idem)
    real_earlier = idem_module._earlier
    calls = []

    def late(*args, **kwargs):  # the first lookup happens before the winner commits
        calls.append(1)
        return None if len(calls) == 1 else real_earlier(*args, **kwargs)

    monkeypatch.setattr(idem_module, "_earlier", late)
    start = lambda i: engine.run_start(workflow=workflow, user=user, symbol="AAPL", idempotency=i)  # noqa: E731
    run, replayed = start_once(Run, user=user, idempotency=idem, start=start)
    assert (run.pk, replayed) == (winner.pk, True) and Run.objects.count() == 1


def test_the_schema_documents_the_header_and_the_answers(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    for path in ("/api/runs/", "/api/strategies/{id}/run/"):
        operation = schema["paths"][path]["post"]
        assert any(p["name"] == HEADER and p["in"] == "header" for p in operation["parameters"]), path
        assert {"200", "201", "202", "409"} <= set(operation["responses"]), path
