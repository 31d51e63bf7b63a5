"""The notify.webhook step through the engine: what arrives at the receiver, once per key on a
redelivery, and a failing channel failing the step with a clear error and no secret."""

import base64

import pytest

from conftest import edge, node
from strategies.notify.steps import NotifyParams
from workflows import engine, services
from workflows.models import NotificationLog, Run, RunStatus, StepRun, StepStatus
from workflows.notify import services as notify
from workflows.registry import registry
from workflows.tests.receiver import Answer, Receiver, tiny_png

TOKEN = "SECRET-hook-token-987"


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture(autouse=True)
def _channels(settings, receiver, monkeypatch):
    settings.NOTIFY_CHANNELS = {"hook": {"kind": "webhook", "url": f"{receiver.url}/in/{TOKEN}"}}
    settings.NOTIFY_ALERTS_CHANNEL = ""
    settings.NOTIFY_TIMEOUT_S = 0.5
    settings.PUBLIC_BASE_URL = "https://trading.example.com"
    monkeypatch.setattr(notify, "RETRY_DELAY_S", 0)


def _graph(*, retry: dict | None = None, **params) -> dict:
    notify_node = node("tell", "notify.webhook", channel="hook", **params)
    if retry:
        notify_node["retry"] = retry
    nodes = [node("trade", "test.trade_outputs"), notify_node]
    edges = [edge("trade", "tell", port, port) for port in ("decision", "chart", "order")]
    return {"schema": 1, "params": {}, "nodes": nodes, "edges": edges}


def _run(user, graph) -> Run:
    workflow = services.workflow_create(owner=user, name="Notify wf", graph=graph)
    run = engine.run_start(workflow=workflow, user=user, symbol="AAPL")
    run.refresh_from_db()
    return run


def test_the_step_is_registered_as_a_default_queue_side_effect():
    step_type = registry.get("notify.webhook")
    assert step_type.category == "notify" and step_type.queue == "default" and step_type.idempotent is False
    assert {p.name for p in step_type.inputs} == {"decision", "chart", "order"}
    assert not any(p.required for p in step_type.inputs)


def test_unknown_template_placeholders_are_refused():
    with pytest.raises(ValueError, match=r"unknown placeholder\(s\) \{price\}"):
        NotifyParams(channel="hook", template="{symbol} at {price}")
    assert NotifyParams(channel="hook", template="{symbol} {action} R {r} {order} {link}").channel == "hook"


def test_the_decision_chart_and_order_arrive_with_the_png(eager_engine, user, receiver):
    run = _run(user, _graph(template="{{symbol}} {action}: entry {entry}, stop {stop}, target {target}, R {r}"))
    assert run.status == RunStatus.SUCCEEDED, run.error
    [request] = receiver.requests
    body = request.json()
    text = body["text"]
    lines = text.splitlines()
    # {{symbol}} is the workflow parameter, filled in at run start; {action}... are the step's own.
    assert lines[0] == "AAPL BUY: entry 100, stop 95, target 110, R 2.00"
    assert "Decision: BUY (confidence high) · offline rule-based analyst, no AI model" in lines
    assert "Entry 100 · stop 95 · targets 110 / 120" in lines
    assert "R 2.00 at the conservative target (computed from these levels)" in lines
    assert any(line.startswith("Order 77: BUY 10 AAPL @ 100, take-profit 110, stop-loss 95") for line in lines)
    assert lines[-1] == f"https://trading.example.com/runs/{run.id}/"
    assert base64.b64decode(body["image"]["base64"]) == tiny_png()
    assert body["data"]["order"]["order_id"] == 77 and body["data"]["decision"]["action"] == "BUY"

    output = run.steps.get(node_id="tell").outputs["notification"]
    assert output["channel"] == "hook" and output["kind"] == "webhook" and output["already_sent"] is False
    assert output["image"] == {"filename": "chart.png", "bytes": len(tiny_png()), "sent": "attached"}
    assert output["key"] == f"run{run.id}-tell"
    assert TOKEN not in str(output) and receiver.url not in str(output)


def test_a_redelivered_step_does_not_send_twice(eager_engine, user, receiver):
    run = _run(user, _graph())
    assert len(receiver.requests) == 1
    step = run.steps.get(node_id="tell")
    # As if the worker died after sending but before recording it: the sweeper queues it again.
    Run.objects.filter(id=run.id).update(status=RunStatus.RUNNING, finished_at=None)
    StepRun.objects.filter(id=step.id).update(status=StepStatus.QUEUED)
    engine.step_run_execute(step_run_id=step.id)
    step.refresh_from_db()
    run.refresh_from_db()
    assert len(receiver.requests) == 1  # still one message
    assert step.status == StepStatus.SUCCEEDED and step.attempt == 2
    assert step.outputs["notification"]["already_sent"] is True
    assert "not sent again" in step.logs[-1]["message"]
    assert run.status == RunStatus.SUCCEEDED
    assert NotificationLog.objects.get(key=f"run{run.id}-tell").attempts == 1


def test_a_rerun_does_not_repeat_the_notification(eager_engine, user, receiver):
    run = _run(user, _graph())
    rerun = engine.run_rerun(run=run, user=user, from_failed=False, latest=False)
    rerun.refresh_from_db()
    assert rerun.status == RunStatus.SUCCEEDED
    assert len(receiver.requests) == 1
    assert rerun.steps.get(node_id="tell").outputs["notification"]["already_sent"] is True


def test_a_failing_channel_fails_the_step_after_the_node_retries_without_the_secret(eager_engine, user, receiver):
    receiver.default = Answer(status=502, body=b"bad gateway", echo_path=True)
    run = _run(user, _graph(retry={"max": 1, "backoff_s": 0}))
    step = run.steps.get(node_id="tell")
    assert run.status == RunStatus.FAILED and step.status == StepStatus.FAILED
    # Two executions (the node's one retry), each with the transport's own retry.
    assert step.attempt == 2 and len(receiver.requests) == 4
    assert step.error.startswith('Notification to channel "hook" (webhook) failed after 2 attempts: HTTP 502')
    for text in (step.error, run.error, str(step.logs)):
        assert TOKEN not in text and "/in/" not in text
    log = NotificationLog.objects.get(key=f"run{run.id}-tell")
    assert log.status == "failed" and TOKEN not in log.error


def test_an_unknown_channel_fails_at_once_with_the_names_configured(eager_engine, user, receiver):
    graph = _graph(retry={"max": 3, "backoff_s": 0})
    graph["nodes"][1]["params"]["channel"] = "nope"
    run = _run(user, graph)
    step = run.steps.get(node_id="tell")
    assert step.status == StepStatus.FAILED and step.attempt == 1  # not transient: no retry
    assert step.error == 'No notification channel named "nope"; configured: hook'
    assert receiver.requests == []
