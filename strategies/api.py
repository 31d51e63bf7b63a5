"""REST API for strategies and their schedules. CRUD through viewsets; each action one view.

Everything goes through strategies_visible (owners see theirs, staff all), so another user's
strategy is a 404. A strategy or schedule that fails validation is a 400 whose `errors` name
each field: {"detail": "...", "errors": [{"field": "symbols", "message": "..."}]}."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from strategies import services
from strategies.models import OverlapPolicy, ScheduleTick, Strategy, StrategySchedule, TickOutcome
from strategies.schedules import services as schedule_services
from strategies.selectors import schedule_ticks, strategies_visible, strategy_batches
from strategies.services import StrategyInvalid, field_error
from workflows.api.views import IDEMPOTENCY_CONFLICT, IDEMPOTENCY_KEY
from workflows.engine import BROKER_DOWN_MESSAGE, dispatch_watch
from workflows.idempotency import idempotency_of, start_once
from workflows.models import Batch, Trigger

MAX_ID = 2**63 - 1


class StrategySerializer(serializers.ModelSerializer):
    name = serializers.CharField(max_length=200, allow_blank=True)  # the service names what is missing
    owner = serializers.CharField(source="owner.username", read_only=True)
    workflow = serializers.IntegerField(source="workflow_id", min_value=1, max_value=MAX_ID)
    workflow_name = serializers.CharField(source="workflow.name", read_only=True)
    version = serializers.IntegerField(
        source="version.number",
        allow_null=True,
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text="Pinned version number; null runs the latest version at each start",
    )
    symbols = serializers.ListField(child=serializers.CharField(max_length=64, allow_blank=True), max_length=1000)
    overrides = serializers.JSONField(required=False, help_text="Parameters over the workflow's defaults")
    ai_cost_budget_usd = serializers.DecimalField(
        max_digits=10, decimal_places=4, allow_null=True, required=False, help_text="Empty: the workflow's"
    )

    class Meta:
        model = Strategy
        fields = [
            "id", "name", "description", "owner", "workflow", "workflow_name", "version", "symbols", "overrides",
            "live", "ai_cost_budget_usd", "enabled", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "owner", "workflow_name", "created_at", "updated_at"]


def _service_args(data: dict) -> dict:
    """Validated data as the services' keyword arguments (the version comes nested from its source)."""
    args = dict(data)
    if "version" in args:
        args["version_number"] = (args.pop("version") or {}).get("number")
    return args


class StrategyViewSet(viewsets.ModelViewSet):
    serializer_class = StrategySerializer
    lookup_value_converter = "int"

    def get_queryset(self):
        return strategies_visible(user=self.request.user)

    def create(self, request, *args, **kwargs):
        data = _valid(StrategySerializer, request.data)
        strategy = services.strategy_create(owner=request.user, **_service_args(data))
        return Response(StrategySerializer(strategy).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        strategy = self.get_object()
        data = _valid(StrategySerializer, request.data, partial=partial)
        strategy = services.strategy_update(strategy=strategy, **_service_args(data))
        return Response(StrategySerializer(strategy).data)

    def destroy(self, request, *args, **kwargs):
        services.strategy_delete(strategy=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


def _messages(detail) -> list[str]:
    if isinstance(detail, dict):
        return [f"item {key}: {m}" if isinstance(key, int) else m for key, v in detail.items() for m in _messages(v)]
    if isinstance(detail, list):
        return [m for item in detail for m in _messages(item)]
    return [str(detail)]


def _valid(serializer_class, data, **kwargs) -> dict:
    """Validated data; a type error (a list expected, say) is a 400 in the same shape as the services'."""
    serializer = serializer_class(data=data, **kwargs)
    if not serializer.is_valid():
        errors = serializer.errors
        fields = errors.items() if isinstance(errors, dict) else [("non_field_errors", errors)]
        raise StrategyInvalid([field_error(field, m) for field, detail in fields for m in _messages(detail)])
    return serializer.validated_data


def _strategy(request, pk: int) -> Strategy:
    return get_object_or_404(strategies_visible(user=request.user), pk=pk)


class BatchRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    symbol = serializers.CharField()
    status = serializers.CharField()
    error = serializers.CharField()


class BatchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    trigger = serializers.ChoiceField(choices=Trigger.choices)
    label = serializers.CharField()
    version = serializers.IntegerField()
    created_by = serializers.CharField(allow_null=True)
    total = serializers.IntegerField()
    finished = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField(help_text="Failed or cancelled")
    waiting = serializers.IntegerField()
    percent = serializers.IntegerField(help_text="Finished runs, in percent")
    succeeded_percent = serializers.IntegerField()
    failed_percent = serializers.IntegerField()
    state = serializers.ChoiceField(choices=["running", "succeeded", "failed"])
    runs = BatchRunSerializer(many=True)


class BatchQueuedSerializer(BatchSerializer):
    message = serializers.CharField(help_text="Why its runs have not started yet, and that they will")


class StrategyRunView(APIView):
    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: BatchSerializer,
            200: OpenApiResponse(BatchSerializer, description="The batch an earlier request with this key started"),
            202: OpenApiResponse(
                BatchQueuedSerializer,
                description="Saved and queued; the task broker is down, it starts when it is back",
            ),
            409: IDEMPOTENCY_CONFLICT,
        },
        summary="Run the strategy: one run per symbol",
    )
    def post(self, request, pk: int):
        strategy = _strategy(request, pk)
        idempotency = idempotency_of(request.headers, {"strategy": strategy.pk})
        with dispatch_watch() as watch:
            batch, replayed = start_once(
                Batch,
                user=request.user,
                idempotency=idempotency,
                start=lambda idem: (
                    services.strategy_run(
                        strategy=strategy, user=request.user, trigger=Trigger.API, idempotency=idem
                    ).batch
                ),
            )
        data = BatchSerializer(strategy_batches(strategy=strategy, limit=1, batch_id=batch.pk)[0]).data
        if replayed:
            return Response(data, status=status.HTTP_200_OK)
        if watch.failed():
            return Response({**data, "message": BROKER_DOWN_MESSAGE}, status=status.HTTP_202_ACCEPTED)
        return Response(data, status=status.HTTP_201_CREATED)


