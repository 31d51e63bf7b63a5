"""Server-rendered pages: workflows, versions, templates and runs.

Reads go through the selectors (one visibility rule: own rows, staff see all), so an object a
user may not see is a 404. Writes go through the services and the engine; an ApplicationError
is shown on the page it came from, with HTTP 400, never a 500.
"""

import json
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from workflows import engine, services
from workflows.api.serializers import RunFilterSerializer
from workflows.errors import ApplicationError
from workflows.graph import graph_upgrade
from workflows.idempotency import form_idempotency, start_once
from workflows.models import Run, RunStatus, StepStatus, Template, Trigger, Workflow
from workflows.registry import registry
from workflows.run_filters import PARAMS as RUN_FILTERS
from workflows.run_filters import runs_filter
from workflows.selectors import run_steps, runs_visible, workflows_visible

RUNS_PER_PAGE = 50
RUN_FILTER_LABELS = {
    "workflow": "Workflow",
    "strategy": "Strategy",
    "symbol": "Symbol",
    "status": "Status",
    "trigger": "Trigger",
    "date_from": "From",
    "date_to": "To",
    "created_after": "Created after",
    "created_before": "Created before",
}
RECENT_RUNS = 10
# Seconds between reloads of an unfinished run's page where live updates (server-sent events,
# workflows/live/stream.py) cannot run: no EventSource in the browser, or no JavaScript.
RUN_REFRESH_S = 2


@login_not_required
def health(request):
    return JsonResponse({"status": "ok"})


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _param_text(value: Any) -> str:
    # Text shows as typed ({{symbol}}, 1d); anything else as JSON so types stay visible.
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


# Workflows


