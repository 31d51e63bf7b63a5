"""Writes for workflows, versions and templates. The engine's writes are in engine.py.

Graphs from a client (create, save, import, template upsert) are taken as written for each
step type's current version; graphs read back from a stored row (restore, clone, template use)
are upgraded first (graph_upgrade). Either way what is stored carries every node's version.
"""

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Max

from workflows.errors import ApplicationError
from workflows.graph import graph_check, graph_upgrade
from workflows.models import Template, Workflow, WorkflowVersion
from workflows.selectors import EXPORT_FORMAT, EXPORT_FORMAT_VERSIONS, version_latest


def _clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ApplicationError("A workflow needs a name")
    if len(name.strip()) > 200:
        raise ApplicationError("The workflow name is longer than 200 characters")
    return name.strip()


def _arriving(graph: Any) -> Any:
    """A graph from a client: nodes without `version` are for their type's current version
    (stamped), nodes with an older one are upgraded."""
    return graph_upgrade(graph, arriving=True)[0]


@transaction.atomic
def workflow_create(
    *,
    owner,
    name: str,
    graph: dict,
    description: str = "",
    message: str = "Created",
    ai_token_budget: int | None = None,
    ai_cost_budget_usd: Decimal | None = None,
    live_trading: bool | None = None,
) -> Workflow:
    graph = _arriving(graph)
    graph_check(graph)
    workflow = Workflow.objects.create(owner=owner, name=_clean_name(name), description=description or "")
    WorkflowVersion.objects.create(workflow=workflow, number=1, graph=graph, message=message, author=owner)
    settings = {"ai_token_budget": ai_token_budget, "ai_cost_budget_usd": ai_cost_budget_usd}
    if any(v is not None for v in (*settings.values(), live_trading)):
        # The same checks as a later change of these settings: one place decides what is allowed.
        workflow = workflow_update(workflow=workflow, live_trading=live_trading, **settings)
    return workflow


@transaction.atomic
def workflow_update(
    *,
    workflow: Workflow,
    name: str | None = None,
    description: str | None = None,
    ai_token_budget: int | None = None,
    ai_cost_budget_usd: Decimal | None = None,
    live_trading: bool | None = None,
) -> Workflow:
    if name is not None:
        workflow.name = _clean_name(name)
    if description is not None:
        workflow.description = description
    if ai_token_budget is not None:
        workflow.ai_token_budget = ai_token_budget
    if ai_cost_budget_usd is not None:
        if ai_cost_budget_usd < 0:
            raise ApplicationError("ai_cost_budget_usd cannot be negative")
        workflow.ai_cost_budget_usd = ai_cost_budget_usd
    if live_trading is not None:
        # Safety rule 1: this alone sends nothing live; the global switch and TRADING_MODE=live must agree.
        workflow.live_trading = live_trading
    workflow.save(
        update_fields=["name", "description", "ai_token_budget", "ai_cost_budget_usd", "live_trading", "updated_at"]
    )
    return workflow


@transaction.atomic
def version_save(
    *, workflow: Workflow, author, graph: dict, message: str = "", restored_from: WorkflowVersion | None = None
) -> WorkflowVersion:
    """Save the graph as version N+1. Nothing is written if it is invalid."""
    graph = _arriving(graph)
    graph_check(graph)
    # Lock the workflow row so two saves at once get distinct numbers.
    workflow = Workflow.objects.select_for_update().get(id=workflow.id)
    number = (workflow.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = WorkflowVersion.objects.create(
        workflow=workflow, number=number, graph=graph, message=message[:500], author=author, restored_from=restored_from
    )
    workflow.save(update_fields=["updated_at"])
    return version


def version_restore(*, version: WorkflowVersion, author) -> WorkflowVersion:
    """Make an old version current again, as a new version that says where it came from."""
    return version_save(
        workflow=version.workflow,
        author=author,
        graph=graph_upgrade(version.graph)[0],
        message=f"Restored from v{version.number}",
        restored_from=version,
    )


@transaction.atomic
def workflow_clone(*, workflow: Workflow, owner, name: str | None = None) -> Workflow:
    latest = version_latest(workflow=workflow)
    if latest is None:
        raise ApplicationError(f'Workflow "{workflow.name}" has no version to clone')
    return workflow_create(
        owner=owner,
        name=name or f"{workflow.name} (copy)",
        description=workflow.description,
        graph=graph_upgrade(latest.graph)[0],
        message=f'Cloned from "{workflow.name}" v{latest.number}',
    )


def workflow_import(*, owner, document: Any) -> Workflow:
    """Create a workflow from an exported JSON document (see selectors.workflow_export)."""
    if not isinstance(document, dict):
        raise ApplicationError("The import must be a JSON object as produced by export")
    if document.get("format") != EXPORT_FORMAT:
        raise ApplicationError(f'The import is not a workflow export: "format" must be "{EXPORT_FORMAT}"')
    if document.get("format_version") not in EXPORT_FORMAT_VERSIONS:
        raise ApplicationError(f"Unsupported export format_version {document.get('format_version')!r}")
    graph = document.get("graph")
    if not isinstance(graph, dict):
        raise ApplicationError('The import has no "graph" object')
    if document["format_version"] == 1:
        # Exported before step types had versions: its nodes are version 1, upgraded like stored ones.
        graph = graph_upgrade(graph)[0]
    description = document.get("description", "")
    if not isinstance(description, str):
        raise ApplicationError('"description" must be text')
    return workflow_create(
        owner=owner, name=document.get("name"), description=description, graph=graph, message="Imported"
    )


def template_use(*, template: Template, owner, name: str | None = None) -> Workflow:
    return workflow_create(
        owner=owner,
        name=name or template.name,
        description=template.description,
        graph=graph_upgrade(template.graph)[0],
        message=f'From template "{template.name}"',
    )


@transaction.atomic
def template_upsert(*, slug: str, name: str, description: str, graph: dict, position: int) -> Template:
    graph = _arriving(graph)
    graph_check(graph)
    template, _ = Template.objects.update_or_create(
        slug=slug, defaults={"name": name, "description": description, "graph": graph, "position": position}
    )
    return template
