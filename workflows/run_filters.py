"""The filters of the runs list, one set for the page (`/runs/`) and the API (`GET /api/runs/`).

Values are validated by `RunFilterSerializer` (workflows/api/serializers.py): an unknown status
or a date that is not a date is a clear error on both, never ignored and never a 500.
"""

from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from workflows.models import Run

# Query parameter -> lookup; each has its field in RunFilterSerializer.
LOOKUPS = {
    "workflow": "workflow_id",
    "status": "status",
    "trigger": "trigger",
    "symbol": "symbol",
    "created_after": "created_at__gte",
    "created_before": "created_at__lt",
    "date_from": "created_at__gte",
    "date_to": "created_at__lt",
    # Runs of a strategy are those of its batches (strategies.StrategyBatch links a batch to it).
    "strategy": "batch__strategy_link__strategy_id",
}
PARAMS = (
    "workflow", "strategy", "symbol", "status", "trigger", "date_from", "date_to", "created_after", "created_before",
)  # fmt: skip


def day_start(day: date) -> datetime:
    """Midnight of `day` in the site's time zone (TIME_ZONE): the pages' dates are local days."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def runs_filter(*, runs: QuerySet[Run], filters: dict[str, Any]) -> QuerySet[Run]:
    """`runs` narrowed by validated filters: dates are whole local days, `date_to` included."""
    lookups: dict[str, Any] = {}
    for name, value in filters.items():
        if name not in LOOKUPS or value in (None, ""):
            continue
        if name == "symbol":
            value = value.strip().upper()
        elif name == "date_from":
            value = day_start(value)
        elif name == "date_to":
            value = day_start(value + timedelta(days=1))
        key = LOOKUPS[name]
        # created_after and date_from on one request: the later bound wins, and so on.
        if key in lookups:
            value = max(value, lookups[key]) if key.endswith("__gte") else min(value, lookups[key])
        lookups[key] = value
    return runs.filter(**lookups)