class StrategyBatchesView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("limit", int, description="How many batches, newest first (1-50, default 10)")],
        responses=BatchSerializer(many=True),
        summary="The strategy's latest batches with their progress and each run's status",
    )
    def get(self, request, pk: int):
        strategy = _strategy(request, pk)
        limit = request.query_params.get("limit", "10")
        limit = min(max(int(limit), 1), 50) if limit.isdigit() and len(limit) < 4 else 10
        return Response(BatchSerializer(strategy_batches(strategy=strategy, limit=limit), many=True).data)


# Schedules


class TickSerializer(serializers.ModelSerializer):
    outcome = serializers.ChoiceField(choices=TickOutcome.choices, read_only=True)

    class Meta:
        model = ScheduleTick
        fields = ["id", "at", "slot", "outcome", "reason", "batch"]
        read_only_fields = fields


class NextRunSerializer(serializers.Serializer):
    local = serializers.CharField(help_text="In the schedule's time zone, ISO 8601 with offset")
    utc = serializers.CharField()


class ScheduleSerializer(serializers.ModelSerializer):
    overlap = serializers.ChoiceField(choices=OverlapPolicy.choices, required=False)
    next_runs = serializers.SerializerMethodField(help_text="The next five times it will start a batch")
    ticks = serializers.SerializerMethodField(help_text="The last ten ticks, newest first")
    periodic_task = serializers.CharField(source="periodic_task.name", read_only=True, default=None)

    class Meta:
        model = StrategySchedule
        fields = [
            "id", "strategy", "cron", "timezone", "enabled", "trading_days_only", "trading_hours_only", "overlap",
            "next_runs", "ticks", "periodic_task", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "strategy", "next_runs", "ticks", "periodic_task", "created_at", "updated_at"]
        extra_kwargs = {"timezone": {"required": False}, "cron": {"max_length": 120}}

    @extend_schema_field(NextRunSerializer(many=True))
    def get_next_runs(self, schedule: StrategySchedule) -> list[dict]:
        rows = schedule_services.preview_rows(schedule_services.schedule_preview(schedule=schedule))
        return [{"local": r["local"], "utc": r["utc"]} for r in rows]

    @extend_schema_field(TickSerializer(many=True))
    def get_ticks(self, schedule: StrategySchedule) -> list[dict]:
        return TickSerializer(schedule_ticks(schedule=schedule), many=True).data


class ScheduleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """A strategy's schedules, at /api/strategies/<strategy_pk>/schedules/."""

    serializer_class = ScheduleSerializer
    pagination_class = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return StrategySchedule.objects.none()
        return _strategy(self.request, self.kwargs["strategy_pk"]).schedules.select_related("periodic_task")

    def create(self, request, *args, **kwargs):
        strategy = _strategy(request, self.kwargs["strategy_pk"])
        data = _valid(ScheduleSerializer, request.data)
        schedule = schedule_services.schedule_create(strategy=strategy, **data)
        return Response(ScheduleSerializer(schedule).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        schedule = self.get_object()
        data = _valid(ScheduleSerializer, request.data, partial=partial)
        schedule = schedule_services.schedule_update(schedule=schedule, **data)
        return Response(ScheduleSerializer(schedule).data)

    def destroy(self, request, *args, **kwargs):
        schedule_services.schedule_delete(schedule=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


def _schedule(request, strategy_pk: int, pk: int) -> StrategySchedule:
    return get_object_or_404(_strategy(request, strategy_pk).schedules, pk=pk)


class ScheduleEnableView(APIView):
    @extend_schema(request=None, responses={200: ScheduleSerializer}, summary="Turn a schedule on")
    def post(self, request, strategy_pk: int, pk: int):
        schedule = schedule_services.schedule_set_enabled(schedule=_schedule(request, strategy_pk, pk), enabled=True)
        return Response(ScheduleSerializer(schedule).data)


class ScheduleDisableView(APIView):
    @extend_schema(request=None, responses={200: ScheduleSerializer}, summary="Turn a schedule off")
    def post(self, request, strategy_pk: int, pk: int):
        schedule = schedule_services.schedule_set_enabled(schedule=_schedule(request, strategy_pk, pk), enabled=False)
        return Response(ScheduleSerializer(schedule).data)
