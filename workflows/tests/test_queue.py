"""The task queue page (/queues/) and GET /api/queues/: real workers, no worker, no broker."""

import os
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import QUEUES, _purge_queues, chain_graph, node, wait_for
from trading_site.celery import app as celery_app
from workflows import engine, services
from workflows.models import Run, RunStatus, StepRun, StepStatus
from workflows.queues import lengths as queue_lengths
from workflows.queues import services as queue
from workflows.tests import queue_steps
from workflows.tests.step_types import records


@pytest.fixture
def empty_queues(transactional_db):
    _purge_queues()
    yield
    _purge_queues()


@pytest.fixture
def broker_conf():
    """Lets a test point the Celery app at another broker; puts the tests' own back after."""
    saved = (celery_app.conf.broker_url, celery_app.conf.broker_transport_options)
    yield celery_app.conf
    celery_app.conf.broker_url, celery_app.conf.broker_transport_options = saved


def overview_of(response) -> queue.QueueOverview:
    assert response.status_code == 200, response.content[:500]
    return response.context["overview"]


@pytest.mark.worker
def test_a_worker_online_its_queues_and_its_task_then_cancel_from_the_page(workers, client, user, staff_user):
    workers.step_modules += f",{queue_steps.__name__}"
    workers.start(concurrency=2)
    # A step that never looks at the cancel flag: only terminating its task stops it.
    graph = chain_graph(node("slow", "test.busy", sleep_s=20), node("after", "test.echo"))
    workflow = services.workflow_create(owner=user, name="slow", graph=graph)
    run = engine.run_start(workflow=workflow, user=user, symbol="AAPL")
    slow = wait_for(
        lambda: StepRun.objects.filter(run=run, node_id="slow", status=StepStatus.RUNNING).first(), what="slow step"
    )

    client.force_login(staff_user)
    response = client.get(reverse("queue-list"))
    overview = overview_of(response)
    assert overview.broker_ok and not overview.workers_error
    [worker] = overview.workers
    assert worker.name.startswith(f"test0-{os.getpid()}@")
    assert worker.queues == sorted(QUEUES.split(",")) and worker.active == 1
    assert {q.name: q.workers for q in overview.queues} == {q: [worker.name] for q in QUEUES.split(",")}
    assert {q.name: q.length for q in overview.queues} == dict.fromkeys(QUEUES.split(","), 0)
    [task] = [t for t in overview.tasks if t.state == "active"]
    assert (task.name, task.step_run_id, task.run_id, task.node_id) == (
        "workflows.tasks.execute_step",
        slow.id,
        run.id,
        "slow",
    )
    body = response.content.decode()
    assert worker.name in body and "No workers online" not in body
    assert reverse("run-detail", args=[run.pk]) + "#step-slow" in body

    api = APIClient()
    api.force_authenticate(staff_user)
    data = api.get("/api/queues/").json()
    assert [w["name"] for w in data["workers"]] == [worker.name]
    assert [(t["id"], t["run_id"], t["state"]) for t in data["tasks"]] == [(task.id, run.id, "active")]

    response = client.post(
        reverse("queue-task-cancel"), {"task_id": task.id, "step_run": slow.id, "state": "active"}, follow=True
    )
    assert f"Run #{run.pk} cancelled; task {task.id} terminated." in response.content.decode()
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.cancel_requested
    wait_for(lambda: f"Terminating {task.id}" in workers.logs(), what="the worker terminating the task")
    steps = {s.node_id: s for s in run.steps.all()}
    assert {n: s.status for n, s in steps.items()} == {"src": "succeeded", "slow": "cancelled", "after": "cancelled"}
    assert steps["slow"].error == "Run was cancelled; its task was terminated from the task queue page"
    assert (steps["slow"].finished_at - steps["slow"].started_at).total_seconds() < 15
    assert records("exec", f"{run.id}-after") == []
    # The worker lives on: it takes the next run.
    other = engine.run_start(
        workflow=services.workflow_create(owner=user, name="ok", graph=chain_graph()), user=user, symbol="SPY"
    )
    assert (
        wait_for(lambda: Run.objects.get(pk=other.pk).finished, what="next run")
        and other.steps.get().status == "succeeded"
    )


