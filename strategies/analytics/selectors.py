"""Analytics (reads only): how a workflow, a strategy or a prompt version has done over a date range.

Every figure comes from the runs started in the range (local dates, both ends included; default
the last 30 days) and what they left behind: their steps, AI records and orders (an order counts
with the run that placed it, whenever it closed). Counts and sums are aggregated in the database;
medians, p95 and R, over the range's bounded rows, in Python. Definitions:

- success rate: succeeded / (succeeded + failed); cancelled and unfinished runs are left out;
- step durations: steps that ran here (not reused by a rerun) and finished, succeeded or failed,
  from started_at to finished_at; p95 by nearest rank (the smallest value with at least 95% of
  the values at or below it);
- decisions: AI records of kind decision or team, by action;
- orders: sent = reached a broker (every status but blocked), blocked, filled = entry filled,
  closed; realised R = mean of `Order.r_realized` over closed orders; win rate = closed orders
  with realized_pnl > 0 / closed orders; realised P&L = sum over closed orders (after commissions);
- tokens and cost: every AI record of the runs (for a prompt: only the calls made with it).

Visibility: a user sees their own workflows, strategies and runs; staff see all. A prompt
version is shared, so its figures cover the runs the user may see.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from brokers.models import Order, OrderStatus
from strategies.models import AiKind, AiRecord, PromptTemplate, Strategy
from workflows.errors import ApplicationError
from workflows.models import Run, RunStatus, StepRun, StepStatus
from workflows.selectors import runs_visible, workflows_visible

DEFAULT_DAYS = 30
MAX_DAYS = 366 * 5
ACTIONS = ("BUY", "SELL", "HOLD")
PROMPT_REF = re.compile(r"^(?P<key>[-a-zA-Z0-9_]{1,60}):v?(?P<version>[0-9]{1,9})$")


class ScopeNotFound(Exception):
    """The workflow, strategy or prompt version does not exist or is not the user's: a 404."""


@dataclass
class Scope:
    kind: str  # all, workflow, strategy, prompt
    label: str
    runs: QuerySet[Run]
    id: int | None = None
    prompt: PromptTemplate | None = None

    def as_dict(self) -> dict[str, Any]:
        value: dict[str, Any] = {"kind": self.kind, "id": self.id, "label": self.label}
        if self.prompt is not None:
            value |= {"key": self.prompt.key, "version": self.prompt.version}
        return value


def strategies_visible(*, user) -> QuerySet[Strategy]:
    qs = Strategy.objects.select_related("workflow", "owner")
    return qs if user.is_staff else qs.filter(owner=user)


def prompts_used(*, user) -> QuerySet[PromptTemplate]:
    """Prompt versions the user's visible runs used, for the selector."""
    runs = runs_visible(user=user).values("id")
    return PromptTemplate.objects.filter(id__in=AiRecord.objects.filter(run_id__in=runs).values("prompt_id")).order_by(
        "key", "-version"
    )


def analytics_scope(
    *, user, workflow: str | int | None = None, strategy: str | int | None = None, prompt: str | None = None
) -> Scope:
    """What to compute over: at most one of workflow id, strategy id, prompt "key:version"; none is
    every run the user may see. ApplicationError for a malformed value, ScopeNotFound for a 404."""
    given = [name for name, value in (("workflow", workflow), ("strategy", strategy), ("prompt", prompt)) if value]
    if len(given) > 1:
        raise ApplicationError(f"Choose one of workflow, strategy or prompt, not {' and '.join(given)}")
    visible = runs_visible(user=user)
    if workflow:
        found = workflows_visible(user=user).filter(id=_id(workflow, "workflow")).first()
        if found is None:
            raise ScopeNotFound(f"No workflow {workflow}")
        return Scope("workflow", found.name, Run.objects.filter(workflow=found), id=found.id)
    if strategy:
        found_strategy = strategies_visible(user=user).filter(id=_id(strategy, "strategy")).first()
        if found_strategy is None:
            raise ScopeNotFound(f"No strategy {strategy}")
        runs = Run.objects.filter(batch__strategy_link__strategy=found_strategy)
        return Scope("strategy", found_strategy.name, runs, id=found_strategy.id)
    if prompt:
        match = PROMPT_REF.match(prompt.strip())
        if not match:
            raise ApplicationError(f'Prompt must be "key:version", such as decide:2, not "{prompt}"')
        found_prompt = PromptTemplate.objects.filter(key=match["key"], version=int(match["version"])).first()
        if found_prompt is None:
            raise ScopeNotFound(f"No prompt {prompt}")
        runs = visible.filter(id__in=AiRecord.objects.filter(prompt=found_prompt).values("run_id"))
        return Scope("prompt", str(found_prompt), runs, id=found_prompt.id, prompt=found_prompt)
    return Scope("all", "All your runs" if not user.is_staff else "All runs", visible)


