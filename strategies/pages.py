"""Pages: the dashboard (home), strategies (list, form, detail with live batch progress) and schedules.

Reads go through the selectors (owners see theirs, staff all), so another user's strategy is a
404. Writes go through the services; a validation error is shown next to its field, with HTTP
400, and nothing is saved.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from brokers.adapters.paper.broker import PaperBroker
from brokers.orders.selectors import positions_visible, trading_control
from strategies import services
from strategies.models import OverlapPolicy, Strategy, StrategySchedule
from strategies.schedules import services as schedule_services
from strategies.selectors import (
    schedule_ticks,
    schedules_upcoming,
    strategies_visible,
    strategy_batches,
)
from strategies.services import StrategyInvalid
from workflows.approvals.services import approvals_pending
from workflows.engine import BROKER_DOWN_MESSAGE, dispatch_watch
from workflows.errors import ApplicationError
from workflows.idempotency import form_idempotency, start_once
from workflows.models import Batch, Trigger
from workflows.selectors import runs_visible, version_latest, workflows_visible

DASHBOARD_ROWS = 10
BATCHES_SHOWN = 10
POLL_INTERVAL_MS = 2000


# Dashboard


@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    strategies = list(strategies_visible(user=user)[:DASHBOARD_ROWS])
    for strategy in strategies:
        latest = strategy_batches(strategy=strategy, limit=1)
        strategy.last_batch = latest[0] if latest else None
    upcoming = [
        {**row, "times": schedule_services.preview_rows([row["at"]])[0]}
        for row in schedules_upcoming(user=user, limit=DASHBOARD_ROWS)
    ]
    context = {
        "section": "dashboard",
        "summary": PaperBroker().account_summary(),
        "positions": list(positions_visible(user=user)[:DASHBOARD_ROWS]),
        "recent_runs": list(runs_visible(user=user)[:DASHBOARD_ROWS]),
        "upcoming": upcoming,
        "approvals": list(approvals_pending(user=user).select_related("run__workflow")[:DASHBOARD_ROWS]),
        "strategies": strategies,
        "has_workflows": workflows_visible(user=user).exists(),
        "control": trading_control(),
    }
    return render(request, "strategies/dashboard.html", context)


# Form values <-> text


def _override_text(overrides: dict[str, Any]) -> str:
    """One "name = value" line each; text that would read back as another type is quoted."""
    lines = []
    for name, value in overrides.items():
        if isinstance(value, str):
            try:
                shown = value if isinstance(json.loads(value), str) else json.dumps(value)
            except ValueError:
                shown = value
        else:
            shown = json.dumps(value)
        lines.append(f"{name} = {shown}")
    return "\n".join(lines)


def _override_parse(text: str) -> tuple[dict[str, Any], list[str]]:
    """Lines of "name = value". A value reads as a number, true/false or "quoted text" when it is
    one, else as the text typed (1y stays "1y")."""
    overrides: dict[str, Any] = {}
    errors = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        name, sep, raw = line.partition("=")
        if not sep or not name.strip():
            errors.append(f'Line {number}: "{line.strip()[:60]}" is not "name = value"')
            continue
        raw = raw.strip()
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        if not isinstance(value, str | int | float | bool) or value is None:
            value = raw
        if name.strip() in overrides:
            errors.append(f'Line {number}: "{name.strip()}" is given twice')
        overrides[name.strip()] = value
    return overrides, errors


def _int_or_none(text: str) -> int | None:
    text = (text or "").strip()
    return int(text) if re.fullmatch(r"[0-9]{1,18}", text) else None


def _form_from_post(post) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[str]]]:
    """The form as typed (to show again), the service arguments, and the errors found in the text."""
    form = {
        "name": post.get("name", ""),
        "description": post.get("description", ""),
        "workflow": post.get("workflow", ""),
        "version": post.get("version", ""),
        "symbols": post.get("symbols", ""),
        "overrides": post.get("overrides", ""),
        "ai_cost_budget_usd": post.get("ai_cost_budget_usd", "").strip(),
        "live": post.get("live") == "on",
        "enabled": post.get("enabled") == "on",
    }
    errors: dict[str, list[str]] = {}
    overrides, override_errors = _override_parse(form["overrides"])
    if override_errors:
        errors["overrides"] = override_errors
    budget = None
    if form["ai_cost_budget_usd"]:
        try:
            budget = Decimal(form["ai_cost_budget_usd"])
            if not budget.is_finite() or budget.as_tuple().exponent < -4 or abs(budget) >= 10**6:
                raise InvalidOperation
        except InvalidOperation:
            errors["ai_cost_budget_usd"] = ["A budget in USD, e.g. 0.50 (at most 4 decimals, below 1 000 000)"]
            budget = None
    if form["workflow"] and _int_or_none(form["workflow"]) is None:
        errors["workflow"] = ["Choose a workflow from the list"]
    if form["version"] and _int_or_none(form["version"]) is None:
        errors["version"] = ["Choose a version from the list"]
    args = {
        "name": form["name"],
        "description": form["description"],
        "workflow_id": _int_or_none(form["workflow"]),
        "version_number": _int_or_none(form["version"]),
        "symbols": form["symbols"],
        "overrides": overrides,
        "ai_cost_budget_usd": budget,
        "live": form["live"],
        "enabled": form["enabled"],
    }
    return form, args, errors


def _form_from_strategy(strategy: Strategy | None) -> dict[str, Any]:
    if strategy is None:
        return {"symbols": "", "overrides": "", "enabled": True, "live": False, "workflow": "", "version": ""}
    return {
        "name": strategy.name,
        "description": strategy.description,
        "workflow": str(strategy.workflow_id),
        "version": str(strategy.version.number) if strategy.version_id else "",
        "symbols": ", ".join(strategy.symbols),
        "overrides": _override_text(strategy.overrides),
        "ai_cost_budget_usd": "" if strategy.ai_cost_budget_usd is None else str(strategy.ai_cost_budget_usd),
        "live": strategy.live,
        "enabled": strategy.enabled,
    }


def _merge(errors: dict[str, list[str]], exc: StrategyInvalid) -> dict[str, list[str]]:
    for field, found in exc.by_field().items():
        errors.setdefault(field, []).extend(found)
    return errors


# Strategies


@require_safe
def strategy_list(request: HttpRequest) -> HttpResponse:
    strategies = list(strategies_visible(user=request.user).prefetch_related("schedules"))
    for strategy in strategies:
        latest = strategy_batches(strategy=strategy, limit=1)
        strategy.last_batch = latest[0] if latest else None
        strategy.schedule_count = len(strategy.schedules.all())
        strategy.schedules_on = sum(1 for s in strategy.schedules.all() if s.enabled)
    return render(request, "strategies/strategy_list.html", {"section": "strategies", "strategies": strategies})


def _form_page(
    request: HttpRequest,
    *,
    strategy: Strategy | None,
    form: dict[str, Any],
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    workflows = list(workflows_visible(user=request.user).order_by("name").prefetch_related("versions"))
    for workflow in workflows:
        latest = version_latest(workflow=workflow)
        workflow.param_defaults = sorted((latest.graph.get("params") or {}).items()) if latest else []
        workflow.version_numbers = sorted((v.number for v in workflow.versions.all()), reverse=True)
    context = {
        "section": "strategies",
        "strategy": strategy,
        "form": form,
        "errors": errors or {},
        "workflows": workflows,
    }
    return render(request, "strategies/strategy_form.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
def strategy_new(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        form = _form_from_strategy(None)
        form["workflow"] = request.GET.get("workflow", "")
        return _form_page(request, strategy=None, form=form)
    form, args, errors = _form_from_post(request.POST)
    strategy = _save(request, None, args, errors)
    if strategy is None:
        return _form_page(request, strategy=None, form=form, errors=errors, status=400)
    messages.success(request, f'Created strategy "{strategy.name}".')
    return redirect("strategy-detail", pk=strategy.pk)


def _save(
    request: HttpRequest, strategy: Strategy | None, args: dict[str, Any], errors: dict[str, list[str]]
) -> Strategy | None:
    """Create or update; None, with `errors` filled in, when anything is wrong (nothing is written)."""
    try:
        if errors:
            # The text could not be read: still check the rest, so every problem shows at once.
            check = {k: v for k, v in args.items() if k not in ("description", "live", "enabled")}
            services.strategy_check(owner=strategy.owner if strategy else request.user, **check)
            return None
        if strategy is None:
            return services.strategy_create(owner=request.user, **args)
        return services.strategy_update(strategy=strategy, **args)
    except StrategyInvalid as exc:
        _merge(errors, exc)
        return None


def _visible_strategy(request: HttpRequest, pk: int) -> Strategy:
    return get_object_or_404(strategies_visible(user=request.user), pk=pk)


@require_http_methods(["GET", "HEAD", "POST"])
def strategy_edit(request: HttpRequest, pk: int) -> HttpResponse:
    strategy = _visible_strategy(request, pk)
    if request.method != "POST":
        return _form_page(request, strategy=strategy, form=_form_from_strategy(strategy))
    form, args, errors = _form_from_post(request.POST)
    saved = _save(request, strategy, args, errors)
    if saved is None:
        return _form_page(request, strategy=strategy, form=form, errors=errors, status=400)
    strategy = saved
    messages.success(request, f'Saved strategy "{strategy.name}".')
    return redirect("strategy-detail", pk=strategy.pk)


@require_POST
def strategy_delete(request: HttpRequest, pk: int) -> HttpResponse:
    strategy = _visible_strategy(request, pk)
    services.strategy_delete(strategy=strategy)
    messages.success(request, f'Deleted strategy "{strategy.name}" and its schedules; its runs are kept.')
    return redirect("strategy-list")


def _schedule_form(schedule: StrategySchedule | None = None) -> dict[str, Any]:
    if schedule is None:
        return {
            "cron": "30 9 * * 1-5",
            "timezone": schedule_services.DEFAULT_TIMEZONE,
            "enabled": True,
            "trading_days_only": True,
            "trading_hours_only": False,
            "overlap": OverlapPolicy.SKIP,
        }
    return {
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "enabled": schedule.enabled,
        "trading_days_only": schedule.trading_days_only,
        "trading_hours_only": schedule.trading_hours_only,
        "overlap": schedule.overlap,
    }


def _schedule_form_from_post(post) -> dict[str, Any]:
    return {
        "cron": post.get("cron", ""),
        "timezone": post.get("timezone", ""),
        "enabled": post.get("enabled") == "on",
        "trading_days_only": post.get("trading_days_only") == "on",
        "trading_hours_only": post.get("trading_hours_only") == "on",
        "overlap": post.get("overlap", ""),
    }


def _schedule_preview(form: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """The next runs of a schedule as typed, without saving it, or why it cannot be read."""
    try:
        cron, timezone = schedule_services.schedule_check(
            cron=form["cron"],
            timezone=form["timezone"],
            trading_days_only=form["trading_days_only"],
            trading_hours_only=form["trading_hours_only"],
            overlap=form["overlap"],
        )
    except StrategyInvalid as exc:
        return [], exc.by_field()
    times = schedule_services.preview(
        cron=cron,
        timezone=timezone,
        trading_days_only=form["trading_days_only"],
        trading_hours_only=form["trading_hours_only"],
    )
    return schedule_services.preview_rows(times), {}


def _detail_page(
    request: HttpRequest,
    strategy: Strategy,
    *,
    error: str = "",
    schedule_form: dict[str, Any] | None = None,
    schedule_errors: dict[str, list[str]] | None = None,
    schedule_preview: list[dict[str, Any]] | None = None,
    status: int = 200,
) -> HttpResponse:
    batches = strategy_batches(strategy=strategy, limit=BATCHES_SHOWN)
    schedules = list(strategy.schedules.select_related("periodic_task"))
    for schedule in schedules:
        schedule.next_runs = schedule_services.preview_rows(schedule_services.schedule_preview(schedule=schedule))
        schedule.recent_ticks = schedule_ticks(schedule=schedule, limit=5)
    version = strategy.version or version_latest(workflow=strategy.workflow)
    defaults = (version.graph.get("params") or {}) if version else {}
    params = [
        {
            "name": name,
            "default": defaults.get(name),
            "override": strategy.overrides.get(name),
            "set": name in strategy.overrides,
        }
        for name in sorted(set(defaults) | set(strategy.overrides))
    ]
    context = {
        "section": "strategies",
        "strategy": strategy,
        "version": version,
        "params": params,
        "batches": batches,
        "active": any(b["state"] == "running" for b in batches),
        "poll_ms": POLL_INTERVAL_MS,
        "batches_url": reverse("api-strategy-batches", args=[strategy.pk]) + f"?limit={BATCHES_SHOWN}",
        "schedules": schedules,
        "schedule_form": schedule_form or _schedule_form(),
        "schedule_errors": schedule_errors or {},
        "schedule_preview": schedule_preview,
        "overlap_choices": OverlapPolicy.choices,
        "timezones": schedule_services.timezone_choices(),
        "error": error,
    }
    return render(request, "strategies/strategy_detail.html", context, status=status)


@require_safe
def strategy_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_page(request, _visible_strategy(request, pk))


@require_POST
def strategy_run(request: HttpRequest, pk: int) -> HttpResponse:
    strategy = _visible_strategy(request, pk)
    try:
        idempotency = form_idempotency(request.POST, {"strategy": strategy.pk})
        with dispatch_watch() as watch:
            batch, replayed = start_once(
                Batch,
                user=request.user,
                idempotency=idempotency,
                start=lambda idem: (
                    services.strategy_run(
                        strategy=strategy, user=request.user, trigger=Trigger.MANUAL, idempotency=idem
                    ).batch
                ),
            )
    except ApplicationError as exc:
        return _detail_page(request, strategy, error=exc.message, status=400)
    count = len(batch.symbols)
    runs = f"{count} run{'s' if count != 1 else ''}"
    if replayed:
        messages.info(request, f"Batch {batch.pk} ({runs}) was already started by this form.")
    elif watch.failed():
        # Saved, not lost: say so, rather than an error that invites a second batch.
        messages.warning(request, f"Batch {batch.pk} ({runs}) {BROKER_DOWN_MESSAGE}.")
    else:
        messages.success(request, f"Started batch {batch.pk}: {runs}.")
    return redirect(reverse("strategy-detail", args=[strategy.pk]) + "#batches")


# Schedules


@require_POST
def schedule_create(request: HttpRequest, pk: int) -> HttpResponse:
    strategy = _visible_strategy(request, pk)
    form = _schedule_form_from_post(request.POST)
    if request.POST.get("action") == "preview":
        rows, errors = _schedule_preview(form)
        return _detail_page(
            request,
            strategy,
            schedule_form=form,
            schedule_errors=errors,
            schedule_preview=rows,
            status=400 if errors else 200,
        )
    try:
        schedule_services.schedule_create(strategy=strategy, **form)
    except StrategyInvalid as exc:
        return _detail_page(request, strategy, schedule_form=form, schedule_errors=exc.by_field(), status=400)
    messages.success(request, f'Added the schedule "{" ".join(form["cron"].split())}" ({form["timezone"].strip()}).')
    return redirect(reverse("strategy-detail", args=[strategy.pk]) + "#schedules")


def _visible_schedule(request: HttpRequest, pk: int, schedule_pk: int) -> StrategySchedule:
    strategy = _visible_strategy(request, pk)
    return get_object_or_404(strategy.schedules.select_related("strategy", "periodic_task"), pk=schedule_pk)


@require_http_methods(["GET", "HEAD", "POST"])
def schedule_edit(request: HttpRequest, pk: int, schedule_pk: int) -> HttpResponse:
    schedule = _visible_schedule(request, pk, schedule_pk)
    errors: dict[str, list[str]] = {}
    preview_rows = None
    status = 200
    if request.method != "POST":
        form = _schedule_form(schedule)
    else:
        form = _schedule_form_from_post(request.POST)
        if request.POST.get("action") == "preview":
            preview_rows, errors = _schedule_preview(form)
            status = 400 if errors else 200
        else:
            try:
                schedule_services.schedule_update(schedule=schedule, **form)
            except StrategyInvalid as exc:
                errors, status = exc.by_field(), 400
            else:
                messages.success(request, "Saved the schedule.")
                return redirect(reverse("strategy-detail", args=[pk]) + "#schedules")
    context = {
        "section": "strategies",
        "strategy": schedule.strategy,
        "schedule": schedule,
        "schedule_form": form,
        "schedule_errors": errors,
        "schedule_preview": preview_rows,
        "next_runs": schedule_services.preview_rows(schedule_services.schedule_preview(schedule=schedule)),
        "overlap_choices": OverlapPolicy.choices,
        "timezones": schedule_services.timezone_choices(),
    }
    return render(request, "strategies/schedule_form.html", context, status=status)


def _set_enabled(request: HttpRequest, pk: int, schedule_pk: int, *, enabled: bool) -> HttpResponse:
    schedule = _visible_schedule(request, pk, schedule_pk)
    schedule_services.schedule_set_enabled(schedule=schedule, enabled=enabled)
    messages.success(request, f'Schedule "{schedule.cron}" turned {"on" if enabled else "off"}.')
    return redirect(reverse("strategy-detail", args=[pk]) + "#schedules")


@require_POST
def schedule_enable(request: HttpRequest, pk: int, schedule_pk: int) -> HttpResponse:
    return _set_enabled(request, pk, schedule_pk, enabled=True)


@require_POST
def schedule_disable(request: HttpRequest, pk: int, schedule_pk: int) -> HttpResponse:
    return _set_enabled(request, pk, schedule_pk, enabled=False)


@require_POST
def schedule_delete(request: HttpRequest, pk: int, schedule_pk: int) -> HttpResponse:
    schedule = _visible_schedule(request, pk, schedule_pk)
    schedule_services.schedule_delete(schedule=schedule)
    messages.success(request, f'Deleted the schedule "{schedule.cron}".')
    return redirect(reverse("strategy-detail", args=[pk]) + "#schedules")
