"""Django admin for prompts, AI records, strategies, their schedules and notifications."""

import json

from django import forms
from django.contrib import admin
from django.utils.html import format_html, format_html_join

from strategies.ai.prompts import PLACEHOLDERS
from strategies.models import (
    AgentMessage,
    AiRecord,
    PromptTemplate,
    ScheduleTick,
    Strategy,
    StrategyBatch,
    StrategyNotification,
    StrategySchedule,
)
from strategies.schedules import services as schedule_services
from strategies.services import (
    StrategyInvalid,
    prompt_check,
    prompt_save,
    strategy_check,
    strategy_create,
    strategy_delete,
    strategy_update,
)
from workflows.errors import ApplicationError
from workflows.notify.services import channel_names


class PromptForm(forms.ModelForm):
    class Meta:
        model = PromptTemplate
        fields = ("key", "kind", "title", "system", "user", "message")

    def clean(self):
        data = super().clean()
        key = data.get("key") or (self.instance.key if self.instance.pk else "")
        kind = data.get("kind") or (self.instance.kind if self.instance.pk else "")
        try:
            prompt_check(
                key=key,
                kind=kind,
                title=data.get("title", ""),
                system=data.get("system", ""),
                user=data.get("user", ""),
            )
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from exc
        return data


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    """Saving a prompt here writes its next version; the version a run used stays as it was."""

    form = PromptForm
    list_display = ("key", "version", "kind", "title", "message", "created_by", "created_at")
    list_filter = ("kind", "key")
    search_fields = ("key", "title", "system", "user")
    readonly_fields = ("version", "placeholders", "created_by", "created_at")

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "key", "kind") if obj else self.readonly_fields

    def get_fields(self, request, obj=None):
        return ("key", "kind", "version", "title", "placeholders", "system", "user", "message", "created_by")

    @admin.display(description="placeholders you may use")
    def placeholders(self, obj: PromptTemplate | None) -> str:
        kinds = [obj.kind] if obj and obj.kind else sorted(PLACEHOLDERS)
        return "; ".join(f"{kind}: " + ", ".join("{{" + n + "}}" for n in sorted(PLACEHOLDERS[kind])) for kind in kinds)

    def save_model(self, request, obj: PromptTemplate, form, change: bool) -> None:
        saved = prompt_save(
            key=obj.key,
            kind=obj.kind,
            title=obj.title,
            system=obj.system,
            user=obj.user,
            message=obj.message or ("Edited in the admin" if change else "Created in the admin"),
            author=request.user,
        )
        # The admin's messages and redirect then name the new version.
        obj.pk, obj.version, obj._state.adding = saved.pk, saved.version, False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # decisions name the version they used


class AgentMessageInline(admin.TabularInline):
    model = AgentMessage
    fields = ("seq", "agent", "kind", "content", "prompt_tokens", "completion_tokens")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AiRecord)
class AiRecordAdmin(admin.ModelAdmin):
    """What every AI step asked and got. Records are evidence: read only."""

    list_display = (
        "id",
        "created_at",
        "symbol",
        "kind",
        "analyst",
        "action",
        "model",
        "short_error",
        "total",
        "cost_usd",
    )
    list_filter = ("kind", "analyst", "action", "model")
    search_fields = ("symbol", "node_id", "model", "error")
    list_select_related = ("prompt",)
    inlines = (AgentMessageInline,)
    fields = (
        "run", "step_run", "node_id", "symbol", "kind", "analyst", "prompt", "model", "action", "error",
        "prompt_tokens", "completion_tokens", "cost_usd", "latency_ms", "attempts", "created_at",
        "images_pretty", "result_pretty", "raw_response", "request_pretty",
    )  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="error")
    def short_error(self, obj: AiRecord) -> str:
        return obj.error[:80]

    @admin.display(description="tokens")
    def total(self, obj: AiRecord) -> int:
        return obj.total_tokens

    def _pretty(self, value) -> str:
        return format_html('<pre style="margin:0;white-space:pre-wrap">{}</pre>', json.dumps(value, indent=2))

    @admin.display(description="images sent")
    def images_pretty(self, obj: AiRecord) -> str:
        return self._pretty(obj.images)

    @admin.display(description="result")
    def result_pretty(self, obj: AiRecord) -> str:
        return self._pretty(obj.result)

    @admin.display(description="request")
    def request_pretty(self, obj: AiRecord) -> str:
        return self._pretty(obj.request)