def _id(value: str | int, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ApplicationError(f'{name} must be an id (a whole number), not "{value}"') from None
    if number <= 0:
        raise ApplicationError(f"{name} must be a positive id")
    return number


def date_range(*, start: str | date | None = None, end: str | date | None = None) -> tuple[date, date]:
    """Both ends included, in local dates; defaults: the last 30 days up to today."""
    end_date = _date(end, "to") if end else timezone.localdate()
    start_date = _date(start, "from") if start else end_date - timedelta(days=DEFAULT_DAYS - 1)
    if start_date > end_date:
        raise ApplicationError(f"from ({start_date}) is after to ({end_date})")
    if (end_date - start_date).days >= MAX_DAYS:
        raise ApplicationError(f"A range may cover at most {MAX_DAYS} days")
    return start_date, end_date


def _date(value: str | date, name: str) -> date:
    if isinstance(value, date):
        return value
    try:
        parsed = date.fromisoformat(value.strip())
    except ValueError:
        raise ApplicationError(f'{name} must be a date as YYYY-MM-DD, not "{value}"') from None
    if not date(1970, 1, 1) <= parsed <= date(2999, 12, 31):
        raise ApplicationError(f"{name} must be a date from 1970-01-01 to 2999-12-31, not {parsed}")
    return parsed


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    tz = timezone.get_current_timezone()
    return (
        timezone.make_aware(datetime.combine(start, time.min), tz),
        timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min), tz),
    )


