"""flow.approval: the run parks without holding a worker, and goes on when someone decides."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import edge, node
from workflows import engine, services
from workflows.approvals.services import approval_decide, approvals_expire, approvals_pending
from workflows.errors import ApplicationError
from workflows.models import Approval, ApprovalStatus, Run, RunStatus, StepRun, StepStatus


def _graph(**approval_params) -> dict:
    nodes = [node("src", "test.source"), node("ask", "flow.approval", **approval_params), node("after", "test.echo")]
    edges = [edge("src", "ask", target_port="item"), edge("ask", "after", source_port="item")]
    return {"schema": 1, "params": {}, "nodes": nodes, "edges": edges}


def _run(user, **approval_params):
    graph = _graph(**approval_params)
    workflow = services.workflow_create(owner=user, name="wf", graph=graph)
    return engine.run_start(workflow=workflow, user=user, symbol="IBM")


def test_the_run_waits_then_goes_on_when_approved(eager_engine, user):
    run = _run(user, message="Buy?")
    run.refresh_from_db()
    ask = run.steps.get(node_id="ask")
    assert run.status == RunStatus.WAITING and ask.status == StepStatus.WAITING
    assert ask.finished_at is None and run.steps.get(node_id="after").status == StepStatus.PENDING
    approval = Approval.objects.get(step_run=ask)
    assert approval.status == ApprovalStatus.PENDING and approval.message == "Buy?"
    assert list(approvals_pending(user=user)) == [approval]

    approval_decide(approval=approval, user=user, approve=True, comment="fine")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    item = run.steps.get(node_id="ask").outputs["item"]
    assert item["approval"]["approved"] is True and item["approval"]["by"] == "alice"
    assert run.steps.get(node_id="after").outputs["out"]["got"]["approval"]["comment"] == "fine"
    assert list(approvals_pending(user=user)) == []


def test_a_redelivered_approval_step_asks_once(eager_engine, user):
    run = _run(user)
    ask = run.steps.get(node_id="ask")
    # The worker parked the step, but the message is delivered again as if it had died first.
    StepRun.objects.filter(id=ask.id).update(status=StepStatus.QUEUED)
    engine.step_run_execute(step_run_id=ask.id)
    assert StepRun.objects.get(id=ask.id).status == StepStatus.WAITING
    assert Approval.objects.filter(run=run).count() == 1


def test_rejected_or_expired_approvals_let_the_run_finish_unapproved(eager_engine, user):
    run = _run(user)
    approval = Approval.objects.get(run=run)
    approval_decide(approval=approval, user=user, approve=False)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.steps.get(node_id="ask").outputs["item"]["approval"]["status"] == "rejected"
    with pytest.raises(ApplicationError, match="already rejected"):
        approval_decide(approval=approval, user=user, approve=True)

    late = _run(user, expires_after_min=5)
    assert approvals_expire(now=timezone.now() + timedelta(minutes=4)) == 0
    assert approvals_expire(now=timezone.now() + timedelta(minutes=6)) == 1
    late.refresh_from_db()
    assert late.status == RunStatus.SUCCEEDED
    outcome = late.steps.get(node_id="ask").outputs["item"]["approval"]
    assert outcome == {**outcome, "status": "expired", "approved": False}


def test_quantity_changes_are_checked(eager_engine, user):
    run = _run(user)
    approval = Approval.objects.get(run=run)
    for bad in (0, -3, "ten", True, 10_000_000):
        with pytest.raises(ApplicationError, match="Quantity must be a whole number"):
            approval_decide(approval=approval, user=user, approve=True, quantity=bad)
    with pytest.raises(ApplicationError, match="only be given when approving"):
        approval_decide(approval=approval, user=user, approve=False, quantity=5)
    assert Approval.objects.get(id=approval.id).status == ApprovalStatus.PENDING


def test_a_cancelled_run_cannot_be_approved(eager_engine, user):
    run = _run(user)
    engine.run_cancel(run=Run.objects.get(id=run.id))
    approval = Approval.objects.get(run=run)
    assert list(approvals_pending(user=user)) == []
    with pytest.raises(ApplicationError, match="no longer waiting"):
        approval_decide(approval=approval, user=user, approve=True)


def test_a_failed_branch_cancels_a_waiting_approval(eager_engine, user):
    graph = _graph()
    graph["nodes"].append(node("boom", "test.fail_unless", fail_if_file_missing="never-written"))
    graph["edges"].append({"source": "src", "source_port": "out", "target": "boom", "target_port": "in"})
    workflow = services.workflow_create(owner=user, name="wf", graph=graph)
    run = engine.run_start(workflow=workflow, user=user, symbol="IBM")
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.steps.get(node_id="ask").status == StepStatus.CANCELLED
