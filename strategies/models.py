"""Prompt templates (versioned data) and the record of every AI step: what was asked, what came back."""

from django.conf import settings
from django.db import models


class PromptKind(models.TextChoices):
    CHART = "chart", "Chart analysis"
    CONSOLIDATE = "consolidate", "Multi-timeframe consolidation"
    DECIDE = "decide", "Trading decision"


class ImmutableQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Prompt versions are immutable; save a new version instead")


class PromptTemplate(models.Model):
    """One version of a prompt. Editing saves version N+1, so a decision names the exact text it used."""

    key = models.SlugField(max_length=60, help_text="Name steps refer to, e.g. chart_daily")
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=PromptKind.choices)
    title = models.CharField(max_length=200)
    system = models.TextField(help_text="System prompt: the role, what to look for, the rules")
    user = models.TextField(help_text="User message; {{placeholders}} are filled in at run time")
    message = models.CharField(max_length=500, blank=True, help_text="What changed in this version")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        ordering = ["key", "-version"]
        constraints = [models.UniqueConstraint(fields=["key", "version"], name="unique_prompt_version")]

    def __str__(self) -> str:
        return f"{self.key} v{self.version}"

    def save(self, *args, **kwargs):
        # Integrity, not business logic: a version row is written once.
        if not self._state.adding:
            raise TypeError("Prompt versions are immutable; save a new version instead")
        super().save(*args, **kwargs)


class AiKind(models.TextChoices):
    ANALYSIS = "analysis", "Chart analysis"
    CONSOLIDATION = "consolidation", "Consolidation"
    DECISION = "decision", "Decision"
    TEAM = "team", "Agent team decision"


class Analyst(models.TextChoices):
    MODEL = "model", "AI model"
    OFFLINE = "offline", "Offline rule-based analyst (no AI model)"
    TEAM = "team", "AutoGen agent team"


class AiRecord(models.Model):
    """One AI step execution: the prompt version, images and text sent, the raw answer, the
    parsed result or the error, and what it cost. A failed or unparseable answer is HOLD."""

    run = models.ForeignKey("workflows.Run", on_delete=models.CASCADE, related_name="ai_records")
    step_run = models.ForeignKey("workflows.StepRun", on_delete=models.CASCADE, related_name="ai_records")
    node_id = models.CharField(max_length=64)
    symbol = models.CharField(max_length=32)
    kind = models.CharField(max_length=16, choices=AiKind.choices)
    analyst = models.CharField(max_length=16, choices=Analyst.choices)
    prompt = models.ForeignKey(PromptTemplate, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    model = models.CharField(max_length=200, blank=True)
    images = models.JSONField(default=list, blank=True, help_text="Artifact key, size and SHA-256 of each image sent")
    request = models.JSONField(default=dict, blank=True, help_text="The messages sent, images as placeholders")
    raw_response = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True, help_text="The validated analysis or decision")
    action = models.CharField(max_length=8, blank=True, help_text="BUY, SELL or HOLD for decisions")
    error = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "kind"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.symbol} ({self.node_id}, run {self.run_id})"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class AgentMessage(models.Model):
    """One message of an agent team's conversation, in order."""

    record = models.ForeignKey(AiRecord, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField()
    agent = models.CharField(max_length=100)
    kind = models.CharField(max_length=60)
    content = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["record", "seq"]
        constraints = [models.UniqueConstraint(fields=["record", "seq"], name="unique_agent_message_seq")]

    def __str__(self) -> str:
        return f"{self.agent} #{self.seq}"
