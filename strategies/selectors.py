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


def strategy_of_run(*, run_id: int):
    """The strategy whose batch the run belongs to, or None for a run started on its own."""
    from strategies.models import Strategy
    from workflows.models import Run

    # A rerun is not in the batch; its chain's first run is, and the strategy's rules still apply.
    origin = Run.objects.filter(id=run_id).values_list("origin_id", flat=True).first()
    return Strategy.objects.filter(batches__batch__runs__id=origin or run_id).first()


# Strategies, their batches and schedules. One visibility rule: owners see theirs, staff see all.


def strategies_visible(*, user) -> QuerySet:
    from strategies.models import Strategy

    qs = Strategy.objects.select_related("owner", "workflow", "version").order_by("name", "id")
    return qs if user.is_staff else qs.filter(owner=user)


def strategy_batches(*, strategy, limit: int = 10, batch_id: int | None = None) -> list[dict]:
    """The strategy's latest batches, newest first, each with its progress and every run's status;
    with `batch_id`, that one batch (if it is the strategy's)."""
    from workflows.models import RUN_FINISHED, Run, RunStatus

    links = strategy.batches.select_related("batch__version", "batch__created_by")
    if batch_id is not None:
        links = links.filter(batch_id=batch_id)
    links = list(links[:limit])
    runs: dict[int, list[dict]] = {}
    for run in Run.objects.filter(batch_id__in=[link.batch_id for link in links]).order_by("id"):
        runs.setdefault(run.batch_id, []).append(
            {"id": run.id, "symbol": run.symbol, "status": run.status, "error": run.error[:300]}
        )
    out = []
    for link in links:
        batch, rows = link.batch, runs.get(link.batch_id, [])
        counts = {status: sum(1 for r in rows if r["status"] == status) for status in RunStatus.values}
        finished = sum(counts[s] for s in RUN_FINISHED)
        total = len(rows)
        state = "running" if finished < total else "succeeded" if counts[RunStatus.SUCCEEDED] == total else "failed"
        out.append(
            {
                "id": batch.id,
                "created_at": batch.created_at,
                "trigger": batch.trigger,
                "label": batch.label,
                "version": batch.version.number,
                "created_by": batch.created_by.get_username() if batch.created_by else None,
                "total": total,
                "finished": finished,
                "succeeded": counts[RunStatus.SUCCEEDED],
                "failed": counts[RunStatus.FAILED] + counts[RunStatus.CANCELLED],
                "waiting": counts[RunStatus.WAITING],
                "percent": round(100 * finished / total) if total else 100,
                "succeeded_percent": round(100 * counts[RunStatus.SUCCEEDED] / total) if total else 0,
                "failed_percent": round(100 * (finished - counts[RunStatus.SUCCEEDED]) / total) if total else 0,
                "state": state,
                "runs": rows,
            }
        )
    return out


def schedules_of_strategy(*, strategy) -> QuerySet:
    return strategy.schedules.select_related("periodic_task").prefetch_related("ticks")


def schedule_ticks(*, schedule, limit: int = 10) -> list:
    return list(schedule.ticks.select_related("batch")[:limit])


def schedules_upcoming(*, user, limit: int = 10, per_schedule: int = 3) -> list[dict]:
    """The next times the user's enabled schedules will start a batch, soonest first."""
    from strategies.models import StrategySchedule
    from strategies.schedules.services import schedule_preview

    schedules = StrategySchedule.objects.filter(enabled=True, strategy__enabled=True).select_related("strategy")
    if not user.is_staff:
        schedules = schedules.filter(strategy__owner=user)
    upcoming = []
    for schedule in schedules:
        for moment in schedule_preview(schedule=schedule, count=per_schedule):
            upcoming.append({"at": moment, "schedule": schedule, "strategy": schedule.strategy})
    upcoming.sort(key=lambda row: row["at"])
    return upcoming[:limit]
