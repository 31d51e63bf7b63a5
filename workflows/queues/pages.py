"""The task queue page (`/queues/`; the API is api.py): staff only.

Anonymous visitors are sent to the login page (the API answers 403); users who are not staff
get a 403 with the reason, as the other staff-only actions of the app do.
"""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from workflows.errors import ApplicationError
from workflows.queues import services as queue

STAFF_ONLY = "Only staff can see and change the task queues."


def _queues_response(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    context = {"section": "queues", "error": error, "stuck_after_s": queue.STUCK_AFTER_S}
    if request.user.is_staff:
        steps = queue.queued_steps()
        for step in steps:
            step.age = queue.age_text(step.age_s)
        context |= {"overview": queue.queue_overview(), "queued_steps": steps}
    return render(request, "workflows/queues.html", context, status=status)


def _forbidden(request: HttpRequest) -> HttpResponse | None:
    return None if request.user.is_staff else _queues_response(request, error=STAFF_ONLY, status=403)


def _step_run_id(request: HttpRequest) -> int | None:
    value = request.POST.get("step_run", "")
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


@require_safe
def queue_list(request: HttpRequest) -> HttpResponse:
    return _forbidden(request) or _queues_response(request)


@require_POST
def queue_task_cancel(request: HttpRequest) -> HttpResponse:
    refused = _forbidden(request)
    if refused:
        return refused
    task_id = request.POST.get("task_id", "").strip()[:200]
    step_run_id = _step_run_id(request)
    if not task_id or step_run_id is None:
        return _queues_response(request, error="Cancel needs a task id and its step run.", status=400)
    try:
        result = queue.task_cancel(task_id=task_id, step_run_id=step_run_id, state=request.POST.get("state", ""))
    except ApplicationError as exc:
        return _queues_response(request, error=exc.message, status=400)
    run = result.run
    what = f"Run #{run.pk} cancelled" if result.run_cancelled else f"Run #{run.pk} had already {run.status}"
    if result.revoke_error:
        messages.warning(request, f"{what}; the task could not be revoked: {result.revoke_error}")
    else:
        how = "terminated" if result.terminated else "revoked"
        messages.success(request, f"{what}; task {task_id} {how}.")
    return redirect("queue-list")


@require_POST
def queue_step_retry(request: HttpRequest) -> HttpResponse:
    refused = _forbidden(request)
    if refused:
        return refused
    step_run_id = _step_run_id(request)
    if step_run_id is None:
        return _queues_response(request, error="Retry needs a step run.", status=400)
    try:
        step = queue.step_run_redispatch(step_run_id=step_run_id)
    except ApplicationError as exc:
        return _queues_response(request, error=exc.message, status=400)
    messages.success(request, f'Step "{step.node_id}" of run #{step.run_id} sent to its queue again.')
    return redirect(reverse("queue-list"))