def test_no_worker_online_and_a_message_waiting(empty_queues, client, user, staff_user):
    workflow = services.workflow_create(owner=user, name="waits", graph=chain_graph())
    run = engine.run_start(workflow=workflow, user=user, symbol="AAPL")  # sent; nobody takes it
    client.force_login(staff_user)
    response = client.get(reverse("queue-list"))
    overview = overview_of(response)
    assert overview.broker_ok and overview.workers == [] and overview.tasks == []
    assert {q.name: q.length for q in overview.queues} == {"default": 1, "charts": 0, "ai": 0, "ibkr": 0}
    body = response.content.decode()
    assert "No workers online." in body and "Broker unreachable" not in body
    assert f'id="queued-{run.steps.get().pk}"' in body  # waiting for a worker, with a Retry button

    api = APIClient()
    api.force_authenticate(staff_user)
    data = api.get("/api/queues/").json()
    assert data["broker_ok"] is True and data["workers"] == []
    assert {q["name"]: q["length"] for q in data["queues"]} == {"default": 1, "charts": 0, "ai": 0, "ibkr": 0}
    assert [s["run"] for s in data["queued_steps"]] == [run.pk]


def test_an_unreachable_broker_is_said_never_a_500(db, client, staff_user, broker_conf):
    broker_conf.broker_url = "redis://:secret-pw@127.0.0.1:1/0"
    client.force_login(staff_user)
    response = client.get(reverse("queue-list"))
    overview = overview_of(response)
    assert not overview.broker_ok and "Connection" in overview.broker_error
    body = response.content.decode()
    assert "Broker unreachable: " in body and "No workers known: the broker is unreachable." in body
    assert "secret-pw" not in body
    api = APIClient()
    api.force_authenticate(staff_user)
    data = api.get("/api/queues/").json()
    assert data["broker_ok"] is False and data["broker_error"] and data["workers"] == []
    assert all(q["length"] is None for q in data["queues"])


def test_a_broker_folder_that_is_gone_is_unreachable(db, client, staff_user, broker_conf, tmp_path):
    broker_conf.broker_url = "filesystem://"
    broker_conf.broker_transport_options = {"data_folder_in": str(tmp_path / "gone")}
    client.force_login(staff_user)
    overview = overview_of(client.get(reverse("queue-list")))
    assert not overview.broker_ok and "does not exist" in overview.broker_error


def test_retry_sends_a_stuck_queued_step_again(eager_engine, client, user, staff_user, monkeypatch):
    monkeypatch.setattr(engine, "_dispatch", lambda *args, **kwargs: None)  # the message is lost
    workflow = services.workflow_create(owner=user, name="lost", graph=chain_graph(node("next", "test.echo")))
    run = engine.run_start(workflow=workflow, user=user, symbol="AAPL")
    monkeypatch.undo()
    src = run.steps.get(node_id="src")
    assert src.status == StepStatus.QUEUED and records("exec") == []

    client.force_login(staff_user)
    response = client.post(reverse("queue-step-retry"), {"step_run": src.pk}, follow=True)
    assert [str(m) for m in response.context["messages"]] == [f'Step "src" of run #{run.pk} sent to its queue again.']
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert len(records("exec", f"{run.id}-src")) == 1 and len(records("exec", f"{run.id}-next")) == 1

    response = client.post(reverse("queue-step-retry"), {"step_run": src.pk})
    assert response.status_code == 400 and "is succeeded, not queued" in response.content.decode()
    assert client.post(reverse("queue-step-retry"), {"step_run": "x"}).status_code == 400
    assert "does not exist" in client.post(reverse("queue-step-retry"), {"step_run": 999999}).content.decode()


def test_retry_leaves_a_backoff_and_a_finished_run_alone(db, user, no_dispatch):
    workflow = services.workflow_create(owner=user, name="b", graph=chain_graph())
    run = engine.run_start(workflow=workflow, user=user, symbol="AAPL")
    step = run.steps.get()
    StepRun.objects.filter(pk=step.pk).update(queued_at=timezone.now() + timedelta(minutes=1))
    with pytest.raises(engine.RunStateError, match="retry backoff"):
        queue.step_run_redispatch(step_run_id=step.pk)
    StepRun.objects.filter(pk=step.pk).update(queued_at=timezone.now() - timedelta(minutes=5))
    assert queue.step_run_redispatch(step_run_id=step.pk).queued_at > timezone.now() - timedelta(seconds=5)
    engine.run_cancel(run=run)
    with pytest.raises(engine.RunStateError):
        queue.step_run_redispatch(step_run_id=step.pk)


