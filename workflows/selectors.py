"""Reads, with the visibility rule in one place: users see their own rows, staff see all."""

from django.db.models import Count, Max, QuerySet

from workflows.graph import graph_upgrade
from workflows.models import Run, StepRun, Workflow, WorkflowVersion

EXPORT_FORMAT = "trading-workflow"
# 2: nodes carry their step type's `version`; 1 (before step types had versions): a node without one is v1.
EXPORT_FORMAT_VERSION = 2
EXPORT_FORMAT_VERSIONS = (1, 2)


def workflows_visible(*, user) -> QuerySet[Workflow]:
    qs = (
        Workflow.objects.select_related("owner")
        .annotate(version_count=Count("versions", distinct=True), latest_number=Max("versions__number"))
        .order_by("-updated_at", "-id")
    )
    return qs if user.is_staff else qs.filter(owner=user)


def runs_visible(*, user) -> QuerySet[Run]:
    qs = Run.objects.select_related("workflow", "version", "created_by")
    return qs if user.is_staff else qs.filter(workflow__owner=user)


def run_steps(*, run: Run) -> QuerySet[StepRun]:
    return run.steps.order_by("id")


def version_latest(*, workflow: Workflow) -> WorkflowVersion | None:
    return workflow.versions.order_by("-number").first()


def workflow_export(*, workflow: Workflow, version: WorkflowVersion | None = None) -> dict:
    version = version or version_latest(workflow=workflow)
    return {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_FORMAT_VERSION,
        "name": workflow.name,
        "description": workflow.description,
        "version": version.number if version else None,
        # Upgraded: the export carries each node's current version, so an import reads it right.
        "graph": graph_upgrade(version.graph)[0] if version else None,
    }
