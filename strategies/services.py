"""Writes: prompts and AI records; strategies (create, update, delete, run as a batch)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from strategies.ai.prompt_defaults import PROMPT_DEFAULTS
from strategies.ai.prompts import DEFAULT_KINDS, PLACEHOLDERS, placeholders_unknown
from strategies.models import AgentMessage, AiRecord, PromptTemplate, Strategy, StrategyBatch
from workflows.engine import MAX_BATCH_SYMBOLS, SYMBOL, batch_start
from workflows.errors import ApplicationError
from workflows.graph import Graph, GraphSpec, graph_upgrade, references, run_context, validate_graph
from workflows.idempotency import Idempotency
from workflows.models import Template, Trigger
from workflows.selectors import version_latest, workflows_visible

KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")


def prompt_check(*, key: str, kind: str, title: str, system: str, user: str) -> None:
    if not KEY.fullmatch(key or ""):
        raise ApplicationError(
            f'Prompt key "{key}" must be 1-60 lowercase letters, digits, "_" or "-", starting with a letter or digit'
        )
    if kind not in PLACEHOLDERS:
        raise ApplicationError(f'Prompt kind "{kind}" is not one of {", ".join(sorted(PLACEHOLDERS))}')
    if not title.strip():
        raise ApplicationError("A prompt needs a title")
    for field, text in (("system", system), ("user", user)):
        if not text.strip():
            raise ApplicationError(f"The {field} prompt is empty")
        unknown = placeholders_unknown(text, kind)
        if unknown:
            allowed = ", ".join("{{" + n + "}}" for n in sorted(PLACEHOLDERS[kind]))
            raise ApplicationError(
                f"The {field} prompt uses {', '.join('{{' + n + '}}' for n in unknown)}, which a {kind} prompt "
                f"cannot fill; it may use {allowed}"
            )


@transaction.atomic
def prompt_save(
    *, key: str, kind: str, title: str, system: str, user: str, message: str = "", author=None
) -> PromptTemplate:
    """Save a prompt as its next version (version 1 for a new key). Nothing is written if it is invalid."""
    prompt_check(key=key, kind=kind, title=title, system=system, user=user)
    existing = PromptTemplate.objects.filter(key=key)
    first = existing.order_by("version").first()
    if first is not None and first.kind != kind:
        raise ApplicationError(f'Prompt "{key}" is a {first.kind} prompt; it cannot become a {kind} prompt')
    number = (existing.aggregate(n=Max("version"))["n"] or 0) + 1
    try:
        with transaction.atomic():
            return PromptTemplate.objects.create(
                key=key,
                version=number,
                kind=kind,
                title=title.strip()[:200],
                system=system,
                user=user,
                message=message[:500],
                created_by=author,
            )
    except IntegrityError as exc:
        raise ApplicationError(f'Prompt "{key}" was saved by someone else at the same time; save again') from exc


def prompts_seed() -> list[PromptTemplate]:
    """Version 1 of every built-in prompt that is not in the database yet."""
    created = []
    for key, text in PROMPT_DEFAULTS.items():
        if PromptTemplate.objects.filter(key=key).exists():
            continue
        try:
            created.append(
                prompt_save(
                    key=key,
                    kind=DEFAULT_KINDS[key],
                    title=text["title"],
                    system=text["system"],
                    user=text["user"],
                    message="Built-in default",
                )
            )
        except ApplicationError:
            if not PromptTemplate.objects.filter(key=key).exists():  # not a concurrent seed: a real problem
                raise
    return created


@transaction.atomic
def ai_record_create(*, messages: list[dict[str, Any]] | None = None, **fields: Any) -> AiRecord:
    """Store what an AI step asked and got, with an agent team's conversation when there is one."""
    fields["cost_usd"] = Decimal(str(round(fields.get("cost_usd", 0) or 0, 6)))
    record = AiRecord.objects.create(**fields)
    AgentMessage.objects.bulk_create(AgentMessage(record=record, **message) for message in messages or [])
    return record