def nearest_rank(values: list[float], pct: float) -> float | None:
    """The nearest-rank percentile of the values (sorted here)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def duration_stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "mean_s": None, "median_s": None, "p95_s": None}
    return {
        "count": len(values),
        "mean_s": statistics.fmean(values),
        "median_s": statistics.median(values),
        "p95_s": nearest_rank(values, 95),
    }


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _float(value: Decimal | None) -> float:
    return float(value or 0)


def run_figures(runs: QuerySet[Run]) -> dict[str, Any]:
    counts = runs.aggregate(
        total=Count("id"),
        succeeded=Count("id", filter=Q(status=RunStatus.SUCCEEDED)),
        failed=Count("id", filter=Q(status=RunStatus.FAILED)),
        cancelled=Count("id", filter=Q(status=RunStatus.CANCELLED)),
    )
    counts["unfinished"] = counts["total"] - counts["succeeded"] - counts["failed"] - counts["cancelled"]
    counts["success_rate"] = _ratio(counts["succeeded"], counts["succeeded"] + counts["failed"])
    durations = [
        (finished - started).total_seconds()
        for started, finished in runs.filter(started_at__isnull=False, finished_at__isnull=False).values_list(
            "started_at", "finished_at"
        )
    ]
    counts["duration"] = duration_stats(durations)
    return counts


def step_figures(runs: QuerySet[Run]) -> dict[str, list[dict[str, Any]]]:
    rows = StepRun.objects.filter(
        run_id__in=runs.values("id"),
        status__in=[StepStatus.SUCCEEDED, StepStatus.FAILED],
        started_at__isnull=False,
        finished_at__isnull=False,
        reused_from__isnull=True,
    ).values_list("node_id", "step_type", "started_at", "finished_at")
    by_node: dict[tuple[str, str], list[float]] = defaultdict(list)
    by_type: dict[str, list[float]] = defaultdict(list)
    for node_id, step_type, started, finished in rows.iterator():
        seconds = (finished - started).total_seconds()
        by_node[(node_id, step_type)].append(seconds)
        by_type[step_type].append(seconds)
    return {
        "by_node": [
            {"node_id": node_id, "step_type": step_type, **duration_stats(values)}
            for (node_id, step_type), values in sorted(by_node.items())
        ],
        "by_type": [{"step_type": name, **duration_stats(values)} for name, values in sorted(by_type.items())],
    }


def decision_figures(records: QuerySet[AiRecord]) -> dict[str, Any]:
    counts = dict(
        records.filter(kind__in=[AiKind.DECISION, AiKind.TEAM], action__in=ACTIONS)
        .order_by()
        .values("action")
        .annotate(n=Count("id"))
        .values_list("action", "n")
    )
    figures: dict[str, Any] = {action: counts.get(action, 0) for action in ACTIONS}
    figures["total"] = sum(figures[action] for action in ACTIONS)
    return figures


def order_figures(orders: QuerySet[Order]) -> dict[str, Any]:
    closed_q = Q(status=OrderStatus.CLOSED)
    counts = orders.aggregate(
        total=Count("id"),
        blocked=Count("id", filter=Q(status=OrderStatus.BLOCKED)),
        filled=Count("id", filter=Q(filled_at__isnull=False)),
        closed=Count("id", filter=closed_q),
        wins=Count("id", filter=closed_q & Q(realized_pnl__gt=0)),
        realized_pnl=Sum("realized_pnl", filter=closed_q),
    )
    counts["sent"] = counts["total"] - counts["blocked"]
    counts["realized_pnl"] = _float(counts["realized_pnl"])
    counts["win_rate"] = _ratio(counts["wins"], counts["closed"])
    closed = orders.filter(closed_q).only(
        "side", "entry_price", "stop_loss", "avg_entry_price", "avg_exit_price", "realized_pnl", "closed_at"
    )
    r_values = [r for r in (o.r_realized for o in closed) if r is not None]
    counts["r_count"] = len(r_values)
    counts["r_mean"] = statistics.fmean(r_values) if r_values else None
    return counts


def ai_figures(records: QuerySet[AiRecord]) -> dict[str, Any]:
    totals = records.aggregate(
        calls=Count("id"),
        prompt_tokens=Sum("prompt_tokens"),
        completion_tokens=Sum("completion_tokens"),
        cost_usd=Sum("cost_usd"),
    )
    prompt_tokens, completion_tokens = totals["prompt_tokens"] or 0, totals["completion_tokens"] or 0
    return {
        "calls": totals["calls"],
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "cost_usd": _float(totals["cost_usd"]),
    }


def series(runs: QuerySet[Run], orders: QuerySet[Order], start: date, end: date) -> dict[str, list]:
    """Runs per local day by outcome, and the cumulative realised P&L by close time, for the charts."""
    days: dict[date, dict[str, int]] = {
        start + timedelta(days=i): {"succeeded": 0, "failed": 0, "other": 0} for i in range((end - start).days + 1)
    }
    for created, status in runs.values_list("created_at", "status").iterator():
        day = days.get(timezone.localdate(created))
        if day is not None:
            day[status if status in ("succeeded", "failed") else "other"] += 1
    pnl, total = [], Decimal(0)
    closed = orders.filter(status=OrderStatus.CLOSED, closed_at__isnull=False).order_by("closed_at", "id")
    for closed_at, symbol, value in closed.values_list("closed_at", "symbol", "realized_pnl"):
        total += value or 0
        pnl.append({"time": closed_at.isoformat(), "symbol": symbol, "pnl": _float(value), "cumulative": float(total)})
    return {"runs_by_day": [{"date": d.isoformat(), **counts} for d, counts in days.items()], "pnl": pnl}


def analytics_compute(*, scope: Scope, start: date, end: date) -> dict[str, Any]:
    """Every figure of the scope over [start, end] (local dates)."""
    since, until = _bounds(start, end)
    runs = Run.objects.filter(id__in=scope.runs.values("id"), created_at__gte=since, created_at__lt=until)
    records = AiRecord.objects.filter(run_id__in=runs.values("id"))
    if scope.prompt is not None:
        records = records.filter(prompt=scope.prompt)
    orders = Order.objects.filter(run_id__in=runs.values("id"))
    return {
        "scope": scope.as_dict(),
        "from": start.isoformat(),
        "to": end.isoformat(),
        "runs": run_figures(runs),
        "steps": step_figures(runs),
        "decisions": decision_figures(records),
        "orders": order_figures(orders),
        "ai": ai_figures(records),
        "series": series(runs, orders, start, end),
    }


def analytics_choices(*, user) -> dict[str, list[tuple[str, str]]]:
    """What the page's selector offers: the user's workflows, strategies and the prompt versions used."""
    return {
        "workflows": [(str(w.id), w.name) for w in workflows_visible(user=user).order_by("name", "id")],
        "strategies": [(str(s.id), s.name) for s in strategies_visible(user=user)],
        "prompts": [(f"{p.key}:{p.version}", f"{p.key} v{p.version}") for p in prompts_used(user=user)],
    }


# Queries as the page and the API take them: ?workflow=|strategy=|prompt=, or the page's ?scope=<kind>:<value>

SCOPES = ("workflow", "strategy", "prompt")


def scope_params(query: Mapping[str, str]) -> dict[str, str | None]:
    """workflow=, strategy= or prompt=; the page's selector sends one `scope=<kind>:<value>` instead."""
    values: dict[str, str | None] = {name: query.get(name) or None for name in SCOPES}
    kind, _, value = (query.get("scope") or "").partition(":")
    if kind in SCOPES and value and not any(values.values()):
        values[kind] = value
    return values


def analytics_query(*, user: Any, query: Mapping[str, str]) -> dict[str, Any]:
    """The figures a page or API query asks for. Raises ApplicationError (400) or ScopeNotFound (404)."""
    scope = analytics_scope(user=user, **scope_params(query))
    start, end = date_range(start=query.get("from") or None, end=query.get("to") or None)
    return analytics_compute(scope=scope, start=start, end=end)