# Strategies and schedules: saved through the services, so the checks (workflow, symbols,
# overrides against the graph) and the beat entries are the same as on the pages and the API.


def _add_errors(form: forms.ModelForm, exc: StrategyInvalid, aliases: dict[str, str] | None = None) -> None:
    for error in exc.errors:
        field = (aliases or {}).get(error["field"], error["field"])
        form.add_error(field if field in form.fields else None, error["message"])


class StrategyForm(forms.ModelForm):
    class Meta:
        model = Strategy
        fields = (
            "owner", "name", "description", "workflow", "version", "symbols", "overrides", "live",
            "ai_cost_budget_usd", "enabled",
        )  # fmt: skip

    def clean(self):
        data = super().clean()
        owner = data.get("owner") or getattr(self.instance, "owner", None)
        workflow, version = data.get("workflow"), data.get("version")
        if owner is None or workflow is None:
            return data
        try:
            strategy_check(
                owner=owner,
                name=data.get("name", ""),
                workflow_id=workflow.pk,
                version_number=version.number if version else None,
                symbols=data.get("symbols"),
                overrides=data.get("overrides") or {},
                ai_cost_budget_usd=data.get("ai_cost_budget_usd"),
            )
        except StrategyInvalid as exc:
            _add_errors(self, exc)
        return data


class ScheduleInline(admin.TabularInline):
    model = StrategySchedule
    fields = ("cron", "timezone", "enabled", "trading_days_only", "trading_hours_only", "overlap", "periodic_task")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # added on the strategy page or under Strategy schedules, which manage the beat entry


@admin.register(Strategy)
class StrategyAdmin(admin.ModelAdmin):
    form = StrategyForm
    list_display = ("name", "owner", "workflow", "version", "symbol_count", "live", "enabled", "updated_at")
    list_filter = ("live", "enabled")
    search_fields = ("name", "description", "workflow__name")
    list_select_related = ("owner", "workflow", "version")
    inlines = (ScheduleInline,)

    def get_readonly_fields(self, request, obj=None):
        return ("owner",) if obj else ()

    def get_changeform_initial_data(self, request):
        return {"owner": request.user.pk}

    @admin.display(description="symbols")
    def symbol_count(self, obj: Strategy) -> int:
        return len(obj.symbols or [])

    def save_model(self, request, obj: Strategy, form, change: bool) -> None:
        values = {
            "name": obj.name,
            "description": obj.description,
            "workflow_id": obj.workflow_id,
            "version_number": obj.version.number if obj.version_id else None,
            "symbols": obj.symbols,
            "overrides": obj.overrides or {},
            "live": obj.live,
            "ai_cost_budget_usd": obj.ai_cost_budget_usd,
            "enabled": obj.enabled,
        }
        if change:
            saved = strategy_update(strategy=Strategy.objects.get(pk=obj.pk), **values)
        else:
            saved = strategy_create(owner=obj.owner, **values)
        obj.pk, obj._state.adding = saved.pk, False

    def delete_model(self, request, obj: Strategy) -> None:
        strategy_delete(strategy=obj)

    def delete_queryset(self, request, queryset) -> None:
        for strategy in queryset:
            strategy_delete(strategy=strategy)


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = StrategySchedule
        fields = ("strategy", "cron", "timezone", "enabled", "trading_days_only", "trading_hours_only", "overlap")

    def clean(self):
        data = super().clean()
        try:
            data["cron"], data["timezone"] = schedule_services.schedule_check(
                cron=data.get("cron", ""),
                timezone=data.get("timezone", ""),
                trading_days_only=data.get("trading_days_only", False),
                trading_hours_only=data.get("trading_hours_only", False),
                overlap=data.get("overlap", ""),
            )
        except StrategyInvalid as exc:
            _add_errors(self, exc)
        return data


