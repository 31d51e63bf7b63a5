"""Engine behaviour, run in this process (eager Celery) so each rule is quick to check.

The same engine on a real worker (parallelism, SIGKILL, duplicate delivery, cancel) is in
test_worker.py.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import chain_graph, edge, node
from workflows import engine, services
from workflows.errors import ApplicationError, GraphInvalid, RunStateError
from workflows.models import Run, RunStatus, StepRun, StepStatus, WorkflowVersion
from workflows.registry import registry
from workflows.tests.step_types import record, records


def make_workflow(owner, graph):
    return services.workflow_create(owner=owner, name="wf", graph=graph)


def steps(run):
    return {s.node_id: s for s in StepRun.objects.filter(run=run)}


def executions(run, node_id):
    return len(records("exec", f"{run.id}-{node_id}"))


def test_linear_run_passes_outputs_downstream_and_succeeds(eager_engine, user):
    graph = chain_graph(node("a", "test.echo", tag="{{symbol}}-{{size}}"), params={"size": 3})
    run = engine.run_start(workflow=make_workflow(user, graph), user=user, symbol="aapl")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.symbol == "AAPL" and run.params == {"size": 3, "symbol": "AAPL"}
    s = steps(run)
    assert s["a"].params == {"sleep_s": 0.0, "tag": "AAPL-3"}
    assert s["a"].inputs == {"in": {"from": "src", "symbol": "AAPL", "tag": ""}}
    assert s["a"].outputs["out"]["got"] == s["src"].outputs["out"]
    assert all(x.attempt == 1 and x.started_at and x.finished_at for x in s.values())


def test_overrides_win_over_workflow_defaults(eager_engine, user):
    graph = chain_graph(node("a", "test.echo", tag="n={{size}}"), params={"size": 3})
    run = engine.run_start(workflow=make_workflow(user, graph), user=user, symbol="MSFT", overrides={"size": 7})
    assert steps(run)["a"].params["tag"] == "n=7"


def test_run_time_validation_refuses_before_writing_anything(eager_engine, user):
    graph = {
        "schema": 1,
        "params": {"n": 2},
        "nodes": [node("bars", "test.bars"), node("t", "test.typed", count="{{n}}")],
        "edges": [edge("bars", "t", "bars", "in")],
    }
    workflow = make_workflow(user, graph)
    with pytest.raises(GraphInvalid) as exc:
        engine.run_start(workflow=workflow, user=user, symbol="AAPL", overrides={"n": 500})
    assert exc.value.errors[0]["node"] == "t" and exc.value.errors[0]["field"] == "count"
    with pytest.raises(ApplicationError, match="not a valid symbol"):
        engine.run_start(workflow=workflow, user=user, symbol="BAD SYMBOL!")
    assert Run.objects.count() == 0


def test_same_message_twice_executes_the_step_once(eager_engine, user, monkeypatch):
    sent = []
    monkeypatch.setattr(engine, "_dispatch", lambda step, graph, countdown=0: sent.append(step.id))
    run = engine.run_start(workflow=make_workflow(user, chain_graph()), user=user, symbol="AAPL")
    assert len(sent) == 1
    engine.step_run_execute(step_run_id=sent[0])
    engine.step_run_execute(step_run_id=sent[0])
    assert executions(run, "src") == 1
    assert steps(run)["src"].attempt == 1


def test_transient_errors_are_retried_up_to_the_node_policy(eager_engine, user):
    ok = chain_graph(node("f", "test.flaky", fail_times=2))
    ok["nodes"][1]["retry"] = {"max": 2, "backoff_s": 0}
    run = engine.run_start(workflow=make_workflow(user, ok), user=user, symbol="AAPL")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert steps(run)["f"].attempt == 3 and steps(run)["f"].outputs == {"out": 3}
    assert "retrying" in str(steps(run)["f"].logs)

    short = chain_graph(node("f", "test.flaky", fail_times=2))
    short["nodes"][1]["retry"] = {"max": 1, "backoff_s": 0}
    run = engine.run_start(workflow=make_workflow(user, short), user=user, symbol="AAPL")
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert steps(run)["f"].attempt == 2 and steps(run)["f"].error == "transient failure 2"


def test_permanent_errors_are_not_retried_and_skip_downstream(eager_engine, user):
    graph = chain_graph(node("f", "test.flaky", permanent=True), node("after", "test.echo"))
    graph["nodes"][1]["retry"] = {"max": 3, "backoff_s": 0}
    run = engine.run_start(workflow=make_workflow(user, graph), user=user, symbol="AAPL")
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error == 'Step "f" failed: permanent failure asked for by the test'
    s = steps(run)
    assert s["f"].attempt == 1 and s["f"].status == StepStatus.FAILED
    assert s["after"].status == StepStatus.SKIPPED
    assert executions(run, "after") == 0


def _failing_run(user):
    graph = chain_graph(node("a", "test.echo"), node("gate", "test.fail_unless", fail_if_file_missing="go"))
    graph["nodes"].append(node("end", "test.echo"))
    graph["edges"].append(edge("gate", "end"))
    workflow = make_workflow(user, graph)
    run = engine.run_start(workflow=workflow, user=user, symbol="IBM", overrides={"extra": 1})
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    return workflow, run


def test_rerun_from_failed_step_reuses_upstream_outputs(eager_engine, user):
    _, failed = _failing_run(user)
    record("marker", "go")
    rerun = engine.run_rerun(run=failed, user=user, from_failed=True, latest=False)
    rerun.refresh_from_db()
    assert rerun.status == RunStatus.SUCCEEDED
    assert rerun.rerun_of == failed and rerun.version == failed.version and rerun.overrides == {"extra": 1}
    new, old = steps(rerun), steps(failed)
    # Upstream steps were not executed again: their outputs were copied.
    assert executions(rerun, "src") == 0 and executions(rerun, "a") == 0
    assert new["a"].outputs == old["a"].outputs and new["a"].reused_from_id == old["a"].id
    assert executions(rerun, "gate") == 1 and executions(rerun, "end") == 1


def test_rerun_from_start_executes_everything(eager_engine, user):
    _, failed = _failing_run(user)
    record("marker", "go")
    rerun = engine.run_rerun(run=failed, user=user, from_failed=False, latest=False)
    rerun.refresh_from_db()
    assert rerun.status == RunStatus.SUCCEEDED
    assert all(executions(rerun, n) == 1 for n in ("src", "a", "gate", "end"))


def test_rerun_on_latest_version_reruns_changed_steps_only(eager_engine, user):
    workflow, failed = _failing_run(user)
    graph = dict(failed.version.graph)
    graph["nodes"] = [dict(n) for n in graph["nodes"]]
    graph["nodes"][1]["params"] = {"tag": "changed"}  # node "a"
    v2 = services.version_save(workflow=workflow, author=user, graph=graph, message="tweak a")
    record("marker", "go")
    rerun = engine.run_rerun(run=failed, user=user, from_failed=True, latest=True)
    rerun.refresh_from_db()
    assert rerun.version == v2 and rerun.status == RunStatus.SUCCEEDED
    assert executions(rerun, "src") == 0
    assert executions(rerun, "a") == 1 and steps(rerun)["a"].params["tag"] == "changed"


def test_rerun_refuses_an_unfinished_run(eager_engine, user, monkeypatch):
    monkeypatch.setattr(engine, "_dispatch", lambda *a, **k: None)
    run = engine.run_start(workflow=make_workflow(user, chain_graph()), user=user, symbol="AAPL")
    with pytest.raises(RunStateError, match="still"):
        engine.run_rerun(run=run, user=user, from_failed=True, latest=False)


def test_cancel_marks_unfinished_steps_cancelled(eager_engine, user, monkeypatch):
    monkeypatch.setattr(engine, "_dispatch", lambda *a, **k: None)
    run = engine.run_start(workflow=make_workflow(user, chain_graph(node("a", "test.echo"))), user=user, symbol="AAPL")
    engine.run_cancel(run=run)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.finished_at
    assert {s.status for s in steps(run).values()} == {StepStatus.CANCELLED}
    # A message that arrives after the cancel does nothing.
    engine.step_run_execute(step_run_id=steps(run)["src"].id)
    assert executions(run, "src") == 0
    with pytest.raises(RunStateError):
        engine.run_cancel(run=run)


def test_sweeper_redispatches_lost_messages_and_recovers_dead_workers(eager_engine, user, monkeypatch):
    lost = []
    monkeypatch.setattr(engine, "_dispatch", lambda step, graph, countdown=0: lost.append(step.id))
    run = engine.run_start(workflow=make_workflow(user, chain_graph(node("a", "test.echo"))), user=user, symbol="AAPL")
    monkeypatch.undo()  # from now on messages are delivered (eagerly)

    assert not any(engine.step_runs_sweep().values())
    later = timezone.now() + timedelta(hours=1)
    assert engine.step_runs_sweep(now=later)["redispatched"] == 1
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED

    # A step left RUNNING by a worker that died: requeued once beyond its retry policy, then failed.
    run = engine.run_start(workflow=make_workflow(user, chain_graph(node("a", "test.echo"))), user=user, symbol="AAPL")
    run.refresh_from_db()
    a = steps(run)["a"]
    StepRun.objects.filter(id=a.id).update(status=StepStatus.RUNNING, finished_at=None, attempt=2)
    Run.objects.filter(id=run.id).update(status=RunStatus.RUNNING, finished_at=None)
    assert engine.step_runs_sweep(now=later)["failed"] == 1
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "worker running this step was lost" in run.error


def test_sweeper_reruns_a_step_whose_worker_died_once(eager_engine, user):
    run = engine.run_start(workflow=make_workflow(user, chain_graph(node("a", "test.echo"))), user=user, symbol="AAPL")
    a = steps(run)["a"]
    StepRun.objects.filter(id=a.id).update(status=StepStatus.RUNNING, finished_at=None, attempt=1)
    Run.objects.filter(id=run.id).update(status=RunStatus.RUNNING, finished_at=None)
    assert engine.step_runs_sweep(now=timezone.now() + timedelta(hours=1))["recovered"] == 1
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and steps(run)["a"].attempt == 2


def test_saved_versions_cannot_be_changed(db, user):
    workflow = make_workflow(user, chain_graph())
    version = workflow.versions.get()
    version.message = "rewritten"
    with pytest.raises(TypeError, match="immutable"):
        version.save()
    with pytest.raises(TypeError, match="immutable"):
        WorkflowVersion.objects.filter(id=version.id).update(message="rewritten")
    version.refresh_from_db()
    assert version.message == "Created"


def test_restore_creates_a_new_version_naming_its_origin(db, user):
    workflow = make_workflow(user, chain_graph())
    v1 = workflow.versions.get()
    services.version_save(workflow=workflow, author=user, graph=chain_graph(node("a", "test.echo")), message="add a")
    v3 = services.version_restore(version=v1, author=user)
    assert (v3.number, v3.message, v3.restored_from, v3.graph) == (3, "Restored from v1", v1, v1.graph)
    assert list(workflow.versions.values_list("number", flat=True)) == [3, 2, 1]


def test_invalid_save_writes_nothing(db, user):
    workflow = make_workflow(user, chain_graph())
    with pytest.raises(GraphInvalid):
        services.version_save(workflow=workflow, author=user, graph=chain_graph(node("x", "test.nope")))
    assert workflow.versions.count() == 1


def test_reruns_share_the_first_runs_idempotency_key(eager_engine, user):
    graph = chain_graph(node("effect", "test.side_effect"), node("gate", "test.fail_unless", fail_if_file_missing="go"))
    first = engine.run_start(workflow=make_workflow(user, graph), user=user, symbol="AAPL")
    first.refresh_from_db()
    assert first.status == RunStatus.FAILED
    record("marker", "go")
    second = engine.run_rerun(run=first, user=user, from_failed=False, latest=False)
    second.refresh_from_db()
    third = engine.run_rerun(run=second, user=user, from_failed=False, latest=False)
    assert second.origin == first and third.origin == first
    # Three executions of the side-effect step, one side effect: every rerun used run<first>'s key.
    assert len(records("exec", f"{first.id}-effect")) + executions(second, "effect") + executions(third, "effect") == 3
    assert len(records("effect", f"run{first.id}-effect")) == 1
    assert records("effect", f"run{second.id}-effect") == []


def test_rerun_refused_while_a_cancelled_runs_step_still_runs(eager_engine, user, monkeypatch):
    monkeypatch.setattr(engine, "_dispatch", lambda *a, **k: None)
    run = engine.run_start(workflow=make_workflow(user, chain_graph()), user=user, symbol="AAPL")
    StepRun.objects.filter(run=run).update(status=StepStatus.RUNNING)
    run = engine.run_cancel(run=run)
    with pytest.raises(RunStateError, match=r"still has steps running \(src\)"):
        engine.run_rerun(run=run, user=user, from_failed=False, latest=False)


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("bad_output", "returned outputs that are not plain JSON"),
        ("self_cancel", "Run was cancelled"),
        ("crash", "RuntimeError: internal detail"),
    ],
)
def test_misbehaving_steps_fail_the_run_instead_of_hanging(eager_engine, user, mode, error):
    graph = chain_graph(node("bad", "test.misbehave", mode=mode), node("after", "test.echo"))
    run = engine.run_start(workflow=make_workflow(user, graph), user=user, symbol="AAPL")
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.finished_at
    bad = steps(run)["bad"]
    assert error in bad.error
    assert steps(run)["after"].status == StepStatus.SKIPPED
    assert "Traceback" not in str(bad.logs)  # tracebacks stay in the worker's log


def test_a_step_type_missing_from_the_worker_fails_its_step_and_spares_the_sweeper(eager_engine, user, monkeypatch):
    sent = []
    monkeypatch.setattr(engine, "_dispatch", lambda step, graph, countdown=0: sent.append(step.id))
    run = engine.run_start(workflow=make_workflow(user, chain_graph(node("a", "test.echo"))), user=user, symbol="AAPL")
    monkeypatch.setattr(registry, "_items", {k: v for k, v in registry._items.items() if k != "test.source"})
    StepRun.objects.filter(run=run, node_id="a").update(status=StepStatus.RUNNING)  # as if a worker died in it
    counts = engine.step_runs_sweep(now=timezone.now() + timedelta(hours=1))
    assert counts["errors"] == 0 and counts["redispatched"] == 1
    engine.step_run_execute(step_run_id=sent[0])
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert 'Step type "test.source" is not installed on this worker' in run.error


def test_sweeper_leaves_a_retry_waiting_out_its_backoff(eager_engine, user, monkeypatch):
    sent = []
    monkeypatch.setattr(engine, "_dispatch", lambda step, graph, countdown=0: sent.append(step.id))
    graph = chain_graph(node("f", "test.flaky", fail_times=1))
    graph["nodes"][1]["retry"] = {"max": 1, "backoff_s": 3600}
    engine.run_start(workflow=make_workflow(user, graph), user=user, symbol="AAPL")
    engine.step_run_execute(step_run_id=sent[0])  # src
    engine.step_run_execute(step_run_id=sent[1])  # f fails once, due again in an hour
    now = timezone.now()
    assert engine.step_runs_sweep(now=now + timedelta(seconds=700))["redispatched"] == 0
    assert engine.step_runs_sweep(now=now + timedelta(seconds=3600 + 700))["redispatched"] == 1