# Strategies: a workflow run over a list of symbols with its own parameter overrides.


class StrategyInvalid(ApplicationError):
    """A strategy or schedule that cannot be saved; `errors` name each field, so forms show them inline."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        first = errors[0]
        super().__init__(f"{first['field']}: {first['message']}{more}", extra={"errors": errors})
        self.errors = errors

    def by_field(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for e in self.errors:
            out.setdefault(e["field"], []).append(e["message"])
        return out


def field_error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


OVERRIDE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_OVERRIDES = 100
# Symbol used to check a strategy's graph at save time when it has none valid to offer.
PLACEHOLDER_SYMBOL = "AAPL"
UNSET: Any = object()


def symbols_clean(symbols: Any) -> tuple[list[str], list[str]]:
    """Upper-cased, stripped, de-duplicated symbols (first occurrence kept) and the errors."""

    if isinstance(symbols, str):
        symbols = re.split(r"[\s,;]+", symbols)
    if not isinstance(symbols, list | tuple):
        return [], ["Symbols must be a list of tickers"]
    cleaned = list(dict.fromkeys(str(s).strip().upper() for s in symbols if str(s).strip()))
    if not cleaned:
        return [], ["A strategy needs at least one symbol"]
    errors = []
    if len(cleaned) > MAX_BATCH_SYMBOLS:
        errors.append(f"A strategy may have at most {MAX_BATCH_SYMBOLS} symbols, not {len(cleaned)}")
    bad = [s for s in cleaned if not SYMBOL.fullmatch(s)]
    if bad:
        shown = ", ".join(f'"{s}"' for s in bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        errors.append(f'Not valid symbols: {shown} (letters, digits, "." and "-", up to 32, e.g. AAPL, BRK.B)')
    return cleaned, errors


def _override_errors(overrides: Any) -> list[str]:
    if not isinstance(overrides, dict):
        return ["Overrides must be an object of parameter names and values"]
    errors = []
    if len(overrides) > MAX_OVERRIDES:
        errors.append(f"At most {MAX_OVERRIDES} overrides")
    for name, value in overrides.items():
        if not isinstance(name, str) or not OVERRIDE_NAME.fullmatch(name):
            errors.append(f'"{name}" is not a valid parameter name (letters, digits and "_", not first a digit)')
        elif name == "symbol":
            errors.append('"symbol" cannot be overridden: each run gets one of the strategy\'s symbols')
        elif not isinstance(value, str | int | float | bool) or (isinstance(value, float) and value != value):
            errors.append(f'"{name}" must be text, a number or true/false, not {json.dumps(value, default=str)}')
        elif isinstance(value, str) and len(value) > 500:
            errors.append(f'"{name}" is longer than 500 characters')
    return errors


def _graph_override_errors(version, overrides: dict[str, Any], symbol: str) -> list[dict[str, str]]:
    """Validate the version's graph as a run of this strategy would (DESIGN §3), so a bad override
    is refused when the strategy is saved, not when it runs at 3 a.m."""

    stored, _ = graph_upgrade(version.graph)  # as a run reads it: with params renamed since
    try:
        graph = Graph(GraphSpec.model_validate(stored))
    except ValueError:  # pydantic's ValidationError; validate_graph reports it below
        graph = None
    errors: list[dict[str, str]] = []
    if graph is not None:
        known = set(graph.spec.params)
        for n in graph.spec.nodes:
            known |= references(n.params)
        for name in sorted(set(overrides) - known - {"symbol"}):
            used = ", ".join(sorted(known - {"symbol"})) or "none"
            errors.append(
                field_error("overrides", f'"{name}" is not a parameter of v{version.number} (its parameters: {used})')
            )
        context = run_context(graph, overrides=overrides, runtime={"symbol": symbol})
    else:
        context = {**overrides, "symbol": symbol}
    _, graph_errors = validate_graph(stored, context=context)
    nodes = {n.id: n for n in graph.spec.nodes} if graph is not None else {}
    for e in graph_errors:
        node = nodes.get(e.get("node") or "")
        field = (e.get("field") or "").split(".")[0]
        names = sorted(references(node.params.get(field)) & set(overrides)) if node is not None and field else []
        if names:
            given = ", ".join(f"{n} = {json.dumps(overrides[n])}" for n in names)
            errors.append(field_error("overrides", f"{given} is refused: {e['message']}"))
        else:
            errors.append(field_error("workflow", f"v{version.number} does not validate for a run: {e['message']}"))
    return errors


def strategy_check(
    *,
    owner,
    name: str,
    workflow_id: int | None,
    version_number: int | None,
    symbols: Any,
    overrides: Any,
    ai_cost_budget_usd: Decimal | None,
) -> dict[str, Any]:
    """Every check a strategy must pass, all reported at once with the field they concern.
    Returns the cleaned values (workflow and version as rows)."""

    errors: list[dict[str, str]] = []
    name = (name or "").strip()
    if not name:
        errors.append(field_error("name", "A strategy needs a name"))
    elif len(name) > 200:
        errors.append(field_error("name", "At most 200 characters"))

    workflow = version = None
    if workflow_id is None:
        errors.append(field_error("workflow", "Choose the workflow the strategy runs"))
    else:
        workflow = workflows_visible(user=owner).filter(pk=workflow_id).first()
        if workflow is None:
            errors.append(field_error("workflow", f"There is no workflow {workflow_id} that you can use"))
    if workflow is not None:
        if version_number is not None:
            version = workflow.versions.filter(number=version_number).first()
            if version is None:
                errors.append(field_error("version", f'Workflow "{workflow.name}" has no version {version_number}'))
        elif version_latest(workflow=workflow) is None:
            errors.append(field_error("workflow", f'Workflow "{workflow.name}" has no saved version'))

    cleaned_symbols, symbol_errors = symbols_clean(symbols)
    errors += [field_error("symbols", m) for m in symbol_errors]
    override_errors = _override_errors(overrides)
    errors += [field_error("overrides", m) for m in override_errors]
    if ai_cost_budget_usd is not None and ai_cost_budget_usd < 0:
        errors.append(field_error("ai_cost_budget_usd", "The AI budget cannot be negative"))

    checked = version or (version_latest(workflow=workflow) if workflow is not None else None)
    if checked is not None and not override_errors:
        symbol = cleaned_symbols[0] if cleaned_symbols and not symbol_errors else PLACEHOLDER_SYMBOL
        errors += _graph_override_errors(checked, overrides, symbol)
    if errors:
        raise StrategyInvalid(errors)
    return {
        "name": name,
        "workflow": workflow,
        "version": version,
        "symbols": cleaned_symbols,
        "overrides": dict(overrides),
        "ai_cost_budget_usd": ai_cost_budget_usd,
    }


@transaction.atomic
def strategy_create(
    *,
    owner,
    name: str,
    workflow_id: int | None,
    symbols: Any,
    version_number: int | None = None,
    overrides: Any = None,
    description: str = "",
    live: bool = False,
    ai_cost_budget_usd: Decimal | None = None,
    enabled: bool = True,
):

    values = strategy_check(
        owner=owner,
        name=name,
        workflow_id=workflow_id,
        version_number=version_number,
        symbols=symbols,
        overrides={} if overrides is None else overrides,
        ai_cost_budget_usd=ai_cost_budget_usd,
    )
    # Safety rule 1: `live` alone sends nothing live; the global switch and TRADING_MODE=live must agree.
    return Strategy.objects.create(owner=owner, description=description or "", live=live, enabled=enabled, **values)


@transaction.atomic
def strategy_update(
    *,
    strategy,
    name: str = UNSET,
    workflow_id: int | None = UNSET,
    version_number: int | None = UNSET,
    symbols: Any = UNSET,
    overrides: Any = UNSET,
    description: str = UNSET,
    live: bool = UNSET,
    ai_cost_budget_usd: Decimal | None = UNSET,
    enabled: bool = UNSET,
):
    """Change what is given (UNSET keeps it; None means "latest" for the version and "the
    workflow's" for the budget). The whole strategy is checked again; nothing is written if it fails."""
    from strategies.schedules.services import schedules_sync  # schedules import this module

    def given(value, current):
        return current if value is UNSET else value

    values = strategy_check(
        owner=strategy.owner,
        name=given(name, strategy.name),
        workflow_id=given(workflow_id, strategy.workflow_id),
        version_number=given(version_number, strategy.version.number if strategy.version_id else None),
        symbols=given(symbols, strategy.symbols),
        overrides=given(overrides, strategy.overrides),
        ai_cost_budget_usd=given(ai_cost_budget_usd, strategy.ai_cost_budget_usd),
    )
    for field, value in values.items():
        setattr(strategy, field, value)
    strategy.description = given(description, strategy.description) or ""
    strategy.live = given(live, strategy.live)
    strategy.enabled = given(enabled, strategy.enabled)
    strategy.save()
    schedules_sync(strategy=strategy)
    return strategy


@transaction.atomic
def strategy_delete(*, strategy) -> None:
    """The strategy, its schedules and their beat entries. Its runs stay (they belong to the workflow)."""
    from strategies.schedules.services import schedules_delete  # schedules import this module

    schedules_delete(strategy=strategy)
    strategy.delete()


@transaction.atomic
@transaction.atomic
def strategy_run(
    *, strategy: Strategy, user, trigger: str = Trigger.MANUAL, idempotency: Idempotency | None = None
) -> StrategyBatch:
    """One run per symbol of the strategy as one batch (DESIGN §5 fan-out): all or nothing, the
    batch and its link to the strategy in one transaction. `idempotency` is written on the batch
    (workflows/idempotency.py: `start_once` calls this)."""

    if not strategy.enabled:
        raise ApplicationError(f'Strategy "{strategy.name}" is disabled; enable it to run it')
    if not workflows_visible(user=strategy.owner).filter(pk=strategy.workflow_id).exists():
        raise ApplicationError(f'The owner of strategy "{strategy.name}" can no longer use its workflow')
    batch = batch_start(
        workflow=strategy.workflow,
        user=user,
        symbols=strategy.symbols,
        version=strategy.version,
        overrides=strategy.overrides,
        trigger=trigger,
        label=strategy.name,
        idempotency=idempotency,
    )
    return StrategyBatch.objects.create(strategy=strategy, batch=batch)


DEMO_STRATEGY = "Demo: daily + weekly over the bundled symbols"
DEMO_SYMBOLS = ["AAPL", "MSFT", "IBM", "GOOG", "SPY"]
DEMO_TEMPLATE = "daily-weekly-charts"


def strategy_demo_ensure(*, owner):
    """The demo strategy of `make run`: the 2-indicator multi-timeframe workflow over the bundled
    symbols, with a weekday-morning schedule that is off until someone turns it on. Made once: None
    when the owner already has a strategy, or no workflow made from that template."""
    from strategies.schedules.services import schedule_create  # schedules import this module

    if Strategy.objects.filter(owner=owner).exists():
        return None  # once: a user who deleted or renamed it keeps it that way
    template = Template.objects.filter(slug=DEMO_TEMPLATE).first()
    workflow = owner.workflows.filter(name=f"Demo: {template.name}").order_by("id").first() if template else None
    if workflow is None:
        return None
    with transaction.atomic():
        strategy = strategy_create(
            owner=owner,
            name=DEMO_STRATEGY,
            workflow_id=workflow.pk,
            symbols=DEMO_SYMBOLS,
            overrides={"min_r": 1.5},
            description="Runs the daily + weekly workflow over every symbol with bundled data, asking for R >= 1.5. "
            "Its schedule (weekdays 09:45 New York, trading days only) is off: enable it on this page.",
        )
        schedule_create(
            strategy=strategy,
            cron="45 9 * * 1-5",
            timezone="America/New_York",
            enabled=False,
            trading_days_only=True,
            trading_hours_only=True,
        )
    return strategy
