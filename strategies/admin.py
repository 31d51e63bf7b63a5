import json

from django import forms
from django.contrib import admin
from django.utils.html import format_html

from strategies.ai.prompts import PLACEHOLDERS
from strategies.models import AgentMessage, AiRecord, PromptTemplate
from strategies.services import prompt_check, prompt_save
from workflows.errors import ApplicationError


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
