"""Approvals: the human decisions `flow.approval` steps wait for (DESIGN §5: no worker blocked).

The step writes a PENDING Approval and parks (WAITING). `approval_decide` (the web page or the
API) or `approvals_expire` (beat, once a minute) records the decision and resumes the step with
its input plus the approval, so the next step (an order) sees who decided what. A rejection or
an expiry is not a failure of the run: the order step records that nothing was sent and why.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from workflows import engine
from workflows.errors import ApplicationError
from workflows.models import Approval, ApprovalStatus, StepRun, StepStatus

MAX_QUANTITY = 1_000_000


def approvals_visible(*, user) -> QuerySet[Approval]:
    qs = Approval.objects.select_related("run__workflow", "decided_by", "step_run")
    return qs if user.is_staff else qs.filter(run__workflow__owner=user)


def approvals_pending(*, user) -> QuerySet[Approval]:
    """Approvals someone can still decide: pending, and their step still waiting."""
    return approvals_visible(user=user).filter(status=ApprovalStatus.PENDING, step_run__status=StepStatus.WAITING)


@transaction.atomic
def approval_request(
    *, step_run_id: int, message: str, summary: dict[str, Any], quantity: int | None, expires_after_min: int
) -> Approval:
    """The step's approval, written once: a redelivered step finds the one it already asked for."""
    step = StepRun.objects.get(id=step_run_id)
    approval, _ = Approval.objects.get_or_create(
        step_run=step,
        defaults={
            "run_id": step.run_id,
            "message": message[:500],
            "summary": summary,
            "quantity": quantity,
            "expires_at": timezone.now() + timedelta(minutes=expires_after_min),
        },
    )
    return approval


def _outcome(approval: Approval) -> dict[str, Any]:
    return {
        "status": approval.status,
        "approved": approval.status == ApprovalStatus.APPROVED,
        "by": approval.decided_by.get_username() if approval.decided_by else None,
        "at": approval.decided_at.isoformat() if approval.decided_at else None,
        "quantity": approval.approved_quantity,
        "comment": approval.comment,
    }


def _resume(approval: Approval) -> None:
    item = approval.step_run.inputs.get("item")
    outcome = _outcome(approval)
    out = {**item, "approval": outcome} if isinstance(item, dict) else {"value": item, "approval": outcome}
    if outcome["approved"] and approval.approved_quantity is not None and isinstance(item, dict):
        out["quantity"] = approval.approved_quantity
    who = outcome["by"] or "nobody (it expired)"
    engine.step_resume(
        step_run_id=approval.step_run_id,
        outputs={"item": out},
        log=f"Approval {approval.status} by {who}" + (f": {approval.comment}" if approval.comment else ""),
    )


@transaction.atomic
def approval_decide(
    *, approval: Approval, user, approve: bool, quantity: int | None = None, comment: str = ""
) -> Approval:
    """Approve (optionally with another quantity) or reject, and let the run go on."""
    approval = Approval.objects.select_for_update().select_related("step_run").get(id=approval.id)
    if approval.status != ApprovalStatus.PENDING:
        raise ApplicationError(f"This approval was already {approval.status}; it cannot be decided again")
    if approval.step_run.status != StepStatus.WAITING:
        raise ApplicationError(f"Run {approval.run_id} is no longer waiting for this approval (it was cancelled)")
    if quantity is not None:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            raise ApplicationError(f"Quantity must be a whole number from 1 to {MAX_QUANTITY:,}, not {quantity!r}")
        if not approve:
            raise ApplicationError("A quantity can only be given when approving")
    approval.status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
    approval.approved_quantity = (quantity or approval.quantity) if approve else None
    approval.decided_by, approval.decided_at = user, timezone.now()
    approval.comment = (comment or "")[:500]
    approval.save(update_fields=["status", "approved_quantity", "decided_by", "decided_at", "comment"])
    _resume(approval)
    return approval


def approvals_expire(*, now: datetime | None = None) -> int:
    """Reject every pending approval past its time. Run by beat every minute."""
    now = now or timezone.now()
    expired = 0
    for approval_id in Approval.objects.filter(status=ApprovalStatus.PENDING, expires_at__lte=now).values_list(
        "id", flat=True
    ):
        with transaction.atomic():
            approval = Approval.objects.select_for_update().select_related("step_run").get(id=approval_id)
            if approval.status != ApprovalStatus.PENDING:
                continue
            approval.status, approval.decided_at = ApprovalStatus.EXPIRED, now
            approval.comment = "Nobody decided before it expired"
            approval.save(update_fields=["status", "decided_at", "comment"])
            if approval.step_run.status == StepStatus.WAITING:
                _resume(approval)
            expired += 1
    return expired


def approvals_decided(*, user, limit: int = 20) -> QuerySet[Approval]:
    """The most recently decided (or expired) approvals the user may see."""
    return approvals_visible(user=user).exclude(status=ApprovalStatus.PENDING).order_by("-decided_at", "-id")[:limit]


def approvals_pending_count(*, user) -> int:
    """One COUNT query: the nav badge."""
    if not getattr(user, "is_authenticated", False):
        return 0
    return approvals_pending(user=user).count()
