"""The engine on real Celery workers (Redis + PostgreSQL in CI), started as subprocesses."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import chain_graph, edge, node, wait_for
from trading_site.celery import app as celery_app
from workflows import engine, services
from workflows.models import Run, RunStatus, StepRun, StepStatus
from workflows.tests.step_types import records

pytestmark = pytest.mark.worker


def steps(run):
    return {s.node_id: s for s in StepRun.objects.filter(run=run)}


def finished(run_id):
    run = Run.objects.get(id=run_id)
    return run if run.finished else None


def test_diamond_runs_its_branches_in_parallel(workers, user):
    workers.start(concurrency=2)
    graph = {
        "schema": 1,
        "nodes": [
            node("src", "test.source"),
            node("left", "test.echo", sleep_s=1.5),
            node("right", "test.echo", sleep_s=1.5),
            node("join", "test.join"),
        ],
        "edges": [
            edge("src", "left"),
            edge("src", "right"),
            edge("left", "join", "out", "a"),
            edge("right", "join", "out", "b"),
        ],
    }
    workflow = services.workflow_create(owner=user, name="diamond", graph=graph)
    run = engine.run_start(workflow=workflow, user=user, symbol="SPY")
    run = wait_for(lambda: finished(run.id), timeout=60, what="diamond run")
    assert run.status == RunStatus.SUCCEEDED, (run.error, workers.logs())
    s = steps(run)
    left, right = s["left"], s["right"]
    # Their time spans overlap: each started before the other finished.
    assert left.started_at < right.finished_at and right.started_at < left.finished_at
    assert s["join"].started_at >= max(left.finished_at, right.finished_at)
    assert [o["from"] for o in s["join"].outputs["out"]] == ["left", "right"]


def test_same_message_delivered_twice_executes_once(workers, user, monkeypatch):
    sent = []
    monkeypatch.setattr(engine, "_dispatch", lambda step, graph, countdown=0: sent.append(step.id))
    workflow = services.workflow_create(owner=user, name="dup", graph=chain_graph())
    run = engine.run_start(workflow=workflow, user=user, symbol="AAPL")
    monkeypatch.undo()
    workers.start(concurrency=2)
    for _ in range(2):  # what a broker redelivery looks like to the worker
        celery_app.send_task("workflows.tasks.execute_step", args=[sent[0]], queue="default")
    run = wait_for(lambda: finished(run.id), timeout=30, what="run")
    assert run.status == RunStatus.SUCCEEDED
    wait_for(
        lambda: "execute_step" in workers.logs() and workers.logs().count("succeeded in") >= 2, what="2nd delivery"
    )
    assert len(records("exec", f"{run.id}-src")) == 1
    assert steps(run)["src"].attempt == 1


def test_cancel_stops_a_running_run(workers, user):
    workers.start(concurrency=2)
    graph = chain_graph(node("slow", "test.echo", sleep_s=30), node("after", "test.echo"))
    workflow = services.workflow_create(owner=user, name="slow", graph=graph)
    run = engine.run_start(workflow=workflow, user=user, symbol="AAPL")
    wait_for(
        lambda: StepRun.objects.filter(run=run, node_id="slow", status=StepStatus.RUNNING).exists(), what="slow step"
    )
    engine.run_cancel(run=run)
    # The running step notices the cancel flag and stops long before its 30 s are up.
    wait_for(
        lambda: StepRun.objects.filter(run=run, node_id="slow", status=StepStatus.CANCELLED).exists(),
        timeout=10,
        what="slow step cancelled",
    )
    run.refresh_from_db()
    s = steps(run)
    assert run.status == RunStatus.CANCELLED
    assert s["src"].status == StepStatus.SUCCEEDED
    assert s["slow"].status == StepStatus.CANCELLED and s["after"].status == StepStatus.CANCELLED
    assert (s["slow"].finished_at - s["slow"].started_at).total_seconds() < 10
    assert len(records("exec", f"{run.id}-after")) == 0


def test_worker_killed_mid_step_recovers_without_repeating_side_effects(workers, user):
    first = workers.start(concurrency=2)
    graph = chain_graph(node("effect", "test.side_effect", sleep_s=30), node("after", "test.echo"))
    graph["nodes"][1]["timeout_s"] = 40
    workflow = services.workflow_create(owner=user, name="kill", graph=graph)
    run = engine.run_start(workflow=workflow, user=user, symbol="AAPL")
    key = f"run{run.id}-effect"
    wait_for(lambda: records("effect", key), timeout=30, what="side effect")
    workers.kill(first)  # SIGKILL to the whole worker, in the middle of the step

    effect = StepRun.objects.get(run=run, node_id="effect")
    assert effect.status == StepStatus.RUNNING and effect.attempt == 1
    workers.start(concurrency=2)
    # Nothing comes back by itself; the sweeper, once the step is past its hard time limit,
    # declares the worker lost and queues the step again.
    assert engine.step_runs_sweep(now=timezone.now() + timedelta(minutes=5))["recovered"] == 1
    run = wait_for(lambda: finished(run.id), timeout=60, what="recovered run")
    assert run.status == RunStatus.SUCCEEDED, (run.error, workers.logs())
    effect.refresh_from_db()
    assert effect.attempt == 2
    assert len(records("exec", f"{run.id}-effect")) == 2  # executed twice ...
    assert len(records("effect", key)) == 1  # ... the side effect happened once
    assert "already done for this key" in str(effect.logs)
    assert len(records("exec", f"{run.id}-src")) == 1
