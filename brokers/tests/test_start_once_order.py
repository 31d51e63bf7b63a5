"""One request, one order: the fault that made a client's retry place a second order.

Redis down at `POST /api/runs/` used to be a 500 although the run was saved (and ran ten minutes
later); a client retrying on the 500 got a second run and a second order. Now the answer is a 202,
the retry with its Idempotency-Key is the same run, and the sweeper starts it once the broker is
back: one order.
"""

import pytest
from rest_framework.test import APIClient

from brokers.models import Order
from brokers.tests.test_order_steps import chain
from workflows import engine, services
from workflows.idempotency import HEADER
from workflows.models import Run, RunStatus


@pytest.fixture
def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_broker_down_then_a_retry_with_the_same_key_places_one_order(broker_down, api, user):
    workflow = services.workflow_create(owner=user, name="chain", graph=chain())
    body = {"workflow": workflow.pk, "symbol": "AAPL"}
    first = api.post("/api/runs/", body, format="json", headers={HEADER: "order-1"})
    assert first.status_code == 202, first.content
    retry = api.post("/api/runs/", body, format="json", headers={HEADER: "order-1"})
    assert retry.status_code == 200 and retry.json()["id"] == first.json()["id"]
    assert Run.objects.count() == 1 and not Order.objects.exists()

    broker_down()  # back
    engine.step_runs_sweep()
    run = Run.objects.get()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert Order.objects.filter(run=run).count() == 1 and Order.objects.count() == 1


def test_the_same_key_twice_with_the_broker_up_places_one_order(eager_engine, api, user):
    workflow = services.workflow_create(owner=user, name="chain", graph=chain())
    body = {"workflow": workflow.pk, "symbol": "AAPL"}
    codes = [api.post("/api/runs/", body, format="json", headers={HEADER: "order-2"}).status_code for _ in range(2)]
    assert codes == [201, 200]
    assert Run.objects.count() == 1 and Order.objects.count() == 1
