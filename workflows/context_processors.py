"""Template context for every page: the pending approvals badge in the nav."""

from django.http import HttpRequest

from workflows.approvals.services import approvals_pending_count


def pending_approvals(request: HttpRequest) -> dict[str, int]:
    # One COUNT query per rendered page, none for anonymous visitors.
    return {"pending_approvals_count": approvals_pending_count(user=request.user)}
