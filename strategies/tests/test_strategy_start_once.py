"""A strategy run (a batch) never fails after it was saved, and never starts twice for one
request: the broker down is a 202 (the page says "queued"), and an Idempotency-Key retried is the
first batch."""

import pytest
from rest_framework.test import APIClient

from strategies.models import StrategyBatch
from strategies.tests.strategy_helpers import SYMBOLS, make_strategy
from workflows import engine
from workflows.idempotency import HEADER
from workflows.models import Batch, Run, RunStatus, StepStatus
from workflows.tasks import execute_step_task

QUEUED = "queued; the task broker is unavailable, it will start when it is back"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
@pytest.mark.usefixtures("no_dispatch")
def test_the_same_key_twice_starts_one_batch(user):
    strategy = make_strategy(user)
    client = client_for(user)
    url = f"/api/strategies/{strategy.pk}/run/"
    first = client.post(url, headers={HEADER: "s-1"})
    again = client.post(url, headers={HEADER: "s-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json() and len(first.json()["runs"]) == len(SYMBOLS)
    assert Batch.objects.count() == 1 and StrategyBatch.objects.count() == 1 and Run.objects.count() == len(SYMBOLS)
    # A new key is a new batch.
    assert client.post(url, headers={HEADER: "s-2"}).status_code == 201
    assert Batch.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.usefixtures("no_dispatch")
def test_the_same_key_for_another_strategy_is_a_409_and_keys_are_per_user(user, other_user):
    mine, also_mine = make_strategy(user), make_strategy(user, name="Other")
    client = client_for(user)
    assert client.post(f"/api/strategies/{mine.pk}/run/", headers={HEADER: "k"}).status_code == 201
    response = client.post(f"/api/strategies/{also_mine.pk}/run/", headers={HEADER: "k"})
    assert response.status_code == 409 and "already used for another request" in response.json()["detail"]
    assert not also_mine.batches.exists()
    # Bob's "k" is his own.
    bobs = make_strategy(other_user)
    assert client_for(other_user).post(f"/api/strategies/{bobs.pk}/run/", headers={HEADER: "k"}).status_code == 201
    assert bobs.batches.count() == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("no_dispatch")
def test_a_malformed_key_is_a_400_naming_the_header(user):
    strategy = make_strategy(user)
    response = client_for(user).post(f"/api/strategies/{strategy.pk}/run/", headers={HEADER: "x" * 201})
    assert response.status_code == 400 and "Idempotency-Key header" in response.json()["detail"]
    assert not Batch.objects.exists()


def test_broker_down_is_a_202_and_the_batch_runs_once_it_is_back(broker_down, user, monkeypatch):
    strategy = make_strategy(user)
    tries = []
    real_send = execute_step_task.apply_async
    monkeypatch.setattr(execute_step_task, "apply_async", lambda *a, **kw: tries.append(1) or real_send(*a, **kw))
    response = client_for(user).post(f"/api/strategies/{strategy.pk}/run/", headers={HEADER: "s"})
    assert response.status_code == 202, response.content
    # Nine steps to send (three per run), one try: once refused, the rest of the start is not tried
    # (each try can take seconds, a batch has up to 500 runs).
    assert len(tries) == 1
    assert response.json()["message"] == QUEUED and len(response.json()["runs"]) == len(SYMBOLS)
    assert StrategyBatch.objects.filter(strategy=strategy).count() == 1
    queued = Run.objects.filter(steps__status=StepStatus.QUEUED, steps__dispatch_failed=True).distinct()
    assert queued.count() == len(SYMBOLS)

    broker_down()  # back
    assert engine.step_runs_sweep()["redispatched"] > 0
    assert set(Run.objects.values_list("status", flat=True)) == {RunStatus.SUCCEEDED}
    assert not Run.objects.filter(steps__status=StepStatus.QUEUED).exists()


def test_the_strategy_page_says_queued_instead_of_an_error(broker_down, client, user):
    strategy = make_strategy(user)
    client.force_login(user)
    response = client.post(f"/strategies/{strategy.pk}/run/", follow=True)
    assert response.status_code == 200
    batch = Batch.objects.get()
    assert f"Batch {batch.pk} (3 runs) {QUEUED}." in response.content.decode()
