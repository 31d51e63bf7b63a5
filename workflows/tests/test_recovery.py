"""Recovery in seconds (docs/architecture.md, "Running a workflow" 3-6): heartbeats, executions
killed by the worker (hard time limit, a dead pool process), messages missing from their queue,
and the database away when a step message arrives. Worker-free tests first, then real workers."""

import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import OperationalError
from django.utils import timezone

from conftest import _purge_queues, chain_graph, node, wait_for
from workflows import engine, services
from workflows.models import Run, RunStatus, StepRun, StepStatus
from workflows.tasks import execute_step_task
from workflows.tests.step_types import records


def start(user, *nodes, retry: dict | None = None, **fields):
    graph = chain_graph(*nodes)
    for n in graph["nodes"][1:]:
        n.update(fields)
        if retry is not None:
            n["retry"] = retry
    workflow = services.workflow_create(owner=user, name="recovery", graph=graph)
    return engine.run_start(workflow=workflow, user=user, symbol="AAPL")


def running(run, node_id: str, *, task_id: str = "task-1", started_s_ago: float = 0, heartbeat_s_ago=None):
    """Mark a step as claimed by the execution of message `task_id`."""
    now = timezone.now()
    StepRun.objects.filter(run=run, node_id=node_id).update(
        status=StepStatus.RUNNING,
        attempt=1,
        task_id=task_id,
        started_at=now - timedelta(seconds=started_s_ago),
        heartbeat_at=None if heartbeat_s_ago is None else now - timedelta(seconds=heartbeat_s_ago),
        finished_at=None,
    )
    Run.objects.filter(id=run.id).update(status=RunStatus.RUNNING)
    return StepRun.objects.get(run=run, node_id=node_id)


def step(run, node_id: str) -> StepRun:
    return StepRun.objects.get(run=run, node_id=node_id)


# The sweeper and the worker's main process, without a worker.


def test_a_running_step_whose_heartbeat_stopped_is_run_again_after_the_silence_not_the_time_limit(
    db, user, no_dispatch, settings
):
    settings.ENGINE_HEARTBEAT_LOST_S = 45
    run = start(user, node("a", "test.echo"), timeout_s=600)
    running(run, "a", started_s_ago=120, heartbeat_s_ago=20)
    # Alive: it beat 20 s ago, although it started two minutes ago.
    assert engine.step_runs_sweep()["recovered"] == 0
    assert step(run, "a").status == StepStatus.RUNNING

    running(run, "a", started_s_ago=120, heartbeat_s_ago=50)
    assert engine.step_runs_sweep()["recovered"] == 1
    a = step(run, "a")
    assert a.status == StepStatus.QUEUED
    assert a.error == "The worker running this step was lost (attempt 1, no sign of life for 45s)"


def test_an_in_process_execution_has_no_heartbeat_and_is_judged_by_its_time_limit(db, user, no_dispatch):
    run = start(user, node("a", "test.echo"), timeout_s=600)
    running(run, "a", task_id="", started_s_ago=120, heartbeat_s_ago=120)
    assert engine.step_runs_sweep()["recovered"] == 0
    assert engine.step_runs_sweep(now=timezone.now() + timedelta(seconds=650))["recovered"] == 1


def test_a_step_killed_at_its_hard_limit_fails_at_once_as_a_timeout(db, user, no_dispatch):
    run = start(user, node("a", "test.echo"), timeout_s=3)
    running(run, "a", task_id="task-1")
    # Another execution's report changes nothing.
    assert engine.step_run_killed(step_run_id=step(run, "a").id, task_id="task-2", timed_out=True) is None
    assert step(run, "a").status == StepStatus.RUNNING

    assert engine.step_run_killed(step_run_id=step(run, "a").id, task_id="task-1", timed_out=True) == "timed_out"
    a = step(run, "a")
    assert a.status == StepStatus.FAILED and a.attempt == 1
    assert a.error == "Timed out after 3s: the step did not stop at its time limit and was stopped by force 10s later"
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "Timed out after 3s" in run.error
    # Reported twice (the pool also reports the lost process): the first report counts.
    assert engine.step_run_killed(step_run_id=a.id, task_id="task-1", timed_out=False) is None


def test_a_step_killed_at_its_hard_limit_is_retried_by_its_own_policy(db, user, no_dispatch):
    run = start(user, node("a", "test.echo"), timeout_s=3, retry={"max": 1, "backoff_s": 7})
    running(run, "a")
    assert engine.step_run_killed(step_run_id=step(run, "a").id, task_id="task-1", timed_out=True) == "timed_out"
    a = step(run, "a")
    assert a.status == StepStatus.QUEUED
    assert 6 < (a.queued_at - timezone.now()).total_seconds() <= 7  # due after its backoff
    assert "retrying in 7s" in str(a.logs)


def test_a_step_whose_pool_process_died_is_queued_again_at_once(db, user, no_dispatch):
    run = start(user, node("a", "test.echo"))
    running(run, "a")
    assert engine.step_run_killed(step_run_id=step(run, "a").id, task_id="task-1", timed_out=False) == "recovered"
    a = step(run, "a")
    assert a.status == StepStatus.QUEUED
    assert a.error == "The worker process running this step died (attempt 1)"


@pytest.fixture
def empty_queues():
    _purge_queues()
    yield
    _purge_queues()


