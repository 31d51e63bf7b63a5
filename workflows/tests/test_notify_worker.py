"""Notifications on real Celery workers: the notify.webhook step and the failed-run alert task
(workflows.notify.alerts, registered through CELERY_IMPORTS) run in a worker process and reach the
test's receiver."""

import pytest

from conftest import chain_graph, edge, node, wait_for
from workflows import engine, services
from workflows.models import NotificationLog, Run, RunStatus
from workflows.tests.receiver import Receiver

pytestmark = pytest.mark.worker


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def test_a_worker_sends_the_step_notification_and_the_failed_run_alert(workers, user, receiver, settings):
    settings.NOTIFY_CHANNELS = {
        "hook": {"kind": "webhook", "url": f"{receiver.url}/hook"},
        "alerts": {"kind": "webhook", "url": f"{receiver.url}/alerts"},
    }
    settings.NOTIFY_ALERTS_CHANNEL = "alerts"
    workers.step_modules = "workflows.tests.step_types,workflows.tests.receiver"
    workers.start(concurrency=2)

    graph = {
        "schema": 1,
        "nodes": [node("trade", "test.trade_outputs"), node("tell", "notify.webhook", channel="hook")],
        "edges": [edge("trade", "tell", "decision", "decision"), edge("trade", "tell", "chart", "chart")],
    }
    workflow = services.workflow_create(owner=user, name="Tell", graph=graph)
    ok = engine.run_start(workflow=workflow, user=user, symbol="SPY")
    broken = services.workflow_create(
        owner=user, name="Breaks", graph=chain_graph(node("boom", "test.flaky", permanent=True))
    )
    failed = engine.run_start(workflow=broken, user=user, symbol="IBM")

    def done(run_id):
        run = Run.objects.get(id=run_id)
        return run if run.finished else None

    assert wait_for(lambda: done(ok.id), timeout=60, what="run").status == RunStatus.SUCCEEDED, workers.logs()
    assert wait_for(lambda: done(failed.id), timeout=60, what="run").status == RunStatus.FAILED
    wait_for(lambda: len(receiver.requests) == 2, timeout=30, what="two notifications")
    by_path = {r.path: r.json() for r in receiver.requests}
    assert by_path["/hook"]["text"].startswith("SPY: BUY") and by_path["/hook"]["image"]["base64"]
    assert by_path["/alerts"]["text"].startswith(f"Run {failed.id} FAILED: Breaks on IBM")
    # The worker records each as sent once the receiver has answered.
    wait_for(lambda: NotificationLog.objects.filter(status="sent").count() == 2, timeout=30, what="sent logs")
