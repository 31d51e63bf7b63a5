"""REST API. CRUD through viewsets; each action (start, cancel, rerun, restore, ...) one view.

Every query goes through the selectors, so another user's objects are 404, never 403."""

import re

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from workflows import engine, selectors, services
from workflows.api import serializers as s
from workflows.approvals import services as approvals
from workflows.errors import ApplicationError
from workflows.graph import graph_upgrade, validate_graph
from workflows.idempotency import HEADER, idempotency_of, start_once
from workflows.models import ApprovalStatus, Run, Template
from workflows.registry import registry
from workflows.run_filters import runs_filter

# The 400 answer of a workflows.errors.ApplicationError, such as an invalid graph (GraphInvalid).
GRAPH_INVALID = OpenApiResponse(
    s.GraphInvalidSerializer,
    description="Refused: `detail` says why; for an invalid graph `errors` lists every problem. "
    "(A missing or malformed request field is {field: [messages]} instead.)",
)


# The optional Idempotency-Key of the start endpoints (workflows/idempotency.py).
IDEMPOTENCY_KEY = OpenApiParameter(
    HEADER,
    str,
    location=OpenApiParameter.HEADER,
    required=False,
    description="1-200 printable ASCII characters, your own per request (a UUID, say). A retry with the same "
    "key answers 200 with what the first request started instead of starting it again; the same key with "
    "another request is a 409. Keys are per user.",
)
IDEMPOTENCY_CONFLICT = OpenApiResponse(
    s.GraphInvalidSerializer, description="The Idempotency-Key was already used for another request"
)


class StepTypeListView(APIView):
    @extend_schema(responses={200: dict}, summary="Every registered step type, with its JSON schema and ports")
    def get(self, request):
        return Response([t.describe() for t in registry.all()])


class GraphValidateView(APIView):
    @extend_schema(
        request=s.GraphSerializer,
        responses={200: s.GraphValidationSerializer},
        summary="Check a graph without saving it",
    )
    def post(self, request):
        data = _valid(s.GraphSerializer, request.data)
        _, errors = validate_graph(graph_upgrade(data["graph"], arriving=True)[0])
        return Response({"valid": not errors, "errors": errors})


def _valid(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class WorkflowViewSet(viewsets.ModelViewSet):
    serializer_class = s.WorkflowSerializer
    lookup_value_converter = "int"

    def get_queryset(self):
        return selectors.workflows_visible(user=self.request.user)

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return s.WorkflowUpdateSerializer
        return s.WorkflowSerializer

    @extend_schema(responses={201: s.WorkflowSerializer, 400: GRAPH_INVALID})
    def create(self, request, *args, **kwargs):
        data = _valid(s.WorkflowSerializer, request.data)
        workflow = services.workflow_create(owner=request.user, **data)
        return Response(s.WorkflowSerializer(workflow).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        data = _valid(s.WorkflowUpdateSerializer, request.data, partial=partial)
        workflow = services.workflow_update(workflow=self.get_object(), **data)
        return Response(s.WorkflowSerializer(workflow).data)


def _workflow(request, pk):
    return get_object_or_404(selectors.workflows_visible(user=request.user), pk=pk)


class VersionListView(APIView):
    @extend_schema(responses=s.VersionSerializer(many=True), summary="Versions of a workflow, newest first")
    def get(self, request, pk):
        versions = _workflow(request, pk).versions.select_related("author", "restored_from").order_by("-number")
        return Response(s.VersionSerializer(versions, many=True).data)

    @extend_schema(
        request=s.VersionSaveSerializer,
        responses={201: s.VersionSerializer, 400: GRAPH_INVALID},
        summary="Save a new version",
    )
    def post(self, request, pk):
        data = _valid(s.VersionSaveSerializer, request.data)
        version = services.version_save(workflow=_workflow(request, pk), author=request.user, **data)
        return Response(s.VersionSerializer(version).data, status=status.HTTP_201_CREATED)


class VersionDetailView(APIView):
    @extend_schema(responses=s.VersionSerializer)
    def get(self, request, pk, number):
        version = get_object_or_404(_workflow(request, pk).versions, number=number)
        return Response(s.VersionSerializer(version).data)


class VersionRestoreView(APIView):
    @extend_schema(
        request=None,
        responses={201: s.VersionSerializer, 400: GRAPH_INVALID},
        summary="Restore a version as a new version",
    )
    def post(self, request, pk, number):
        version = get_object_or_404(_workflow(request, pk).versions, number=number)
        restored = services.version_restore(version=version, author=request.user)
        return Response(s.VersionSerializer(restored).data, status=status.HTTP_201_CREATED)


class WorkflowCloneView(APIView):
    @extend_schema(
        request=s.CloneSerializer, responses={201: s.WorkflowSerializer, 400: GRAPH_INVALID}, summary="Copy a workflow"
    )
    def post(self, request, pk):
        data = _valid(s.CloneSerializer, request.data)
        clone = services.workflow_clone(workflow=_workflow(request, pk), owner=request.user, name=data.get("name"))
        return Response(s.WorkflowSerializer(clone).data, status=status.HTTP_201_CREATED)


class WorkflowExportView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("version", int, description="Version number; latest if omitted")],
        responses={200: s.WorkflowExportSerializer},
        summary="Export a workflow version as JSON",
    )
    def get(self, request, pk):
        workflow = _workflow(request, pk)
        version = None
        if request.query_params.get("version"):
            version = get_object_or_404(workflow.versions, number=_int(request.query_params["version"], "version"))
        response = Response(selectors.workflow_export(workflow=workflow, version=version))
        response["Content-Disposition"] = f'attachment; filename="workflow-{workflow.pk}.json"'
        return response


