"""The engine's rows: workflows, immutable versions, runs, step runs, batches, templates, approvals, notifications."""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models


class Workflow(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workflows")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # What one run may spend on AI models; a run that would go over stops with an error, no order.
    ai_token_budget = models.PositiveIntegerField(
        default=100_000, help_text="Most model tokens (prompt + answer) one run may use"
    )
    ai_cost_budget_usd = models.DecimalField(
        max_digits=10,
        decimal_places=4,
        default=1,
        validators=[MinValueValidator(0)],
        help_text="Most USD one run may spend on model calls",
    )
    # Safety rule 1: live orders need this AND the global switch AND TRADING_MODE=live.
    live_trading = models.BooleanField(
        default=False,
        help_text="Let this workflow's orders go to a live account (also needs the global trading switch and "
        "TRADING_MODE=live). Off: paper only",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.name


class ImmutableQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError(self.model.immutable_error)


class WriteOnce(models.Model):
    """A row written once and never changed (versions of workflows and prompts): editing saves a new row.

    Integrity, not business logic: both the queryset's update() and save() of an existing row refuse."""

    immutable_error = "These rows are immutable; save a new version instead"

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError(self.immutable_error)
        super().save(*args, **kwargs)


class WorkflowVersion(WriteOnce):
    """One saved state of a workflow's graph. Never changed once written (DESIGN §3)."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    graph = models.JSONField()
    message = models.CharField(max_length=500, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    restored_from = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    immutable_error = "Workflow versions are immutable; save a new version instead"

    class Meta:
        ordering = ["workflow", "-number"]
        constraints = [models.UniqueConstraint(fields=["workflow", "number"], name="unique_version_number")]

    def __str__(self) -> str:
        return f"{self.workflow} v{self.number}"


class RunStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


RUN_FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class Trigger(models.TextChoices):
    MANUAL = "manual"
    API = "api"
    SCHEDULE = "schedule"
    RERUN = "rerun"


class Batch(models.Model):
    """One version run over several symbols at once (DESIGN §5 fan-out): a strategy run, say."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="batches")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.CASCADE, related_name="batches")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    label = models.CharField(max_length=200, blank=True, help_text="What started it, e.g. the strategy's name")
    symbols = models.JSONField(default=list)
    overrides = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(
        max_length=200, blank=True, help_text="The Idempotency-Key of the request that started it; unique per user"
    )
    idempotency_fingerprint = models.CharField(
        max_length=64, blank=True, help_text="Hash of that request, so the same key with another body is refused"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "batches"
        # The claim: of two requests with the same key, only one can write its batch.
        constraints = [
            models.UniqueConstraint(
                fields=["created_by", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="unique_batch_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"Batch {self.pk} {self.label or self.workflow} ({len(self.symbols)} symbols)"


class Run(models.Model):
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="runs")
    batch = models.ForeignKey(Batch, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.CASCADE, related_name="runs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    symbol = models.CharField(max_length=32)
    overrides = models.JSONField(default=dict, blank=True, help_text="Parameters the caller set over the workflow's")
    params = models.JSONField(default=dict, help_text="Every {{name}} value of this run, resolved")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING, db_index=True)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    rerun_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reruns")
    origin = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,  # only deleted with its whole workflow, reruns included
        null=True,
        blank=True,
        related_name="+",
        help_text="First run of a rerun chain; its id keys side effects, so no rerun repeats one",
    )
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    idempotency_key = models.CharField(
        max_length=200, blank=True, help_text="The Idempotency-Key of the request that started it; unique per user"
    )
    idempotency_fingerprint = models.CharField(
        max_length=64, blank=True, help_text="Hash of that request, so the same key with another body is refused"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # The claim: of two requests with the same key, only one can write its run.
        constraints = [
            models.UniqueConstraint(
                fields=["created_by", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="unique_run_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} {self.workflow} {self.symbol}"

    @property
    def finished(self) -> bool:
        return self.status in RUN_FINISHED

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class StepStatus(models.TextChoices):
    PENDING = "pending"  # waiting for upstream steps
    QUEUED = "queued"  # sent to a worker
    RUNNING = "running"
    WAITING = "waiting"  # parked until an outside event (approval)
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # not run because the run failed elsewhere


STEP_FINISHED = (StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.CANCELLED, StepStatus.SKIPPED)


class StepRun(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    node_id = models.CharField(max_length=64)
    step_type = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING, db_index=True)
    attempt = models.PositiveIntegerField(default=0, help_text="Executions started so far")
    inputs = models.JSONField(default=dict)
    params = models.JSONField(default=dict, help_text="Parameters after {{name}} substitution")
    outputs = models.JSONField(default=dict)
    error = models.TextField(blank=True)
    logs = models.JSONField(default=list)
    reused_from = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Outputs copied by a rerun",
    )
    queued_at = models.DateTimeField(null=True, blank=True, help_text="When the step was (or is) due to a worker")
    dispatch_failed = models.BooleanField(
        default=False, help_text="Its message could not be sent (broker down); the sweeper sends it at its next pass"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    task_id = models.CharField(
        max_length=64, blank=True, help_text="The Celery message whose execution claimed the step (empty: in-process)"
    )
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the execution running the step"
    )

    class Meta:
        ordering = ["run", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "node_id"], name="unique_step_per_node")]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.node_id}"

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class Template(models.Model):
    """A gallery workflow a user can start from (loaded from workflows/gallery/*.json)."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField()
    graph = models.JSONField()
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class ApprovalStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"  # nobody decided in time: counts as rejected


class Approval(models.Model):
    """A human decision a `flow.approval` step waits for; the run is WAITING meanwhile."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="approvals")
    step_run = models.OneToOneField(StepRun, on_delete=models.CASCADE, related_name="approval")
    status = models.CharField(
        max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING, db_index=True
    )
    message = models.CharField(max_length=500, blank=True, help_text="What the workflow asks the approver")
    summary = models.JSONField(default=dict, help_text="What is being approved: symbol, side, prices, R, quantity")
    quantity = models.PositiveIntegerField(null=True, blank=True, help_text="Quantity proposed by the workflow")
    approved_quantity = models.PositiveIntegerField(null=True, blank=True, help_text="Quantity the approver set")
    requested_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"Approval {self.pk} for run {self.run_id} ({self.status})"


class NotificationStatus(models.TextChoices):
    SENDING = "sending"  # claimed; a worker is sending it (or died doing so)
    SENT = "sent"
    FAILED = "failed"


class NotificationLog(models.Model):
    """One notification, under a key (the step's idempotency key, or the event's), so a redelivery
    never sends it twice. Holds the channel's name only, never its URL or token (safety rule 6)."""

    key = models.CharField(max_length=200, unique=True)
    channel = models.CharField(max_length=64, help_text="Name of a channel of NOTIFY_CHANNELS")
    status = models.CharField(max_length=16, choices=NotificationStatus.choices, db_index=True)
    error = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True, help_text="What was sent: text, image, channel kind")
    attempts = models.PositiveIntegerField(default=0)
    run = models.ForeignKey(Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.key} to {self.channel} ({self.status})"