def test_a_step_missing_from_its_queue_is_sent_again_after_seconds(db, user, no_dispatch, settings, empty_queues):
    settings.ENGINE_QUEUED_LOST_S = 30
    run = start(user, node("a", "test.echo"))
    src = step(run, "src")
    assert src.status == StepStatus.QUEUED  # no message was sent (no_dispatch): as if lost

    # Young: it may still be on its way.
    assert engine.step_runs_sweep()["redispatched"] == 0
    StepRun.objects.filter(id=src.id).update(queued_at=timezone.now() - timedelta(seconds=31))
    assert engine.step_runs_sweep()["redispatched"] == 1
    assert step(run, "src").queued_at > timezone.now() - timedelta(seconds=5)


def test_a_step_whose_message_waits_in_its_queue_is_left_alone(db, user, no_dispatch, settings, empty_queues):
    settings.ENGINE_QUEUED_LOST_S = 30
    run = start(user, node("a", "test.echo"))
    src = step(run, "src")
    StepRun.objects.filter(id=src.id).update(queued_at=timezone.now() - timedelta(seconds=120))
    execute_step_task.apply_async(args=[src.id], queue="default")  # its message, waiting (no worker)
    assert engine.step_runs_sweep()["redispatched"] == 0


def test_the_heartbeat_is_written_while_the_step_runs(transactional_db, user, no_dispatch, settings):
    settings.ENGINE_HEARTBEAT_S = 0.2
    run = start(user, node("a", "test.echo"))
    src = step(run, "src")
    StepRun.objects.filter(run=run, node_id="src").update(params={"sleep_s": 1.0})
    engine.step_run_execute(step_run_id=src.id, task_id="task-1", heartbeat=True)
    src = step(run, "src")
    assert src.status == StepStatus.SUCCEEDED and src.task_id == "task-1"
    assert (src.heartbeat_at - src.started_at).total_seconds() >= 0.6


def test_a_database_error_before_the_claim_sends_the_message_again(eager_engine, user, monkeypatch):
    calls = []
    execute = engine.step_run_execute

    def flaky(**kwargs):
        calls.append(kwargs["step_run_id"])
        if len(calls) == 1:
            raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")
        execute(**kwargs)

    monkeypatch.setattr(engine, "step_run_execute", flaky)
    run = start(user, node("a", "test.echo"))
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert calls[0] == calls[1] == step(run, "src").id  # the first delivery was not lost


# Real workers.


def finished(run_id):
    run = Run.objects.get(id=run_id)
    return run if run.finished else None


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.worker
def test_a_step_ignoring_its_soft_limit_fails_as_a_timeout_when_killed(workers, user):
    workers.start(concurrency=1)
    run = start(user, node("a", "test.stubborn", sleep_s=30), timeout_s=1)
    run = wait_for(lambda: finished(run.id), timeout=40, what="run killed at its hard limit")
    a = step(run, "a")
    assert a.status == StepStatus.FAILED, workers.logs()
    assert a.error == "Timed out after 1s: the step did not stop at its time limit and was stopped by force 10s later"
    assert a.attempt == 1 and len(records("exec", f"{run.id}-a")) == 1  # never run a second time
    assert len(records("soft_limit", f"{run.id}-a")) == 1  # it was told, and ignored it
    # Settled by the worker when it killed the step, not by the sweeper minutes later.
    assert (a.finished_at - a.started_at).total_seconds() < 20


@pytest.mark.worker
def test_a_dead_pool_process_is_noticed_by_its_worker_and_the_step_runs_again(workers, user):
    worker = workers.start(concurrency=1)
    run = start(user, node("a", "test.echo", sleep_s=3))
    wait_for(lambda: records("exec", f"{run.id}-a"), timeout=30, what="step started")
    for pid in children(worker.pid):
        os.kill(pid, signal.SIGKILL)  # the pool process, not the worker
    run = wait_for(lambda: finished(run.id), timeout=40, what="run recovered without the sweeper")
    a = step(run, "a")
    assert run.status == RunStatus.SUCCEEDED, (run.error, workers.logs())
    assert a.attempt == 2 and len(records("exec", f"{run.id}-a")) == 2
    assert "The worker process running this step died (attempt 1); running it again" in str(a.logs)


@pytest.mark.worker
def test_a_killed_worker_is_declared_lost_by_its_silence(workers, user, settings, monkeypatch):
    monkeypatch.setenv("ENGINE_HEARTBEAT_S", "0.5")
    settings.ENGINE_HEARTBEAT_LOST_S = 3
    worker = workers.start(concurrency=1)
    run = start(user, node("a", "test.echo", sleep_s=8), timeout_s=300)
    wait_for(lambda: records("exec", f"{run.id}-a"), timeout=30, what="step started")
    time.sleep(4)  # longer than the silence allowed: only its heartbeat keeps it alive
    assert engine.step_runs_sweep()["recovered"] == 0
    workers.kill(worker)
    time.sleep(3.5)
    assert engine.step_runs_sweep()["recovered"] == 1  # seconds, not its 300 s time limit
    workers.start(concurrency=1)
    run = wait_for(lambda: finished(run.id), timeout=40, what="recovered run")
    assert run.status == RunStatus.SUCCEEDED, (run.error, workers.logs())
    assert step(run, "a").attempt == 2
