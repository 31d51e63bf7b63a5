"""Serializers of the engine's API; graphs are described by the pydantic models of workflows/graph.py."""

from datetime import date

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from workflows.api import schema  # noqa: F401 - registers the OpenAPI extension for pydantic models
from workflows.approvals.services import MAX_QUANTITY
from workflows.graph import GraphErrorSpec, GraphSpec, graph_upgrade
from workflows.models import (
    Approval,
    ApprovalStatus,
    Run,
    RunStatus,
    StepRun,
    Template,
    Trigger,
    Workflow,
    WorkflowVersion,
)
from workflows.selectors import EXPORT_FORMAT, EXPORT_FORMAT_VERSIONS, version_latest


@extend_schema_field(GraphSpec)
class GraphField(serializers.JSONField):
    """A workflow graph: any JSON here (services validate it fully), described in the API
    schema by the pydantic models of workflows/graph.py."""


@extend_schema_field(GraphErrorSpec)
class GraphErrorField(serializers.JSONField):
    pass


class GraphValidationSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    errors = serializers.ListField(child=GraphErrorField(), help_text="Empty when valid")


class GraphInvalidSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What is wrong; for a graph, its first problem and how many more")
    errors = serializers.ListField(child=GraphErrorField(), required=False, help_text="Every problem of the graph")


class WorkflowSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    latest_version = serializers.SerializerMethodField()
    graph = GraphField(write_only=True, help_text="The first version's graph (create only)")
    message = serializers.CharField(write_only=True, required=False, default="Created", max_length=500)

    class Meta:
        model = Workflow
        fields = [
            "id",
            "name",
            "description",
            "ai_token_budget",
            "ai_cost_budget_usd",
            "live_trading",
            "owner",
            "latest_version",
            "graph",
            "message",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "owner", "created_at", "updated_at"]

    def get_latest_version(self, workflow: Workflow) -> int | None:
        if hasattr(workflow, "latest_number"):  # annotated by selectors.workflows_visible
            return workflow.latest_number
        version = version_latest(workflow=workflow)
        return version.number if version else None


class WorkflowUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Workflow
        fields = ["name", "description", "ai_token_budget", "ai_cost_budget_usd", "live_trading"]


class VersionUpgradeSerializer(serializers.Serializer):
    node = serializers.CharField()
    type = serializers.CharField()
    from_version = serializers.IntegerField()
    to_version = serializers.IntegerField()


class VersionSerializer(serializers.ModelSerializer):
    """A version with its graph upgraded to the step types' current versions (the stored row is
    never changed); `upgrades` lists what was upgraded, empty when nothing was."""

    graph = GraphField(read_only=True)
    author = serializers.CharField(source="author.username", read_only=True, default=None)
    restored_from = serializers.IntegerField(source="restored_from.number", read_only=True, default=None)
    upgrades = serializers.SerializerMethodField()

    class Meta:
        model = WorkflowVersion
        fields = ["number", "graph", "message", "author", "restored_from", "created_at", "upgrades"]
        read_only_fields = fields

    def to_representation(self, version):
        self._upgraded = graph_upgrade(version.graph)
        data = super().to_representation(version)
        data["graph"] = self._upgraded[0]
        return data

    @extend_schema_field(VersionUpgradeSerializer(many=True))
    def get_upgrades(self, version) -> list[dict]:
        return self._upgraded[1]


class VersionSaveSerializer(serializers.Serializer):
    graph = GraphField()
    message = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class CloneSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=200)


class GraphSerializer(serializers.Serializer):
    graph = GraphField()


# The two below only describe the export document in the API schema: selectors.workflow_export
# makes it, services.workflow_import checks it.
class WorkflowExportSerializer(serializers.Serializer):
    """A workflow version as a JSON document; import takes it back."""

    format = serializers.ChoiceField(choices=[EXPORT_FORMAT])
    format_version = serializers.ChoiceField(choices=list(EXPORT_FORMAT_VERSIONS))
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    version = serializers.IntegerField(allow_null=True, help_text="The exported version's number")
    graph = GraphField(allow_null=True, help_text="null when the workflow has no version")


class WorkflowImportSerializer(WorkflowExportSerializer):
    """A document as export gives it."""

    description = serializers.CharField(required=False, allow_blank=True)
    version = serializers.IntegerField(required=False, allow_null=True, help_text="Ignored")
    graph = GraphField()


