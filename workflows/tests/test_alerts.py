"""Alerts: a failed run and a kill-switch change reach NOTIFY_ALERTS_CHANNEL; the engine only
queues a task after commit, and an alert that cannot be sent never changes the run."""

import pytest

from brokers.orders.services import kill_switch_set
from conftest import chain_graph, node
from workflows import engine, services
from workflows.models import NotificationLog, NotificationStatus, RunStatus
from workflows.notify import alerts
from workflows.notify import services as notify
from workflows.tests.receiver import Answer, Receiver

SECRET = "SECRET-alerts-path-555"


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture(autouse=True)
def _alerts_channel(settings, receiver, monkeypatch):
    settings.NOTIFY_CHANNELS = {"alerts": {"kind": "webhook", "url": f"{receiver.url}/alerts/{SECRET}"}}
    settings.NOTIFY_ALERTS_CHANNEL = "alerts"
    settings.NOTIFY_TIMEOUT_S = 0.5
    settings.PUBLIC_BASE_URL = "https://trading.example.com/"
    monkeypatch.setattr(notify, "RETRY_DELAY_S", 0)


def _failing_run(user, symbol: str = "MSFT"):
    graph = chain_graph(node("boom", "test.flaky", permanent=True))
    workflow = services.workflow_create(owner=user, name="Breaks", graph=graph)
    run = engine.run_start(workflow=workflow, user=user, symbol=symbol)
    run.refresh_from_db()
    return run


def test_a_failed_run_alerts_the_alerts_channel(eager_engine, user, receiver):
    run = _failing_run(user)
    assert run.status == RunStatus.FAILED
    [request] = receiver.requests
    assert request.path == f"/alerts/{SECRET}"
    assert request.json()["text"].splitlines() == [
        f"Run {run.id} FAILED: Breaks on MSFT",
        'Step "boom" failed: permanent failure asked for by the test',
        f"https://trading.example.com/runs/{run.id}/",
    ]
    log = NotificationLog.objects.get(key=f"run{run.id}-failed-alert")
    assert log.status == NotificationStatus.SENT and log.channel == "alerts" and log.run_id == run.id


def test_a_succeeded_run_sends_no_alert(eager_engine, user, receiver):
    workflow = services.workflow_create(owner=user, name="Fine", graph=chain_graph())
    run = engine.run_start(workflow=workflow, user=user, symbol="IBM")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert receiver.requests == []


def test_an_alert_that_cannot_be_sent_never_changes_the_run(eager_engine, user, receiver, caplog):
    receiver.default = Answer(status=500)
    run = _failing_run(user)
    assert run.status == RunStatus.FAILED
    assert run.error == 'Step "boom" failed: permanent failure asked for by the test'  # nothing of the alert
    assert len(receiver.requests) == 2  # one retry, then given up
    log = NotificationLog.objects.get(key=f"run{run.id}-failed-alert")
    assert log.status == NotificationStatus.FAILED and "HTTP 500" in log.error
    assert SECRET not in log.error and SECRET not in caplog.text


def test_the_engine_only_queues_a_task_on_the_default_queue_after_commit(
    transactional_db, user, monkeypatch, no_dispatch
):
    sent = []
    monkeypatch.setattr(alerts.run_finished_task, "apply_async", lambda **kw: sent.append(kw))
    workflow = services.workflow_create(owner=user, name="Breaks", graph=chain_graph(node("boom", "test.flaky")))
    run = engine.run_start(workflow=workflow, user=user, symbol="MSFT")
    assert sent == []  # running: nothing to say yet
    # The run becomes FAILED inside the engine's transaction; the task goes after its commit.
    step = run.steps.get(node_id="boom")
    step.status = "failed"
    step.save()
    engine.run_advance(run_id=run.id)
    assert sent == [{"args": [run.id], "queue": "default"}]


def test_no_channels_means_no_task_at_all(transactional_db, user, monkeypatch, no_dispatch, settings):
    settings.NOTIFY_CHANNELS = {}
    sent = []
    monkeypatch.setattr(alerts.run_finished_task, "apply_async", lambda **kw: sent.append(kw))
    workflow = services.workflow_create(owner=user, name="Breaks", graph=chain_graph(node("boom", "test.flaky")))
    run = engine.run_start(workflow=workflow, user=user, symbol="MSFT")
    run.steps.filter(node_id="boom").update(status="failed")
    engine.run_advance(run_id=run.id)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and sent == []


def test_a_broker_that_is_down_does_not_break_the_engine(transactional_db, user, monkeypatch, no_dispatch, caplog):
    def down(**kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(alerts.run_finished_task, "apply_async", down)
    workflow = services.workflow_create(owner=user, name="Breaks", graph=chain_graph(node("boom", "test.flaky")))
    run = engine.run_start(workflow=workflow, user=user, symbol="MSFT")
    run.steps.filter(node_id="boom").update(status="failed")
    engine.run_advance(run_id=run.id)  # no exception
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "broker unreachable" in caplog.text


def test_kill_switch_changes_alert_the_alerts_channel(eager_engine, staff_user, receiver):
    kill_switch_set(on=True, user=staff_user, reason="Flash crash")
    kill_switch_set(on=False, user=staff_user)
    texts = [r.json()["text"] for r in receiver.requests]
    assert texts == [
        "Kill switch ON: no new orders, working entries cancelled (by carol): Flash crash",
        "Kill switch OFF (by carol)",
    ]


def test_kill_switch_without_an_alerts_channel_sends_nothing(eager_engine, staff_user, receiver, settings):
    settings.NOTIFY_ALERTS_CHANNEL = ""
    control, problems = kill_switch_set(on=True, user=staff_user, reason="x")
    assert control.kill_switch and problems == []
    assert receiver.requests == []
