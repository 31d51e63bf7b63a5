"""Prompt templates (versioned data) and the record of every AI step: what was asked, what came back."""

from django.conf import settings
from django.db import models

from workflows.models import WriteOnce


class PromptKind(models.TextChoices):
    CHART = "chart", "Chart analysis"
    CONSOLIDATE = "consolidate", "Multi-timeframe consolidation"
    DECIDE = "decide", "Trading decision"


class PromptTemplate(WriteOnce):
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

    immutable_error = "Prompt versions are immutable; save a new version instead"

    class Meta:
        ordering = ["key", "-version"]
        constraints = [models.UniqueConstraint(fields=["key", "version"], name="unique_prompt_version")]

    def __str__(self) -> str:
        return f"{self.key} v{self.version}"


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


class Strategy(models.Model):
    """A workflow (a pinned version, or the latest) run over a list of symbols with its own parameters.

    Parameters resolve as DESIGN §3 says: step params, then these overrides, then the workflow's
    defaults. `live` is the per-strategy live switch (safety rule 1): a strategy's orders go to a
    live account only with it on, the global trading switch on and TRADING_MODE=live."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="strategies")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="strategies")
    version = models.ForeignKey(
        "workflows.WorkflowVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The version to run; empty runs the latest version at each start",
    )
    symbols = models.JSONField(default=list, help_text="Symbols, one run each")
    overrides = models.JSONField(default=dict, blank=True, help_text="Parameters over the workflow's defaults")
    live = models.BooleanField(default=False, help_text="Per-strategy live switch; off: paper only")
    ai_cost_budget_usd = models.DecimalField(
        max_digits=10,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Most USD one run may spend; empty: the workflow's",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name_plural = "strategies"

    def __str__(self) -> str:
        return self.name


class StrategyBatch(models.Model):
    """Which strategy a batch of runs belongs to (workflows knows batches, not strategies)."""

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="batches")
    batch = models.OneToOneField("workflows.Batch", on_delete=models.CASCADE, related_name="strategy_link")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.strategy} batch {self.batch_id}"


class OverlapPolicy(models.TextChoices):
    SKIP = "skip", "Skip a tick while a batch of the strategy is unfinished"
    ALLOW = "allow", "Start a new batch anyway"


class StrategySchedule(models.Model):
    """When a strategy runs by itself: a cron expression read in a time zone (strategies/schedules/services.py).

    It owns the django-celery-beat PeriodicTask that Celery Beat's DatabaseScheduler fires; the
    schedule services create, update and delete that row with it."""

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="schedules")
    cron = models.CharField(
        max_length=120, help_text="Five fields: minute hour day-of-month month day-of-week, e.g. 30 9 * * 1-5"
    )
    timezone = models.CharField(max_length=64, default="America/New_York", help_text="IANA time zone of the cron")
    enabled = models.BooleanField(default=True)
    trading_days_only = models.BooleanField(default=True, help_text="Skip weekends and NYSE holidays (New York date)")
    trading_hours_only = models.BooleanField(
        default=False, help_text="Skip ticks outside 09:30-16:00 New York time (13:00 on early-close days)"
    )
    overlap = models.CharField(max_length=8, choices=OverlapPolicy.choices, default=OverlapPolicy.SKIP)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="strategy_schedule",
    )
    last_slot = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Cron time of the last tick handled (one batch per tick)"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["strategy", "id"]

    def __str__(self) -> str:
        return f"{self.strategy} at {self.cron} ({self.timezone})"


class TickOutcome(models.TextChoices):
    STARTED = "started"
    SKIPPED = "skipped"
    FAILED = "failed"


class ScheduleTick(models.Model):
    """What one beat tick of a schedule did: the batch it started, or why it started none."""

    schedule = models.ForeignKey(StrategySchedule, on_delete=models.CASCADE, related_name="ticks")
    at = models.DateTimeField(help_text="When the tick was handled")
    slot = models.DateTimeField(null=True, blank=True, help_text="The cron time it belongs to")
    outcome = models.CharField(max_length=8, choices=TickOutcome.choices)
    reason = models.CharField(max_length=500, blank=True)
    batch = models.ForeignKey("workflows.Batch", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["schedule", "-at"])]

    def __str__(self) -> str:
        return f"{self.schedule_id} {self.at:%Y-%m-%d %H:%M} {self.outcome}"


class StrategyNotification(models.Model):
    """Which notification channels a strategy's runs report to, and on what. Only channel NAMES are
    stored: their URLs and tokens stay in the environment (NOTIFY_CHANNELS, safety rule 6)."""

    strategy = models.ForeignKey("strategies.Strategy", on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=64, help_text="Name of a channel configured in NOTIFY_CHANNELS")
    on_decision = models.BooleanField(
        default=True, help_text="A run decided BUY or SELL: the decision, its levels and R, and the chart"
    )
    include_hold = models.BooleanField(default=False, help_text="With on_decision: report HOLD decisions too")
    on_order = models.BooleanField(default=True, help_text="A run's order was sent, or blocked by a switch or limit")
    on_failure = models.BooleanField(default=True, help_text="A run failed")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["strategy", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["strategy", "channel"], name="one_notification_per_strategy_channel")
        ]

    def __str__(self) -> str:
        return f"{self.strategy} -> {self.channel}"