class StepRunSerializer(serializers.ModelSerializer):
    duration_s = serializers.FloatField(read_only=True)
    reused_from_run = serializers.IntegerField(source="reused_from.run_id", read_only=True, default=None)

    class Meta:
        model = StepRun
        fields = [
            "id",
            "node_id",
            "step_type",
            "status",
            "attempt",
            "params",
            "inputs",
            "outputs",
            "error",
            "logs",
            "reused_from_run",
            "queued_at",
            "started_at",
            "finished_at",
            "duration_s",
        ]
        read_only_fields = fields


class RunSerializer(serializers.ModelSerializer):
    workflow_name = serializers.CharField(source="workflow.name", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    duration_s = serializers.FloatField(read_only=True)

    class Meta:
        model = Run
        fields = [
            "id",
            "workflow",
            "workflow_name",
            "version",
            "symbol",
            "status",
            "trigger",
            "rerun_of",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "duration_s",
        ]
        read_only_fields = fields


class RunDetailSerializer(RunSerializer):
    steps = StepRunSerializer(many=True, read_only=True)

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "overrides", "params", "cancel_requested", "steps"]
        read_only_fields = fields


class RunQueuedSerializer(RunDetailSerializer):
    """A run that was saved while its first steps could not be sent (the task broker is down)."""

    message = serializers.CharField(help_text="Why it has not started yet, and that it will")

    class Meta(RunDetailSerializer.Meta):
        fields = [*RunDetailSerializer.Meta.fields, "message"]
        read_only_fields = fields


# Ids and numbers from users, bounded so a huge value is a 400, never a database overflow.
MAX_ID = 2**63 - 1


class RunStartSerializer(serializers.Serializer):
    workflow = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    symbol = serializers.CharField(max_length=32)
    version = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="Version number; latest if omitted"
    )
    overrides = serializers.DictField(required=False, default=dict, help_text="Values for {{name}} over the defaults")


class RerunSerializer(serializers.Serializer):
    start = serializers.ChoiceField(choices=["failed", "beginning"], default="failed")
    version = serializers.ChoiceField(choices=["pinned", "latest"], default="pinned")


class RunFilterSerializer(serializers.Serializer):
    workflow = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    status = serializers.ChoiceField(choices=RunStatus.choices, required=False)
    trigger = serializers.ChoiceField(choices=Trigger.choices, required=False)
    symbol = serializers.CharField(required=False, max_length=32)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    date_from = serializers.DateField(required=False, help_text="Created on or after this day (site time zone)")
    date_to = serializers.DateField(required=False, help_text="Created on or before this day (included)")
    strategy = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="Runs of this strategy's batches"
    )

    def validate(self, data):
        for name in ("date_from", "date_to"):
            if data.get(name) and not date(1970, 1, 1) <= data[name] <= date(2999, 12, 31):
                raise serializers.ValidationError({name: "Give a date from 1970-01-01 to 2999-12-31."})
        if data.get("date_from") and data.get("date_to") and data["date_to"] < data["date_from"]:
            raise serializers.ValidationError({"date_to": "The end date is before the start date."})
        return data


class TemplateSerializer(serializers.ModelSerializer):
    graph = GraphField(read_only=True)

    class Meta:
        model = Template
        fields = ["slug", "name", "description", "graph"]
        read_only_fields = fields


class ApprovalSerializer(serializers.ModelSerializer):
    workflow = serializers.IntegerField(source="run.workflow_id", read_only=True)
    symbol = serializers.CharField(source="run.symbol", read_only=True)
    node_id = serializers.CharField(source="step_run.node_id", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, default=None)

    class Meta:
        model = Approval
        fields = [
            "id", "run", "workflow", "symbol", "node_id", "status", "message", "summary", "quantity",
            "approved_quantity", "requested_at", "expires_at", "decided_by", "decided_at", "comment",
        ]  # fmt: skip
        read_only_fields = fields


class ApprovalFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=ApprovalStatus.choices,
        required=False,
        help_text="pending: only those that can still be decided (their run still waits)",
    )


class ApprovalApproveSerializer(serializers.Serializer):
    quantity = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_QUANTITY, help_text="Another quantity than the one proposed"
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class ApprovalRejectSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