def test_cancel_of_a_reserved_task_cancels_the_run_in_the_database(empty_queues, client, user, staff_user):
    workflow = services.workflow_create(owner=user, name="c", graph=chain_graph(node("next", "test.echo")))
    run = engine.run_start(workflow=workflow, user=user, symbol="AAPL")
    src = run.steps.get(node_id="src")
    client.force_login(staff_user)
    response = client.post(
        reverse("queue-task-cancel"), {"task_id": "abc-123", "step_run": src.pk, "state": "reserved"}
    )
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert {s.status for s in run.steps.all()} == {StepStatus.CANCELLED}
    # Again: the run had already finished; nothing breaks.
    response = client.post(
        reverse("queue-task-cancel"), {"task_id": "abc-123", "step_run": src.pk, "state": "reserved"}, follow=True
    )
    assert f"Run #{run.pk} had already cancelled; task abc-123 revoked." in response.content.decode()
    assert client.post(reverse("queue-task-cancel"), {"task_id": "", "step_run": src.pk}).status_code == 400


def test_staff_only(db, client, user):
    for url, method in [
        (reverse("queue-list"), "get"),
        (reverse("queue-task-cancel"), "post"),
        (reverse("queue-step-retry"), "post"),
    ]:
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    client.force_login(user)
    response = client.get(reverse("queue-list"))
    assert response.status_code == 403 and "Only staff" in response.content.decode()
    assert "overview" not in response.context
    assert client.post(reverse("queue-step-retry"), {"step_run": 1}).status_code == 403
    assert reverse("queue-list") not in client.get(reverse("run-list")).content.decode()  # no nav link

    api = APIClient()
    assert api.get("/api/queues/").status_code == 403
    api.force_authenticate(user)
    assert api.get("/api/queues/").status_code == 403


def test_the_flower_link_follows_its_setting(empty_queues, client, staff_user, settings):
    client.force_login(staff_user)
    settings.FLOWER_URL = ""
    assert "Open Flower" not in client.get(reverse("queue-list")).content.decode()
    settings.FLOWER_URL = "http://127.0.0.1:5555/"
    body = client.get(reverse("queue-list")).content.decode()
    assert 'href="http://127.0.0.1:5555/"' in body and "Open Flower" in body
    assert reverse("queue-list") in body  # the nav link, for staff


def test_task_args_to_step_runs():
    assert queue._step_run_id({"name": queue.EXECUTE_STEP, "args": [12]}) == 12
    assert queue._step_run_id({"name": queue.EXECUTE_STEP, "args": "(12,)"}) == 12
    assert queue._step_run_id({"name": queue.EXECUTE_STEP, "args": "nonsense("}) is None
    assert queue._step_run_id({"name": "other.task", "args": [12]}) is None
    assert queue._step_run_id({"name": queue.EXECUTE_STEP, "args": [True]}) is None


def test_filesystem_and_redis_lengths(tmp_path):
    for name in ("1_a.default.msg", "2_b.default.msg", "3_c.ai.msg", "4_d.celery@x.celery.pidbox.msg"):
        (tmp_path / name).write_text("{}")
    assert queue_lengths.queue_lengths_filesystem(str(tmp_path), ["default", "ai", "ibkr"]) == {
        "default": 2,
        "ai": 1,
        "ibkr": 0,
    }


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_redis_lengths_count_every_priority_list():
    import uuid

    import redis

    url = celery_app.conf.broker_url  # the tests' own Redis database
    prefix = f"test-queue-{uuid.uuid4().hex}:"  # keys no one else uses
    client = redis.Redis.from_url(url)
    try:
        client.rpush(f"{prefix}default", "m1", "m2")
        client.rpush(f"{prefix}default\x06\x169", "m3")
        client.rpush(f"{prefix}ai", "m4")
        lengths = queue_lengths.queue_lengths_redis(
            url, ["default", "ai", "ibkr"], transport_options={"global_keyprefix": prefix}
        )
        assert lengths == {"default": 3, "ai": 1, "ibkr": 0}
    finally:
        client.delete(f"{prefix}default", f"{prefix}default\x06\x169", f"{prefix}ai")
        client.close()
