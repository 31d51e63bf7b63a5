"""AI step types: analyse a chart, consolidate timeframes, decide, and let an AutoGen team decide.

A model's answer is an untrusted proposal (DESIGN §7). Every failure (no answer, a transport
error, an answer that is not valid JSON or breaks the schema) is recorded and becomes a neutral
analysis or a HOLD decision, never a trade; a neutral or failed analysis upstream makes the
decision HOLD without asking a model. Only the workflow's AI budget stops a run with an error.

Which analyst answers is each node's choice: `auto` (the model when LLM_BASE_URL is set,
else the offline rule-based analyst), `model` or `offline`. The offline analyst's results are
labelled as such in every output and on the run page.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from brokers.marketdata.bar_sizes import BAR_LABELS
from brokers.marketdata.bars import bars_load
from strategies.ai import team
from strategies.ai.llm import LlmConfig, LlmReply, cost_of, llm_complete, llm_configured
from strategies.ai.offline import market_context, offline_analysis, offline_consolidate, offline_decision
from strategies.ai.prompts import prompt_render
from strategies.ai.schemas import Analysis, Consolidation, Decision, hold, neutral
from strategies.indicators.compute import INDICATOR_NAMES, compute, indicators_load
from strategies.models import AiKind, AiRecord, Analyst, PromptTemplate
from strategies.selectors import ai_records_of_step, ai_spent, prompt_get
from strategies.services import ai_record_create, prompts_seed
from workflows.artifacts.store import artifact_get
from workflows.errors import StepError
from workflows.models import Run
from workflows.registry import Port, StepType, register

if TYPE_CHECKING:
    from workflows.engine import StepContext

ANALYSIS_FIELDS = tuple(Analysis.model_fields)
# Rough prompt size of one high-detail image, for the budget check before a call.
IMAGE_TOKENS = 1100


class AiParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    analyst: Literal["auto", "model", "offline"] = Field(
        "auto",
        description=(
            "auto: the AI model when a model endpoint (LLM_BASE_URL) is configured, else the offline rule-based "
            "analyst; model: always the AI model; offline: always the rule-based analyst"
        ),
    )
    model: str = Field("", max_length=200, description="Model name; empty uses LLM_MODEL")
    prompt_version: int | None = Field(None, ge=1, description="Use this version of the prompt; empty uses the latest")
    instructions: str = Field("", max_length=2000, description="Extra instructions added to the prompt")
    max_output_tokens: int = Field(0, ge=0, le=16000, description="Most tokens in the answer; 0 uses the default")


class AnalyzeChartParams(AiParams):
    prompt: str = Field("chart_daily", max_length=60, description="Prompt key (a chart prompt): chart_daily, ...")


class ConsolidateParams(AiParams):
    prompt: str = Field("consolidate", max_length=60, description="Prompt key (a consolidate prompt)")


class DecideParams(AiParams):
    prompt: str = Field("decide", max_length=60, description="Prompt key (a decide prompt)")


# --- shared -----------------------------------------------------------------------------------


def _use_model(params: AiParams) -> bool:
    return params.analyst == "model" or (params.analyst == "auto" and llm_configured())


def _bars_of_chart(chart: dict[str, Any]) -> pd.DataFrame:
    """The bars a chart was drawn from, with every indicator the analysts read."""
    ref = chart.get("bars") if isinstance(chart, dict) else None
    if not isinstance(ref, dict):
        raise StepError("The chart input has no bars reference; connect the chart output of strategies.render_chart")
    df = indicators_load(ref) if ref.get("indicators") else bars_load(ref)
    if df.empty:
        raise StepError("The chart's bars are empty")
    missing = [name for name in INDICATOR_NAMES if name not in (ref.get("indicators") or [])]
    return compute(df, missing) if missing else df


def _indicator_table(values: dict[str, Any]) -> str:
    return "\n".join(f"{name}: {'n/a' if value is None else value}" for name, value in values.items())


def _prompt(key: str, version: int | None, kind: str) -> PromptTemplate:
    prompt = prompt_get(key=key, version=version)
    if prompt is None and version is None:
        prompts_seed()  # a fresh installation: the built-in prompts are written on first use
        prompt = prompt_get(key=key)
    if prompt is None:
        which = f"version {version} of prompt" if version else "prompt"
        raise StepError(f'There is no {which} "{key}"; see Prompt templates in the admin')
    if prompt.kind != kind:
        raise StepError(f'Prompt "{key}" is a {prompt.kind} prompt; this step needs a {kind} prompt')
    return prompt


def _budget(ctx: StepContext, *, tokens: int = 0, cost: float = 0.0, after: bool = False) -> None:
    """Stop the run (an error, so no order) when this call would take it over its AI budget: the
    workflow's, or in USD its strategy's when the run is part of a strategy that sets one."""
    from strategies.selectors import strategy_of_run

    workflow = Run.objects.select_related("workflow").get(id=ctx.run_id).workflow
    strategy = strategy_of_run(run_id=ctx.run_id)
    cost_budget, owner = workflow.ai_cost_budget_usd, "workflow"
    if strategy is not None and strategy.ai_cost_budget_usd is not None:
        cost_budget, owner = strategy.ai_cost_budget_usd, f'strategy "{strategy.name}"'
    spent_tokens, spent_cost = ai_spent(run_id=ctx.run_id)
    over_tokens = spent_tokens + tokens > workflow.ai_token_budget
    over_cost = spent_cost + Decimal(str(cost)) > cost_budget
    if not (over_tokens or over_cost):
        return
    limit = (f"{workflow.ai_token_budget:,} tokens" if over_tokens else f"{cost_budget} USD").replace(",", " ")
    used = f"{spent_tokens:,} tokens, {spent_cost:.4f} USD".replace(",", " ")
    if after:
        raise StepError(f"This run went over its AI budget of {limit} ({used} used); its result is not used")
    raise StepError(
        f"This run would go over its AI budget of {limit} ({used} used, this call may need up to {tokens} tokens); "
        f"the model was not asked. Raise the budget on the {'workflow' if over_tokens else owner} to go on."
    )


def _image_entries(keys: list[str], images: list[bytes]) -> list[dict[str, Any]]:
    return [
        {"key": key, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for key, data in zip(keys, images, strict=True)
    ]


def _ask(
    ctx: StepContext,
    *,
    kind: str,
    record_kind: str,
    params: AiParams,
    prompt_key: str,
    values: dict[str, Any],
    image_keys: list[str],
    schema: type[BaseModel],
) -> tuple[BaseModel | None, str | None, AiRecord]:
    """Ask the model; returns (validated answer or None, error or None, the record of the call)."""
    prompt = _prompt(prompt_key, params.prompt_version, kind)
    system, user = prompt_render(prompt.system, values), prompt_render(prompt.user, values)
    config = LlmConfig.from_settings(model=params.model or None)
    max_output = params.max_output_tokens or config.max_output_tokens
    reserve = (len(system) + len(user)) // 3 + IMAGE_TOKENS * len(image_keys) + max_output
    _budget(ctx, tokens=reserve, cost=cost_of(config.model, reserve - max_output, max_output, config.prices)[0])
    images = [artifact_get(key=key) for key in image_keys]
    if config.base_url:
        reply = llm_complete(
            system=system, user=user, images=images, schema=schema, config=config, max_output_tokens=max_output
        )
    else:
        reply = LlmReply(
            model=config.model,
            text=None,
            parsed=None,
            error="No model endpoint is configured (LLM_BASE_URL)",
            prompt_tokens=0,
            completion_tokens=0,
            cost_usd=0.0,
            priced=True,
            latency_ms=0,
            attempts=0,
            request={},
        )
    parsed = reply.parsed
    action = ""
    if record_kind == AiKind.DECISION:
        action = parsed.action if isinstance(parsed, Decision) else "HOLD"
    record = ai_record_create(
        run_id=ctx.run_id,
        step_run_id=ctx.step_run_id,
        node_id=ctx.node_id,
        symbol=ctx.symbol,
        kind=record_kind,
        analyst=Analyst.MODEL,
        prompt=prompt,
        model=reply.model,
        images=_image_entries(image_keys, images),
        request=reply.request,
        raw_response=reply.text or "",
        result=parsed.model_dump(mode="json") if parsed else None,
        action=action,
        error=reply.error or "",
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        cost_usd=reply.cost_usd,
        latency_ms=reply.latency_ms,
        attempts=reply.attempts,
    )
    ctx.log(
        f"Asked {reply.model} with prompt {prompt} ({len(images)} image(s)): {reply.prompt_tokens} + "
        f"{reply.completion_tokens} tokens, {reply.cost_usd:.4f} USD, {reply.latency_ms} ms, "
        f"{reply.attempts} request(s)"
    )
    if not reply.priced:
        ctx.log(f"No price is configured for {reply.model} (LLM_PRICES): its cost is recorded as 0", level="warning")
    if reply.error:
        ctx.log(f"The model's answer is not used: {reply.error}", level="warning")
    _budget(ctx, after=True)
    return parsed, reply.error, record


def _record_unasked(
    ctx: StepContext, *, record_kind: str, result: BaseModel, error: str = "", analyst: str = Analyst.OFFLINE
) -> int:
    """A result no model was asked for: the offline analyst's, or (with the step's analyst) that of a
    step whose input had already failed. Recorded all the same."""
    record = ai_record_create(
        run_id=ctx.run_id,
        step_run_id=ctx.step_run_id,
        node_id=ctx.node_id,
        symbol=ctx.symbol,
        kind=record_kind,
        analyst=analyst,
        result=result.model_dump(mode="json"),
        action=result.action if isinstance(result, Decision) else "",
        error=error,
    )
    return record.id


def _analysis_of(item: dict[str, Any]) -> Analysis:
    return Analysis.model_validate({name: item[name] for name in ANALYSIS_FIELDS if name in item})


class AiStep(StepType):
    """What the AI steps share: their queue, and their results on the run page."""

    category = "ai"
    queue = "ai"
    time_limit = 300
    idempotent = True
    # The client retries the model itself and failures become HOLD; a step retry would only pay twice.
    retry_on = ()
    result_template = "strategies/_ai_result.html"

    @classmethod
    def result_context(cls, step_run) -> dict[str, Any]:
        records = list(ai_records_of_step(step_run_id=step_run.id))
        for record in records:
            record.request_json = json.dumps(record.request, indent=2) if record.request else ""
        return {"records": records}


# --- steps ------------------------------------------------------------------------------------


@register
class AnalyzeChart(AiStep):
    name = "ai.analyze_chart"
    label = "AI chart analysis"
    description = (
        "Sends the chart image, with the latest indicator values, to a vision model and gets back the trend, "
        "bias, confidence and key levels. Without a model endpoint, the offline rule-based analyst reads the "
        "same indicators. A failed or invalid answer is a neutral analysis, which leads to HOLD."
    )
    Params = AnalyzeChartParams
    inputs = (Port("chart", "chart", "A chart from strategies.render_chart"),)
    outputs = (Port("analysis", "analysis", "Trend, bias, confidence, key levels and summary of this timeframe"),)

    def run(self, ctx: StepContext, inputs: dict[str, Any], params: AnalyzeChartParams) -> dict[str, Any]:
        chart = inputs["chart"]
        df = _bars_of_chart(chart)
        market = market_context(df)
        bar = str(chart.get("bar") or "")
        out: dict[str, Any] = {
            "symbol": chart.get("symbol") or ctx.symbol,
            "bar": bar,
            "chart": chart.get("png"),
            **market,
        }
        if not _use_model(params):
            analysis = offline_analysis(df)
            record_id = _record_unasked(ctx, record_kind=AiKind.ANALYSIS, result=analysis)
            ctx.log(f"Offline analyst: {analysis.bias}, confidence {analysis.confidence:g}")
            return {
                "analysis": {
                    **out,
                    **analysis.model_dump(mode="json"),
                    "analyst": Analyst.OFFLINE,
                    "model": "",
                    "prompt": None,
                    "error": None,
                    "record_id": record_id,
                }
            }
        values = {
            "symbol": out["symbol"],
            "bar": BAR_LABELS.get(bar, bar),
            "last_date": market["last_date"],
            "last_close": market["last_close"],
            "indicators": _indicator_table(market["indicators"]),
            "instructions": params.instructions,
        }
        parsed, error, record = _ask(
            ctx,
            kind="chart",
            record_kind=AiKind.ANALYSIS,
            params=params,
            prompt_key=params.prompt,
            values=values,
            image_keys=[chart["png"]],
            schema=Analysis,
        )
        analysis = parsed if isinstance(parsed, Analysis) else neutral(error or "no answer")
        return {
            "analysis": {
                **out,
                **analysis.model_dump(mode="json"),
                "analyst": Analyst.MODEL,
                "model": record.model,
                "prompt": str(record.prompt),
                "error": error,
                "record_id": record.id,
            }
        }


@register
class Consolidate(AiStep):
    name = "ai.consolidate"
    label = "AI multi-timeframe consolidation"
    description = (
        "Merges the analyses of several timeframes (shortest first) into one view with their alignment: "
        "aligned, mixed or conflicting. If any analysis failed, the result is neutral without asking a model."
    )
    Params = ConsolidateParams
    inputs = (
        Port("analysis_1", "analysis", "The shortest timeframe's analysis (its prices are used for levels)"),
        Port("analysis_2", "analysis", "A longer timeframe's analysis"),
        Port("analysis_3", "analysis", "An even longer timeframe's analysis", required=False),
    )
    outputs = (Port("analysis", "analysis", "The consolidated analysis with timeframe_alignment"),)

    def run(self, ctx: StepContext, inputs: dict[str, Any], params: ConsolidateParams) -> dict[str, Any]:
        items = [inputs[p.name] for p in self.inputs if isinstance(inputs.get(p.name), dict)]
        first = items[0]
        out: dict[str, Any] = {
            "symbol": first.get("symbol") or ctx.symbol,
            "bar": first.get("bar", ""),
            "bars": [item.get("bar", "") for item in items],
            **{k: first.get(k) for k in ("last_date", "last_close", "atr", "indicators")},
        }
        failed = [f"{BAR_LABELS.get(i.get('bar'), i.get('bar'))}: {i['error']}" for i in items if i.get("error")]
        use_model = _use_model(params)
        analyst, model, prompt, error = (Analyst.MODEL if use_model else Analyst.OFFLINE), "", None, None
        if failed:
            error = "An analysis failed, so there is no consolidated view (" + "; ".join(failed) + ")"
            consolidation = Consolidation(**neutral(error).model_dump(), timeframe_alignment="mixed")
            record_id = _record_unasked(
                ctx, record_kind=AiKind.CONSOLIDATION, result=consolidation, error=error, analyst=analyst
            )
            ctx.log(error, level="warning")
        elif not use_model:
            consolidation = offline_consolidate([(item.get("bar", ""), _analysis_of(item)) for item in items])
            record_id = _record_unasked(ctx, record_kind=AiKind.CONSOLIDATION, result=consolidation)
        else:
            analyses = [
                {"bar": BAR_LABELS.get(item.get("bar"), item.get("bar")), **_analysis_of(item).model_dump(mode="json")}
                for item in items
            ]
            values = {
                "symbol": out["symbol"],
                "analyses": json.dumps(analyses, indent=1),
                "instructions": params.instructions,
            }
            parsed, error, record = _ask(
                ctx,
                kind="consolidate",
                record_kind=AiKind.CONSOLIDATION,
                params=params,
                prompt_key=params.prompt,
                values=values,
                image_keys=[],
                schema=Consolidation,
            )
            if isinstance(parsed, Consolidation):
                consolidation = parsed
            else:
                consolidation = Consolidation(**neutral(error or "no answer").model_dump(), timeframe_alignment="mixed")
            model, prompt, record_id = record.model, str(record.prompt), record.id
        ctx.log(f"Consolidated {len(items)} timeframes: {consolidation.timeframe_alignment}, {consolidation.bias}")
        return {
            "analysis": {
                **out,
                **consolidation.model_dump(mode="json"),
                "analyst": analyst,
                "model": model,
                "prompt": prompt,
                "error": error,
                "record_id": record_id,
            }
        }


@register
class Decide(AiStep):
    name = "ai.decide"
    label = "AI trading decision"
    description = (
        "Turns an analysis (one timeframe or consolidated) into BUY, SELL or HOLD with entry, stop loss and two "
        "take-profit levels. Anything missing, contradictory or out of range is HOLD with the error recorded; "
        "the reward/risk ratio is checked later, in code."
    )
    Params = DecideParams
    inputs = (
        Port("analysis", "analysis", "From ai.analyze_chart or ai.consolidate"),
        Port("chart", "chart", "A chart to show the model too (optional)", required=False),
    )
    outputs = (Port("decision", "decision", "Action, levels, confidence and reasoning; HOLD on any failure"),)

    def run(self, ctx: StepContext, inputs: dict[str, Any], params: DecideParams) -> dict[str, Any]:
        item = inputs["analysis"]
        alignment = item.get("timeframe_alignment", "single")
        out = {
            "symbol": item.get("symbol") or ctx.symbol,
            **{k: item.get(k) for k in ("last_date", "last_close", "atr")},
        }
        use_model = _use_model(params)
        analyst, model, prompt, error = (Analyst.MODEL if use_model else Analyst.OFFLINE), "", None, None
        if item.get("error"):
            error = f"The analysis failed: {item['error']}"
            decision = hold(error, alignment=alignment)
            record_id = _record_unasked(ctx, record_kind=AiKind.DECISION, result=decision, error=error, analyst=analyst)
        elif not use_model:
            analysis = _analysis_of(item)
            if "timeframe_alignment" in item:
                analysis = Consolidation(**analysis.model_dump(), timeframe_alignment=alignment)
            decision = offline_decision(analysis, last_close=item.get("last_close") or 0.0, atr=item.get("atr"))
            record_id = _record_unasked(ctx, record_kind=AiKind.DECISION, result=decision)
        else:
            chart = inputs.get("chart")
            values = {
                "symbol": out["symbol"],
                "analysis": json.dumps(
                    {**_analysis_of(item).model_dump(mode="json"), "timeframe_alignment": alignment}
                ),
                "last_close": item.get("last_close"),
                "atr": item.get("atr"),
                "indicators": _indicator_table(item.get("indicators") or {}),
                "instructions": params.instructions,
            }
            parsed, error, record = _ask(
                ctx,
                kind="decide",
                record_kind=AiKind.DECISION,
                params=params,
                prompt_key=params.prompt,
                values=values,
                image_keys=[chart["png"]] if isinstance(chart, dict) and chart.get("png") else [],
                schema=Decision,
            )
            decision = parsed if isinstance(parsed, Decision) else hold(error or "no answer", alignment=alignment)
            model, prompt, record_id = record.model, str(record.prompt), record.id
        ctx.log(f"Decision: {decision.action}" + (f" ({error})" if error else ""))
        return {
            "decision": {
                **out,
                **decision.model_dump(mode="json"),
                "analyst": analyst,
                "model": model,
                "prompt": prompt,
                "error": error,
                "record_id": record_id,
            }
        }


class AgentTeamParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    analyst: Literal["auto", "model", "offline"] = Field(
        "auto",
        description=(
            "auto: the agent team when a model endpoint (LLM_BASE_URL) is configured, else the offline rule-based "
            "analyst; model: always the team; offline: always the rule-based analyst"
        ),
    )
    agents: list[team.AgentSpec] = Field(
        default_factory=lambda: [a.model_copy() for a in team.DEFAULT_AGENTS],
        min_length=1,
        max_length=8,
        description="The agents, in speaking order for round robin; tools: market_data, risk (never orders)",
    )
    mode: Literal["round_robin", "selector"] = Field(
        "round_robin", description="round_robin: agents speak in turn; selector: a model picks who speaks next"
    )
    max_messages: int = Field(12, ge=2, le=60, description="Stop after this many messages")
    stop_text: str = Field(team.DEFAULT_STOP_TEXT, min_length=3, max_length=40, description="Word that ends the chat")
    timeout_s: int = Field(180, ge=10, le=600, description="Stop the conversation after this many seconds")
    token_budget: int = Field(40_000, ge=1000, le=1_000_000, description="Stop after this many tokens")
    instructions: str = Field("", max_length=2000, description="Extra instructions added to the task")


@register
class AgentTeam(AiStep):
    name = "ai.agent_team"
    label = "AI agent team (AutoGen)"
    description = (
        "A team of AutoGen agents (by default a technical analyst, a risk manager and an executor) discusses the "
        "charts and the executor writes the decision. Tools: market-data lookup and a reward/risk calculator; no "
        "agent can place orders or run code. A team that does not conclude is HOLD. Every message is recorded."
    )
    Params = AgentTeamParams
    inputs = (
        Port("chart_1", "chart", "The shortest timeframe's chart (its prices are used for levels)"),
        Port("chart_2", "chart", "A longer timeframe's chart", required=False),
    )
    outputs = (Port("decision", "decision", "Action, levels, confidence and reasoning; HOLD on any failure"),)
    time_limit = 660

    def run(self, ctx: StepContext, inputs: dict[str, Any], params: AgentTeamParams) -> dict[str, Any]:
        charts = [inputs[p.name] for p in self.inputs if isinstance(inputs.get(p.name), dict)]
        frames = [_bars_of_chart(chart) for chart in charts]
        market = market_context(frames[0])
        out = {
            "symbol": charts[0].get("symbol") or ctx.symbol,
            **{k: market[k] for k in ("last_date", "last_close", "atr")},
        }
        use_model = params.analyst == "model" or (params.analyst == "auto" and llm_configured())
        if not use_model:
            analyses = [(str(c.get("bar") or ""), offline_analysis(df)) for c, df in zip(charts, frames, strict=True)]
            view = offline_consolidate(analyses) if len(analyses) > 1 else analyses[0][1]
            decision = offline_decision(view, last_close=market["last_close"], atr=market["atr"])
            record_id = _record_unasked(ctx, record_kind=AiKind.TEAM, result=decision)
            ctx.log(f"Offline analyst (no model endpoint for the team): {decision.action}")
            return {
                "decision": {
                    **out,
                    **decision.model_dump(mode="json"),
                    "analyst": Analyst.OFFLINE,
                    "model": "",
                    "prompt": None,
                    "error": None,
                    "record_id": record_id,
                }
            }
        _budget(ctx, tokens=params.token_budget)
        images = [artifact_get(key=c["png"]) for c in charts]
        labels = [BAR_LABELS.get(str(c.get("bar")), str(c.get("bar"))) for c in charts]
        task = (
            f"Decide whether to trade {out['symbol']}. Attached: the {', '.join(labels)} chart(s). Latest "
            f"{labels[0]} close {market['last_close']} on {market['last_date']}, "
            f"ATR 14 {market['atr']}.\nLatest indicator values:\n{_indicator_table(market['indicators'])}\n"
            f"{params.instructions}\nThe executor ends the discussion with one JSON decision object and then "
            f"{params.stop_text} on its own line."
        )
        result = team.team_run(
            task=task,
            images=images,
            agents=params.agents,
            mode=params.mode,
            max_messages=params.max_messages,
            stop_text=params.stop_text,
            timeout_s=params.timeout_s,
            token_budget=params.token_budget,
            tools=team.TeamTools(symbol=out["symbol"], bars=frames[0], indicators=market["indicators"]),
        )
        config = LlmConfig.from_settings()
        cost = sum(cost_of(m, p, c, config.prices)[0] for m, (p, c) in result.tokens_by_model.items())
        models = sorted(result.tokens_by_model) or sorted({a.model or config.model for a in params.agents})
        record = ai_record_create(
            run_id=ctx.run_id,
            step_run_id=ctx.step_run_id,
            node_id=ctx.node_id,
            symbol=ctx.symbol,
            kind=AiKind.TEAM,
            analyst=Analyst.TEAM,
            model=", ".join(models),
            images=_image_entries([c["png"] for c in charts], images),
            request={"task": task, "agents": [a.model_dump() for a in params.agents], "mode": params.mode},
            raw_response=next((m.content for m in reversed(result.messages)), ""),
            result=result.decision.model_dump(mode="json"),
            action=result.decision.action,
            error=result.error or "",
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            cost_usd=cost,
            latency_ms=result.latency_ms,
            messages=[
                {
                    "seq": m.seq,
                    "agent": m.agent,
                    "kind": m.kind,
                    "content": m.content,
                    "prompt_tokens": m.prompt_tokens,
                    "completion_tokens": m.completion_tokens,
                }
                for m in result.messages
            ],
        )
        ctx.log(
            f"Agent team: {len(result.messages)} messages, stopped by {result.stop_reason}; "
            f"{result.prompt_tokens} + {result.completion_tokens} tokens, {cost:.4f} USD; {result.decision.action}"
        )
        if result.error:
            ctx.log(f"No trade from the team: {result.error}", level="warning")
        _budget(ctx, after=True)
        return {
            "decision": {
                **out,
                **result.decision.model_dump(mode="json"),
                "analyst": Analyst.TEAM,
                "model": ", ".join(models),
                "prompt": None,
                "error": result.error,
                "record_id": record.id,
            }
        }
