"""Django admin for workflows, versions (read-only), runs, step runs, templates and approvals."""

import json

from django import forms
from django.contrib import admin
from django.db.models import Count
from django.utils.html import format_html

from workflows.errors import GraphInvalid
from workflows.graph import graph_check, graph_upgrade
from workflows.models import Approval, Run, StepRun, Template, Workflow, WorkflowVersion


def _pretty_json(value) -> str:
    return format_html('<pre style="margin:0;white-space:pre-wrap">{}</pre>', json.dumps(value, indent=2, default=str))


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class VersionInline(ReadOnlyInline):
    model = WorkflowVersion
    fields = ("number", "message", "author", "restored_from", "created_at")
    readonly_fields = fields
    ordering = ("-number",)


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "versions_count", "updated_at")
    list_filter = ("owner",)
    search_fields = ("name", "owner__username")
    list_select_related = ("owner",)
    readonly_fields = ("created_at", "updated_at")
    inlines = (VersionInline,)

    def has_add_permission(self, request) -> bool:
        # A workflow needs a valid version 1, written by services.workflow_create (pages, API).
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_versions_count=Count("versions", distinct=True))

    @admin.display(description="versions", ordering="_versions_count")
    def versions_count(self, obj: Workflow) -> int:
        return obj._versions_count

    def get_deleted_objects(self, objs, request):
        # Versions cannot be deleted one by one (they are history), but deleting a whole
        # workflow takes its history with it; don't let that rule block the workflow's deletion.
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        perms_needed.discard(WorkflowVersion._meta.verbose_name)
        return to_delete, model_count, perms_needed, protected


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(admin.ModelAdmin):
    """Versions are immutable (DESIGN §3): viewable, never added, changed or deleted here."""

    list_display = ("workflow", "number", "message", "author", "created_at")
    list_select_related = ("workflow", "author")
    search_fields = ("workflow__name", "message", "author__username")
    fields = ("workflow", "number", "message", "author", "restored_from", "created_at", "graph_pretty")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="graph")
    def graph_pretty(self, obj: WorkflowVersion) -> str:
        return _pretty_json(obj.graph)


class StepRunInline(ReadOnlyInline):
    model = StepRun
    fields = ("node_id", "step_type", "status", "attempt", "started_at", "finished_at", "error")
    readonly_fields = fields
    ordering = ("id",)


class EngineStateAdmin(admin.ModelAdmin):
    """Run state changes only through the engine (start, cancel, rerun): its compare-and-set
    updates rely on no one else writing statuses. The admin views and deletes."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Run)
class RunAdmin(EngineStateAdmin):
    list_display = ("id", "workflow", "symbol", "status", "trigger", "created_at", "finished_at")
    list_filter = ("status", "trigger", "created_at")
    search_fields = ("symbol", "workflow__name")
    list_select_related = ("workflow",)
    date_hierarchy = "created_at"
    inlines = (StepRunInline,)
    exclude = ("params", "overrides")
    readonly_fields = ("params_pretty", "overrides_pretty")

    @admin.display(description="params")
    def params_pretty(self, obj: Run) -> str:
        return _pretty_json(obj.params)

    @admin.display(description="overrides")
    def overrides_pretty(self, obj: Run) -> str:
        return _pretty_json(obj.overrides)


@admin.register(StepRun)
class StepRunAdmin(EngineStateAdmin):
    list_display = ("run", "node_id", "step_type", "status", "attempt")
    list_filter = ("status", "step_type")
    search_fields = ("node_id",)
    list_select_related = ("run__workflow",)
    raw_id_fields = ("run", "reused_from")


class TemplateForm(forms.ModelForm):
    class Meta:
        model = Template
        fields = ("name", "slug", "description", "position", "graph")

    def clean_graph(self):
        # Stored as services.template_upsert stores it: each node's version written.
        graph = graph_upgrade(self.cleaned_data["graph"], arriving=True)[0]
        try:
            graph_check(graph)
        except GraphInvalid as exc:
            raise forms.ValidationError([e["message"] for e in exc.errors] or [exc.message]) from exc
        return graph


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    form = TemplateForm
    list_display = ("name", "slug", "position")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    ordering = ("position", "name")


@admin.register(Approval)
class ApprovalAdmin(EngineStateAdmin):
    """Approvals are decided on the Approvals page or through the API, which resume the run."""

    list_display = ("id", "run", "status", "quantity", "approved_quantity", "decided_by", "requested_at")
    list_display += ("expires_at", "decided_at")
    list_filter = ("status", "requested_at")
    search_fields = ("run__symbol", "run__workflow__name", "decided_by__username", "comment")
    list_select_related = ("run__workflow", "decided_by")
    raw_id_fields = ("run", "step_run")
    readonly_fields = ("summary_pretty",)
    exclude = ("summary",)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="summary")
    def summary_pretty(self, obj: Approval) -> str:
        return _pretty_json(obj.summary)
