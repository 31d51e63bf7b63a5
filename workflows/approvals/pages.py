"""The Approvals page: what `flow.approval` steps wait for, approved (maybe with another quantity) or rejected.

An approval is visible through its run (own workflows; staff all), so another user's is a 404.
A decision that does not fit (already decided, run cancelled, a bad quantity) is shown on the page
with HTTP 400, never a 500.
"""

import re

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from workflows.approvals.services import approval_decide, approvals_decided, approvals_pending, approvals_visible
from workflows.errors import ApplicationError

RECENT_DECIDED = 20


def _page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    context = {
        "section": "approvals",
        "pending": list(approvals_pending(user=request.user).order_by("expires_at", "id")),
        "decided": list(approvals_decided(user=request.user, limit=RECENT_DECIDED)),
        "error": error,
    }
    return render(request, "workflows/approvals.html", context, status=status)


@require_safe
def approval_list(request: HttpRequest) -> HttpResponse:
    return _page(request)


def _quantity(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not re.fullmatch(r"[0-9]{1,18}", text):
        raise ApplicationError(f'Quantity must be a whole number of shares, not "{text[:40]}"')
    return int(text)


def _decide(request: HttpRequest, pk: int, *, approve: bool) -> HttpResponse:
    approval = get_object_or_404(approvals_visible(user=request.user), pk=pk)
    try:
        quantity = _quantity(request.POST.get("quantity", "")) if approve else None
        approval = approval_decide(
            approval=approval,
            user=request.user,
            approve=approve,
            quantity=quantity,
            comment=request.POST.get("comment", "").strip(),
        )
    except ApplicationError as exc:
        return _page(request, error=f"Approval #{pk}: {exc.message}", status=400)
    what = f"approved for {approval.approved_quantity} shares" if approve else "rejected"
    if approve and approval.approved_quantity is None:
        what = "approved"
    messages.success(request, f"Approval #{approval.pk} (run #{approval.run_id}) {what}; the run goes on.")
    return redirect("approval-list")


@require_POST
def approval_approve(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(request, pk, approve=True)


@require_POST
def approval_reject(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(request, pk, approve=False)