class TickInline(admin.TabularInline):
    model = ScheduleTick
    fields = ("at", "slot", "outcome", "reason", "batch")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-at", "-id")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("batch")


@admin.register(StrategySchedule)
class StrategyScheduleAdmin(admin.ModelAdmin):
    """Each schedule owns its django-celery-beat periodic task: edit the schedule here, not the task."""

    form = ScheduleForm
    list_display = ("strategy", "cron", "timezone", "enabled", "trading_days_only", "trading_hours_only", "overlap")
    list_display += ("next_run", "periodic_task")
    list_filter = ("enabled", "trading_days_only", "trading_hours_only", "overlap")
    search_fields = ("strategy__name", "cron")
    list_select_related = ("strategy", "periodic_task")
    readonly_fields = ("periodic_task", "last_slot", "next_runs")
    inlines = (TickInline,)
    actions = ("turn_on", "turn_off")

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "strategy") if obj else self.readonly_fields

    @admin.display(description="next run")
    def next_run(self, obj: StrategySchedule) -> str:
        rows = schedule_services.preview_rows(schedule_services.schedule_preview(schedule=obj, count=1))
        return rows[0]["local_text"] if rows else "never"

    @admin.display(description="next five runs")
    def next_runs(self, obj: StrategySchedule | None) -> str:
        if obj is None or not obj.pk:
            return "shown once saved"
        rows = schedule_services.preview_rows(schedule_services.schedule_preview(schedule=obj))
        return format_html_join(", ", "{} ({})", ((r["local_text"], r["utc_text"]) for r in rows)) or "never"

    def save_model(self, request, obj: StrategySchedule, form, change: bool) -> None:
        values = {
            "cron": obj.cron,
            "timezone": obj.timezone,
            "enabled": obj.enabled,
            "trading_days_only": obj.trading_days_only,
            "trading_hours_only": obj.trading_hours_only,
            "overlap": obj.overlap,
        }
        if change:
            saved = schedule_services.schedule_update(schedule=StrategySchedule.objects.get(pk=obj.pk), **values)
        else:
            saved = schedule_services.schedule_create(strategy=obj.strategy, **values)
        obj.pk, obj._state.adding = saved.pk, False

    def delete_model(self, request, obj: StrategySchedule) -> None:
        schedule_services.schedule_delete(schedule=obj)

    def delete_queryset(self, request, queryset) -> None:
        for schedule in queryset:
            schedule_services.schedule_delete(schedule=schedule)

    @admin.action(description="Turn the selected schedules on")
    def turn_on(self, request, queryset) -> None:
        for schedule in queryset:
            schedule_services.schedule_set_enabled(schedule=schedule, enabled=True)

    @admin.action(description="Turn the selected schedules off")
    def turn_off(self, request, queryset) -> None:
        for schedule in queryset:
            schedule_services.schedule_set_enabled(schedule=schedule, enabled=False)


@admin.register(StrategyBatch)
class StrategyBatchAdmin(admin.ModelAdmin):
    list_display = ("id", "strategy", "batch", "created_at")
    list_select_related = ("strategy", "batch")
    readonly_fields = ("strategy", "batch", "created_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# Notification channels of strategies (names only; URLs and tokens stay in the environment).


class StrategyNotificationForm(forms.ModelForm):
    class Meta:
        model = StrategyNotification
        fields = ("strategy", "channel", "on_decision", "include_hold", "on_order", "on_failure")

    def clean_channel(self) -> str:
        channel = self.cleaned_data["channel"].strip()
        known = channel_names()
        if channel not in known:
            raise forms.ValidationError(
                f'No channel "{channel}" in NOTIFY_CHANNELS; configured: {", ".join(known) or "none"}'
            )
        return channel


@admin.register(StrategyNotification)
class StrategyNotificationAdmin(admin.ModelAdmin):
    form = StrategyNotificationForm
    list_display = ("strategy", "channel", "on_decision", "include_hold", "on_order", "on_failure", "created_at")
    list_filter = ("channel", "on_decision", "on_order", "on_failure")
    search_fields = ("strategy__name", "channel")
