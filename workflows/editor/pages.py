"""The visual editor and the template gallery: server-rendered pages that mount the editor's
front-end bundle (frontend/, built by Vite into static/dist/) on one element each.

The bundle talks to the REST API itself; these views only check who may see what (own
workflows, staff see all; anything else is a 404) and hand it ids, URLs and the CSRF token.
"""

from typing import Any

from django.contrib import messages
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from workflows import services
from workflows.errors import ApplicationError
from workflows.graph import graph_upgrade
from workflows.models import Template, Workflow
from workflows.selectors import runs_visible, workflows_visible

EDITOR_JS = "dist/editor.js"
EDITOR_CSS = "dist/editor.css"


def editor_bundle_ready() -> bool:
    """Whether the built bundle is there: in static/ (DEBUG, runserver) or collected (production)."""
    for name in (EDITOR_JS, EDITOR_CSS):
        if finders.find(name):
            continue
        try:
            if not staticfiles_storage.exists(name):
                return False
        except Exception:  # a storage that cannot answer (no manifest yet) has no bundle either
            return False
    return True


def _editor_urls() -> dict[str, str]:
    # URL patterns with id 0, which the bundle replaces with a real id.
    return {
        "api_base": reverse("api-step-types").removesuffix("step-types/"),
        "edit_url": reverse("workflow-edit", args=[0]),
        "detail_url": reverse("workflow-detail", args=[0]),
        "run_url": reverse("run-detail", args=[0]),
    }


def _editor_response(
    request: HttpRequest,
    *,
    workflow: Workflow | None,
    name: str,
    initial_graph: dict | None = None,
    symbol: str = "",
) -> HttpResponse:
    context: dict[str, Any] = {
        "section": "workflows",
        "workflow": workflow,
        "name": name,
        "initial_graph": initial_graph,
        "symbol": symbol,
        "bundle_ready": editor_bundle_ready(),
        **_editor_urls(),
    }
    return render(request, "workflows/editor.html", context)


@require_safe
def workflow_edit(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_object_or_404(workflows_visible(user=request.user), pk=pk)
    last_run = runs_visible(user=request.user).filter(workflow=workflow).first()
    return _editor_response(request, workflow=workflow, name=workflow.name, symbol=last_run.symbol if last_run else "")


@require_safe
def workflow_new(request: HttpRequest) -> HttpResponse:
    """A new workflow in the editor: blank, or (?template=<slug>) starting from a template's
    graph. Nothing is stored until the user saves."""
    slug = request.GET.get("template", "")
    if slug:
        template = get_object_or_404(Template, slug=slug)
        return _editor_response(
            request, workflow=None, name=template.name, initial_graph=graph_upgrade(template.graph)[0]
        )
    return _editor_response(request, workflow=None, name="")


@require_safe
def gallery(request: HttpRequest) -> HttpResponse:
    templates = list(Template.objects.all())
    for template in templates:
        nodes = template.graph.get("nodes", []) if isinstance(template.graph, dict) else []
        template.step_count = len(nodes)
        template.step_labels = [n.get("label") or n.get("id", "") for n in nodes if isinstance(n, dict)]
    context = {
        "section": "templates",
        "templates": templates,
        "bundle_ready": editor_bundle_ready(),
        "api_base": _editor_urls()["api_base"],
    }
    return render(request, "workflows/gallery.html", context)


@require_POST
def template_open(request: HttpRequest, pk: int) -> HttpResponse:
    """Use this template: a workflow the user owns, opened in the editor."""
    template = get_object_or_404(Template, pk=pk)
    try:
        workflow = services.template_use(template=template, owner=request.user)
    except ApplicationError as exc:
        messages.error(request, f'The template "{template.name}" could not be used: {exc.message}')
        return redirect("gallery")
    messages.success(request, f'Created "{workflow.name}" from the template "{template.name}".')
    return redirect("workflow-edit", pk=workflow.pk)