class WorkflowImportView(APIView):
    @extend_schema(
        request=s.WorkflowImportSerializer,
        responses={201: s.WorkflowSerializer, 400: GRAPH_INVALID},
        summary="Create a workflow from an export",
    )
    def post(self, request):
        workflow = services.workflow_import(owner=request.user, document=request.data)
        return Response(s.WorkflowSerializer(workflow).data, status=status.HTTP_201_CREATED)


def _int(value: str, name: str) -> int:
    if not re.fullmatch(r"[0-9]{1,18}", value):
        raise ApplicationError(f'"{name}" must be a whole number, not "{value}"')
    return int(value)


class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    lookup_value_converter = "int"

    def get_serializer_class(self):
        if self.action == "retrieve":
            return s.RunDetailSerializer
        if self.action == "create":
            return s.RunStartSerializer
        return s.RunSerializer

    def get_queryset(self):
        qs = selectors.runs_visible(user=self.request.user)
        if self.action == "retrieve":
            return qs.prefetch_related("steps__reused_from")
        if self.action != "list":
            return qs
        return runs_filter(runs=qs, filters=_valid(s.RunFilterSerializer, self.request.query_params))

    @extend_schema(parameters=[s.RunFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=s.RunStartSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: s.RunDetailSerializer,
            200: OpenApiResponse(s.RunDetailSerializer, description="The run an earlier request with this key started"),
            202: OpenApiResponse(
                s.RunQueuedSerializer,
                description="Saved and queued; the task broker is down, it starts when it is back",
            ),
            400: GRAPH_INVALID,
            409: IDEMPOTENCY_CONFLICT,
        },
        summary="Start a run",
    )
    def create(self, request, *args, **kwargs):
        data = _valid(s.RunStartSerializer, request.data)
        idempotency = idempotency_of(request.headers, dict(data))
        workflow = _workflow(request, data["workflow"])
        version = get_object_or_404(workflow.versions, number=data["version"]) if "version" in data else None
        with engine.dispatch_watch() as watch:
            run, replayed = start_once(
                Run,
                user=request.user,
                idempotency=idempotency,
                start=lambda idem: engine.run_start(
                    workflow=workflow,
                    user=request.user,
                    symbol=data["symbol"],
                    version=version,
                    overrides=data["overrides"],
                    trigger="api",
                    idempotency=idem,
                ),
            )
        if replayed:
            return Response(s.RunDetailSerializer(run).data, status=status.HTTP_200_OK)
        if watch.failed(run.pk):
            body = {**s.RunDetailSerializer(run).data, "message": engine.BROKER_DOWN_MESSAGE}
            return Response(body, status=status.HTTP_202_ACCEPTED)
        return Response(s.RunDetailSerializer(run).data, status=status.HTTP_201_CREATED)