def _workflow_list_response(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    context = {
        "section": "workflows",
        "workflows": workflows_visible(user=request.user).order_by("-updated_at"),
        "templates": Template.objects.all(),
        "error": error,
    }
    return render(request, "workflows/workflow_list.html", context, status=status)


@require_safe
def workflow_list(request: HttpRequest) -> HttpResponse:
    return _workflow_list_response(request)


@require_POST
def template_use(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_object_or_404(Template, pk=pk)
    try:
        workflow = services.template_use(template=template, owner=request.user)
    except ApplicationError as exc:
        return _workflow_list_response(request, error=exc.message, status=400)
    messages.success(request, f'Created "{workflow.name}" from the template "{template.name}".')
    return redirect("workflow-detail", pk=workflow.pk)


def _graph_view(graph: Any) -> dict[str, Any]:
    """The stored graph as rows a template can show; tolerant of any JSON it may hold."""
    graph = graph if isinstance(graph, dict) else {}
    nodes = []
    for node in graph.get("nodes") or []:
        if not isinstance(node, dict):
            continue
        step_type = registry.get(str(node.get("type", "")))
        params = node.get("params") if isinstance(node.get("params"), dict) else {}
        retry = node.get("retry") if isinstance(node.get("retry"), dict) else {}
        nodes.append(
            {
                "id": node.get("id", ""),
                "type": node.get("type", ""),
                "label": node.get("label") or (step_type.label if step_type else ""),
                "known": step_type is not None,
                "params": [(k, _param_text(v)) for k, v in params.items()],
                "retry_max": retry.get("max", 0),
                "timeout_s": node.get("timeout_s"),
            }
        )
    edges = [e for e in graph.get("edges") or [] if isinstance(e, dict)]
    defaults = graph.get("params") if isinstance(graph.get("params"), dict) else {}
    return {
        "nodes": nodes,
        "edges": edges,
        "params": [(k, _param_text(v)) for k, v in defaults.items()],
    }


def _workflow_detail_response(
    request: HttpRequest, workflow: Workflow, *, error: str = "", symbol: str | None = None, status: int = 200
) -> HttpResponse:
    versions = list(workflow.versions.select_related("author", "restored_from").order_by("-number"))
    latest = versions[0] if versions else None
    recent_runs = list(runs_visible(user=request.user).filter(workflow=workflow)[:RECENT_RUNS])
    if symbol is None:
        # The last symbol run is the likeliest next one.
        symbol = recent_runs[0].symbol if recent_runs else ""
    context = {
        "section": "workflows",
        "workflow": workflow,
        "versions": versions,
        "latest": latest,
        "graph": _graph_view(graph_upgrade(latest.graph)[0]) if latest else None,
        "recent_runs": recent_runs,
        "symbol": symbol,
        "error": error,
        "export_url": reverse("api-workflow-export", args=[workflow.pk]),
    }
    return render(request, "workflows/workflow_detail.html", context, status=status)


def _visible_workflow(request: HttpRequest, pk: int) -> Workflow:
    return get_object_or_404(workflows_visible(user=request.user), pk=pk)


@require_safe
def workflow_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _workflow_detail_response(request, _visible_workflow(request, pk))


@require_POST
def workflow_run(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = _visible_workflow(request, pk)
    symbol = request.POST.get("symbol", "")
    try:
        idempotency = form_idempotency(request.POST, {"workflow": workflow.pk, "symbol": symbol})
        with engine.dispatch_watch() as watch:
            run, replayed = start_once(
                Run,
                user=request.user,
                idempotency=idempotency,
                start=lambda idem: engine.run_start(
                    workflow=workflow, user=request.user, symbol=symbol, idempotency=idem
                ),
            )
    except ApplicationError as exc:
        return _workflow_detail_response(request, workflow, error=exc.message, symbol=symbol, status=400)
    if replayed:
        messages.info(request, f"Run {run.pk} was already started by this form.")
    elif watch.failed(run.pk):
        # Saved, not lost: say so, rather than an error that invites a second run.
        messages.warning(request, f"Run {run.pk} {engine.BROKER_DOWN_MESSAGE}.")
    return redirect("run-detail", pk=run.pk)


@require_POST
def version_restore(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    workflow = _visible_workflow(request, pk)
    version = get_object_or_404(workflow.versions, number=number)
    try:
        restored = services.version_restore(version=version, author=request.user)
    except ApplicationError as exc:
        return _workflow_detail_response(request, workflow, error=exc.message, status=400)
    messages.success(request, f"Restored v{version.number} as v{restored.number}.")
    return redirect("workflow-detail", pk=workflow.pk)


# Runs


@require_safe
def run_list(request: HttpRequest) -> HttpResponse:
    # What the user asked for, shown again in the form and kept by the page links.
    filters = {name: value for name in RUN_FILTERS if (value := request.GET.get(name, "").strip())}
    if "symbol" in filters:
        filters["symbol"] = filters["symbol"].upper()
    # A value that is not valid (status "nope", date "abc") is named in the page's error and
    # left out; the other filters still apply.
    errors: dict[str, list] = {}
    checked = RunFilterSerializer(data=filters)
    while not checked.is_valid():
        errors |= checked.errors
        usable = {name: value for name, value in filters.items() if name not in checked.errors}
        filters = usable if usable != filters else {}  # {} is always valid: the loop ends
        checked = RunFilterSerializer(data=filters)
    # runs_visible first, so a workflow filter never reaches past the user's own workflows.
    runs = runs_filter(runs=runs_visible(user=request.user), filters=checked.validated_data)
    error = " ".join(
        f"{RUN_FILTER_LABELS.get(name, name)} filter ignored: {' '.join(str(p) for p in problems)}"
        for name, problems in errors.items()
    )

    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "section": "runs",
        "page": page,
        "runs": page.object_list,
        "filters": filters,
        "filter_query": urlencode(filters),
        "error": error,
        "statuses": RunStatus.choices,
        "triggers": Trigger.choices,
        "workflows": workflows_visible(user=request.user).order_by("name").values_list("id", "name"),
        # Strategies that have runs, through their batches' link (workflows imports no domain app).
        "strategies": runs_visible(user=request.user)
        .exclude(batch__strategy_link=None)
        .order_by("batch__strategy_link__strategy__name")
        .values_list("batch__strategy_link__strategy_id", "batch__strategy_link__strategy__name")
        .distinct(),
    }
    return render(request, "workflows/run_list.html", context)


def _run_detail_response(request: HttpRequest, run: Run, *, error: str = "", status: int = 200) -> HttpResponse:
    steps = list(run_steps(run=run))
    for step in steps:
        step_type = registry.get(step.step_type)
        step.label = step_type.label if step_type else ""
        step.result_template = step_type.result_template if step_type else None
        step.result = step_type.result_context(step) if step.result_template else {}
        step.params_json = _pretty(step.params)
        step.inputs_json = _pretty(step.inputs)
        step.outputs_json = _pretty(step.outputs)
    context = {
        "section": "runs",
        "run": run,
        "steps": steps,
        "error": error,
        "refresh_s": RUN_REFRESH_S if not run.finished else None,
        "can_rerun_failed": run.finished and any(s.status != StepStatus.SUCCEEDED for s in steps),
        "params_json": _pretty(run.params),
        "overrides_json": _pretty(run.overrides) if run.overrides else "",
        "reruns": list(runs_visible(user=request.user).filter(rerun_of=run).order_by("id")),
    }
    return render(request, "workflows/run_detail.html", context, status=status)


def _visible_run(request: HttpRequest, pk: int) -> Run:
    return get_object_or_404(runs_visible(user=request.user).select_related("rerun_of"), pk=pk)


@require_safe
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _run_detail_response(request, _visible_run(request, pk))


@require_POST
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = _visible_run(request, pk)
    try:
        engine.run_cancel(run=run)
    except ApplicationError as exc:
        return _run_detail_response(request, run, error=exc.message, status=400)
    messages.success(request, f"Run {run.pk} cancelled.")
    return redirect("run-detail", pk=run.pk)


@require_POST
def run_rerun(request: HttpRequest, pk: int) -> HttpResponse:
    run = _visible_run(request, pk)
    from_failed = request.POST.get("from_failed") == "1"
    latest = bool(request.POST.get("latest"))
    try:
        new = engine.run_rerun(run=run, user=request.user, from_failed=from_failed, latest=latest)
    except ApplicationError as exc:
        return _run_detail_response(request, run, error=exc.message, status=400)
    how = "from the failed step" if from_failed else "from the start"
    messages.success(request, f"Rerun of run {run.pk} {how}, on v{new.version.number}.")
    return redirect("run-detail", pk=new.pk)
