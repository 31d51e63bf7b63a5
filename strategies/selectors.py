"""Reads for prompts and AI records."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import OuterRef, QuerySet, Subquery, Sum

from strategies.models import AiRecord, PromptTemplate


def prompt_get(*, key: str, version: int | None = None) -> PromptTemplate | None:
    """That version of the prompt, or its latest when `version` is None."""
    versions = PromptTemplate.objects.filter(key=key)
    if version is not None:
        return versions.filter(version=version).first()
    return versions.order_by("-version").first()


def prompts_latest() -> QuerySet[PromptTemplate]:
    """The latest version of every prompt, by key."""
    newest = PromptTemplate.objects.filter(key=OuterRef("key")).order_by("-version").values("id")[:1]
    return PromptTemplate.objects.filter(id=Subquery(newest)).order_by("key")


def ai_spent(*, run_id: int) -> tuple[int, Decimal]:
    """Tokens and USD the run's AI steps have used so far."""
    totals = AiRecord.objects.filter(run_id=run_id).aggregate(
        prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), cost=Sum("cost_usd")
    )
    return (totals["prompt"] or 0) + (totals["completion"] or 0), totals["cost"] or Decimal(0)


def ai_records_of_step(*, step_run_id: int) -> QuerySet[AiRecord]:
    return AiRecord.objects.filter(step_run_id=step_run_id).select_related("prompt").prefetch_related("messages")