def _run(request, pk):
    return get_object_or_404(selectors.runs_visible(user=request.user), pk=pk)


class RunCancelView(APIView):
    @extend_schema(request=None, responses={200: s.RunDetailSerializer}, summary="Cancel a run")
    def post(self, request, pk):
        run = engine.run_cancel(run=_run(request, pk))
        return Response(s.RunDetailSerializer(run).data)


class RunRerunView(APIView):
    @extend_schema(request=s.RerunSerializer, responses={201: s.RunDetailSerializer}, summary="Rerun a finished run")
    def post(self, request, pk):
        data = _valid(s.RerunSerializer, request.data)
        new = engine.run_rerun(
            run=_run(request, pk),
            user=request.user,
            from_failed=data["start"] == "failed",
            latest=data["version"] == "latest",
        )
        return Response(s.RunDetailSerializer(new).data, status=status.HTTP_201_CREATED)


class TemplateListView(APIView):
    @extend_schema(responses=s.TemplateSerializer(many=True), summary="The template gallery")
    def get(self, request):
        return Response(s.TemplateSerializer(Template.objects.all(), many=True).data)


class TemplateUseView(APIView):
    @extend_schema(
        request=s.CloneSerializer,
        responses={201: s.WorkflowSerializer, 400: GRAPH_INVALID},
        summary="New workflow from a template",
    )
    def post(self, request, slug):
        data = _valid(s.CloneSerializer, request.data)
        template = get_object_or_404(Template, slug=slug)
        workflow = services.template_use(template=template, owner=request.user, name=data.get("name"))
        return Response(s.WorkflowSerializer(workflow).data, status=status.HTTP_201_CREATED)


class ApprovalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.ApprovalSerializer
    lookup_value_converter = "int"

    def get_queryset(self):
        qs = approvals.approvals_visible(user=self.request.user)
        if self.action != "list":
            return qs
        status_ = _valid(s.ApprovalFilterSerializer, self.request.query_params).get("status")
        if status_ == ApprovalStatus.PENDING:
            return approvals.approvals_pending(user=self.request.user).order_by("expires_at", "id")
        return qs.filter(status=status_) if status_ else qs

    @extend_schema(parameters=[s.ApprovalFilterSerializer], summary="Approvals of your runs, newest first")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


def _approval(request, pk):
    return get_object_or_404(approvals.approvals_visible(user=request.user), pk=pk)


class ApprovalApproveView(APIView):
    @extend_schema(
        operation_id="approvals_approve",
        request=s.ApprovalApproveSerializer,
        responses={200: s.ApprovalSerializer},
        summary="Approve, optionally with another quantity; the run goes on",
    )
    def post(self, request, pk):
        approval = _approval(request, pk)
        data = _valid(s.ApprovalApproveSerializer, request.data)
        decided = approvals.approval_decide(
            approval=approval, user=request.user, approve=True, quantity=data.get("quantity"), comment=data["comment"]
        )
        return Response(s.ApprovalSerializer(_approval(request, decided.pk)).data)


class ApprovalRejectView(APIView):
    @extend_schema(
        operation_id="approvals_reject",
        request=s.ApprovalRejectSerializer,
        responses={200: s.ApprovalSerializer},
        summary="Reject; the run goes on and its order step sends nothing",
    )
    def post(self, request, pk):
        approval = _approval(request, pk)
        data = _valid(s.ApprovalRejectSerializer, request.data)
        decided = approvals.approval_decide(
            approval=approval, user=request.user, approve=False, comment=data["comment"]
        )
        return Response(s.ApprovalSerializer(_approval(request, decided.pk)).data)
