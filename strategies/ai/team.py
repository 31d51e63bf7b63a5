"""An AutoGen agent team (agentchat 0.7) that discusses a symbol and proposes one trading decision.

The team talks until an agent says the stop word (or a message, time or token limit ends it); the decision is
the JSON object in the last agent message with the stop word, validated strictly. Anything else (no conclusion,
bad JSON, a key given twice, a model error, a usage report with a count that is no count) is HOLD with the error
recorded (safety rule 2). The agents' only tools read data already in the run and compute reward/risk; nothing
can place an order or run code (safety rule 5).

`team_run` is synchronous because the Celery worker is: it runs the team in its own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import TaskResult
from autogen_agentchat.conditions import (
    MaxMessageTermination,
    TextMentionTermination,
    TimeoutTermination,
    TokenUsageTermination,
)
from autogen_agentchat.messages import (
    BaseAgentEvent,
    BaseChatMessage,
    ModelClientStreamingChunkEvent,
    MultiModalMessage,
    TextMessage,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
)
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat
from autogen_core import FunctionCall, Image
from autogen_core.models import ChatCompletionClient, ModelFamily, ModelInfo
from autogen_core.tools import FunctionTool
from autogen_ext.models.openai import OpenAIChatCompletionClient
from django.conf import settings
from PIL import Image as PILImage
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from brokers.marketdata.bars import iso_date
from strategies.ai.llm import NO_KEY, _one_line, _scrub
from strategies.ai.schemas import Decision, hold, validation_message
from strategies.ai.untrusted import USAGE_INVALID, AmbiguousJson, strict_loads, token_count
from strategies.indicators.compute import INDICATOR_NAMES, compute, indicator_columns, latest_values
from strategies.risk.rules import reward_risk

AgentTool = Literal["market_data", "risk"]
Mode = Literal["round_robin", "selector"]
Message = BaseAgentEvent | BaseChatMessage

DEFAULT_STOP_TEXT = "FINAL_DECISION"
# AutoGen's TimeoutTermination is only checked between messages; this bounds a model call that never returns.
GUARD_S = 10.0
# Non-OpenAI model names have no built-in capabilities in autogen_ext; these are what the team needs.
MODEL_INFO = ModelInfo(
    vision=True, function_calling=True, json_output=True, structured_output=False, family=ModelFamily.UNKNOWN
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
_FENCE = re.compile(r"```(?:json)?[ \t]*\n(.*?)\n[ \t]*```", re.DOTALL | re.IGNORECASE)


class AgentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Agent name: letters, digits and underscores, not starting with a digit (1-40)")
    system_prompt: str = Field(
        min_length=1, max_length=8000, description="The agent's role and rules; {stop_text} becomes the stop word"
    )
    model: str | None = Field(None, max_length=200, description="Model name; empty means the LLM_MODEL setting")
    tools: list[AgentTool] = Field(
        default_factory=list, description="market_data: the run's prices and indicators; risk: R computed in code"
    )

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        # AutoGen refuses names that are not identifiers, and the selector finds agents by name in text.
        if not _NAME.fullmatch(value) or value == "user":
            raise ValueError(
                f'Agent name "{value}" must be 1-40 letters, digits or underscores, not start with a digit, '
                'and not be "user" (the task\'s author)'
            )
        return value


_NO_ORDERS = "Nobody in this team can place orders: the decision is a proposal that the system checks again in code."
_LEVELS = "Every price is a plain number (187.5), never text or a range."
_QUIET = "Never write {stop_text}: only the executor writes it, once, under the final decision."

DEFAULT_AGENTS: list[AgentSpec] = [
    AgentSpec(
        name="technical_analyst",
        tools=["market_data"],
        system_prompt=(
            "You are the technical analyst of a trading team: you read the charts and the market data and propose "
            "one trade idea, or none.\n"
            "First call the market_data tool for the last close, the recent closes and the latest indicator values, "
            "and use its numbers rather than numbers guessed from the picture.\n"
            "Describe the trend of each timeframe, momentum (RSI, MACD), volatility (ATR, Bollinger bands) and the "
            "nearest support and resistance levels. Then propose a direction (long or short), an entry near the "
            "last close, a stop-loss beyond a real support (long) or resistance (short) level with room for noise "
            "(about half to one ATR), a conservative target at the next level and an aggressive one at the level "
            "after it. When the signals disagree, the timeframes conflict or price sits mid-range, recommend no "
            f"trade and say why.\n{_LEVELS} Do not invent news or fundamentals. {_NO_ORDERS} {_QUIET}"
        ),
    ),
    AgentSpec(
        name="risk_manager",
        tools=["risk"],
        system_prompt=(
            "You are the risk manager of a trading team: you check the analyst's trade idea before anyone decides.\n"
            "Call the risk tool for each proposed target with side (long or short), entry, stop and target; it "
            "computes R (reward divided by risk) and the profit margin in code. Use only its numbers and never "
            "compute R yourself.\n"
            "Reject the idea when the tool says it is not valid, when R for the conservative target is below 1, "
            "when the stop is not beyond a real level or is tighter than about half an ATR, or when the entry is "
            "far from the last close. Do not accept targets stretched to make R look good. When you reject, say "
            "why in a sentence or two and recommend HOLD. When you approve, restate the exact side, entry, stop, "
            f"both targets and the R of each.\n{_LEVELS} {_NO_ORDERS} {_QUIET}"
        ),
    ),
    AgentSpec(
        name="executor",
        system_prompt=(
            "You are the executor of a trading team: you write the team's final decision and nothing else.\n"
            "Answer BUY or SELL only when the risk manager approved the trade with an R of at least 1 from the risk "
            "tool, using exactly the approved levels; otherwise answer HOLD.\n"
            "Reply with one JSON object with these fields, then a line with only {stop_text}:\n"
            '{"action": "BUY" | "SELL" | "HOLD",\n'
            ' "entry": number or null,\n'
            ' "stop_loss": number or null,\n'
            ' "take_profit_conservative": number or null,\n'
            ' "take_profit_aggressive": number or null,\n'
            ' "confidence": number from 0 to 1,\n'
            ' "timeframe_alignment": "aligned" | "mixed" | "conflicting" | "single",\n'
            ' "key_levels": {"support": [numbers], "resistance": [numbers]},\n'
            ' "reasoning": "the signals for and against, the R of each target, what would invalidate the trade"}\n'
            "{stop_text}\n"
            f"Rules: {_LEVELS} For HOLD the four price fields are null. BUY needs stop_loss < entry < "
            "take_profit_conservative <= take_profit_aggressive; SELL the mirror. timeframe_alignment is single "
            "when one chart was analysed. No Markdown, no code fences, no text before the JSON. "
            f"{_NO_ORDERS}"
        ),
    ),
]


@dataclass
class TeamMessage:
    seq: int
    agent: str
    kind: str
    content: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class TeamResult:
    decision: Decision
    error: str | None
    messages: list[TeamMessage]
    stop_reason: str
    concluded: bool
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_by_model: dict[str, tuple[int, int]] = field(default_factory=dict)
    latency_ms: int = 0


class _JsonTool(FunctionTool):
    # FunctionTool hands a dict to the model as Python's repr (None, True, quotes); models read JSON better.
    def return_value_as_string(self, value: Any) -> str:
        return json.dumps(value, default=str) if isinstance(value, dict) else super().return_value_as_string(value)


class TeamTools:
    """What the tools may read: only data already in the run, nothing that acts."""

    def __init__(self, *, symbol: str, bars: pd.DataFrame | None, indicators: dict[str, float | None] | None) -> None:
        self.symbol = symbol
        self._bars = bars
        self._indicators = indicators

    def market_data(self) -> dict[str, Any]:
        bars = self._bars
        if bars is None or bars.empty:
            return {"symbol": self.symbol, "error": "This run has no bars"}
        if self._indicators is None:
            missing = [name for name in INDICATOR_NAMES if not set(indicator_columns([name])) <= set(bars.columns)]
            with_all = compute(bars, missing) if missing else bars
            self._indicators = latest_values(with_all, indicator_columns(INDICATOR_NAMES))
        closes = [round(float(c), 6) for c in bars["close"].iloc[-10:]]
        return {
            "symbol": self.symbol,
            "last_close": closes[-1],
            "last_date": iso_date(bars.index[-1]),
            "last_10_closes": closes,
            "indicators": self._indicators,
        }

    def risk(self, side: Literal["long", "short"], entry: float, stop: float, target: float) -> dict[str, Any]:
        """R = reward / risk and profit margin = reward / entry, for a long or a short (strategies.risk.rules)."""
        try:
            r, margin = reward_risk(side, entry, stop, target)
        except ValueError as exc:
            return {"r": None, "profit_margin": None, "valid": False, "reason": str(exc)}
        note = "below 1: the reward does not pay for the risk" if r < 1 else "at least 1"
        return {"r": round(r, 4), "profit_margin": round(margin, 6), "valid": True, "reason": f"R {note}"}

    def function_tools(self) -> dict[str, FunctionTool]:
        return {
            "market_data": _JsonTool(
                self.market_data,
                name="market_data",
                description="The run's market data: symbol, last close and date, the last 10 closes and the latest "
                "indicator values. Takes no arguments.",
            ),
            "risk": _JsonTool(
                self.risk,
                name="risk",
                description="Reward/risk of a trade, computed in code. side is long or short; returns r (reward "
                "divided by risk), profit_margin (reward divided by entry), valid (false when the stop or the "
                "target is on the wrong side of the entry) and a reason.",
            ),
        }


def model_client_for(model: str) -> ChatCompletionClient:
    """A client for any OpenAI-compatible endpoint, configured like the other AI steps."""
    extra = {"base_url": settings.LLM_BASE_URL} if settings.LLM_BASE_URL else {}
    return OpenAIChatCompletionClient(
        model=model,
        api_key=(settings.LLM_API_KEYS or [NO_KEY])[0],
        timeout=float(settings.LLM_TIMEOUT_S),
        max_retries=int(settings.LLM_MAX_RETRIES),
        max_tokens=int(settings.LLM_MAX_OUTPUT_TOKENS),
        model_info=MODEL_INFO,
        **extra,
    )


def team_run(
    *,
    task: str,
    images: Sequence[bytes] = (),
    agents: Sequence[AgentSpec],
    mode: Mode,
    max_messages: int,
    stop_text: str,
    timeout_s: float,
    token_budget: int | None,
    tools: TeamTools,
    client_for: Callable[[str], ChatCompletionClient] | None = None,
    selector_client: ChatCompletionClient | None = None,
) -> TeamResult:
    """Run the team to a decision; HOLD with the error on any failure. Raises only for invalid arguments."""
    if not agents or mode not in ("round_robin", "selector") or max_messages < 1 or timeout_s <= 0 or not stop_text:
        raise ValueError("team_run needs agents, a known mode, max_messages >= 1, timeout_s > 0 and a stop text")
    started = time.monotonic()
    progress = _Progress()
    names = [spec.name for spec in agents]
    error = f"Agent names must be unique: {', '.join(names)}" if len(set(names)) < len(names) else None
    if error is None:
        try:
            progress.stop_reason = asyncio.run(
                _run(
                    progress,
                    task=task,
                    images=images,
                    specs=agents,
                    mode=mode,
                    max_messages=max_messages,
                    stop_text=stop_text,
                    timeout_s=timeout_s,
                    token_budget=token_budget,
                    tools=tools,
                    client_for=client_for or model_client_for,
                    selector_client=selector_client,
                )
            )
        except _Hung:
            error = f"The agent team did not end within {timeout_s + GUARD_S:g} seconds"
        except Exception as exc:  # anything a model, a client or the runtime does is HOLD, never a crash
            # The runtime re-raises an agent's error with its traceback; the first line says what happened.
            first = f"{type(exc).__name__}: {exc}".split("\nTraceback")[0]
            error = f"The agent team failed: {_one_line(_scrub(first, settings.LLM_API_KEYS))}"
    stop_reason = progress.stop_reason or error or "unknown"
    concluded = error is None and f"Text '{stop_text}' mentioned" in stop_reason
    if error is None and not concluded:
        error = f"The agent team did not conclude: {stop_reason}"
    usage_problems: list[str] = []
    messages = _team_messages(progress.messages, usage_problems)
    selector_tokens = _usage(*progress.selector_tokens, "the selector", usage_problems)
    if usage_problems:
        # Whatever the team concluded: a reply with a usage that is no count is refused, as in the model client.
        usage_error = f"{USAGE_INVALID}: {'; '.join(usage_problems)}"
        error = usage_error + (f"; and: {error}" if error else "")
    decision, error = (hold(error), error) if error else _final_decision(progress.messages, stop_text, set(names))

    model_of = {spec.name: spec.model or settings.LLM_MODEL for spec in agents}
    by_model: dict[str, tuple[int, int]] = {}
    # The selector is billed as LLM_MODEL: its calls are no agent's messages.
    charges = [(settings.LLM_MODEL, *selector_tokens)]
    charges += [(model_of.get(m.agent, settings.LLM_MODEL), m.prompt_tokens, m.completion_tokens) for m in messages]
    for model, prompt, completion in charges:
        if prompt or completion:
            before = by_model.get(model, (0, 0))
            by_model[model] = (before[0] + prompt, before[1] + completion)
    return TeamResult(
        decision=decision,
        error=error,
        messages=messages,
        stop_reason=stop_reason,
        concluded=concluded,
        prompt_tokens=sum(p for p, _ in by_model.values()),
        completion_tokens=sum(c for _, c in by_model.values()),
        tokens_by_model=by_model,
        latency_ms=round((time.monotonic() - started) * 1000),
    )


class _Hung(Exception):
    """The run outlived its time limit and the guard: a model call that never returns."""


@dataclass
class _Progress:
    """What a run has produced so far, kept when the run is cut short."""

    messages: list[Message] = field(default_factory=list)
    stop_reason: str | None = None
    selector_tokens: tuple[int, int] = (0, 0)


def build_agents(
    specs: Sequence[AgentSpec],
    tools: TeamTools,
    client_for: Callable[[str], ChatCompletionClient],
    stop_text: str = DEFAULT_STOP_TEXT,
) -> tuple[list[AssistantAgent], dict[str, ChatCompletionClient]]:
    """One assistant per spec with only its named tools, and the clients by model (one per model)."""
    available = tools.function_tools()
    clients: dict[str, ChatCompletionClient] = {}
    agents = []
    for spec in specs:
        model = spec.model or settings.LLM_MODEL
        if model not in clients:
            clients[model] = client_for(model)
        agents.append(
            AssistantAgent(
                spec.name,
                model_client=clients[model],
                tools=[available[name] for name in dict.fromkeys(spec.tools)] or None,
                # The selector picks speakers by these descriptions.
                description=spec.system_prompt.splitlines()[0][:300],
                system_message=spec.system_prompt.replace("{stop_text}", stop_text),
                reflect_on_tool_use=True,
            )
        )
    return agents, clients


async def _run(
    progress: _Progress,
    *,
    task: str,
    images: Sequence[bytes],
    specs: Sequence[AgentSpec],
    mode: Mode,
    max_messages: int,
    stop_text: str,
    timeout_s: float,
    token_budget: int | None,
    tools: TeamTools,
    client_for: Callable[[str], ChatCompletionClient],
    selector_client: ChatCompletionClient | None,
) -> str | None:
    """Build and run the team, adding every message to `progress` as it comes; autogen's stop reason."""
    clients: dict[str, ChatCompletionClient] = {}
    selector: ChatCompletionClient | None = None
    selector_start: tuple[int, int] | None = None
    try:
        message: TextMessage | MultiModalMessage = TextMessage(content=task, source="user")
        if images:
            pictures = [Image.from_pil(PILImage.open(io.BytesIO(data))) for data in images]
            message = MultiModalMessage(content=[task, *pictures], source="user")
        agents, clients = build_agents(specs, tools, client_for, stop_text)
        termination = (
            MaxMessageTermination(max_messages)
            # Agents only: the task itself tells the executor to write the stop word.
            | TextMentionTermination(stop_text, sources=[spec.name for spec in specs])
            | TimeoutTermination(timeout_s)
        )
        if token_budget:
            termination |= TokenUsageTermination(max_total_token=token_budget)
        if mode == "selector":
            selector = selector_client or client_for(settings.LLM_MODEL)
            start = selector.total_usage()  # a live object in some clients: copy the numbers
            selector_start = (start.prompt_tokens, start.completion_tokens)
            team = SelectorGroupChat(agents, model_client=selector, termination_condition=termination)
        else:
            team = RoundRobinGroupChat(agents, termination_condition=termination)
        consumer = asyncio.ensure_future(_consume(team.run_stream(task=message), progress))
        done, _ = await asyncio.wait({consumer}, timeout=timeout_s + GUARD_S)
        if not done:
            # Cancelling the stream alone (as wait_for does) waits for the runtime to go idle, which a hung model
            # call never lets it do: cancel every task of this loop (it is ours) and let them unwind.
            others = [pending for pending in asyncio.all_tasks() if pending is not asyncio.current_task()]
            for pending in others:
                pending.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            raise _Hung
        return consumer.result()
    finally:
        # A client shared with an agent would also count the agent's calls.
        if selector is not None and selector_start is not None and selector not in clients.values():
            end = selector.total_usage()
            progress.selector_tokens = (
                end.prompt_tokens - selector_start[0],
                end.completion_tokens - selector_start[1],
            )
        for client in {id(c): c for c in [*clients.values(), selector] if c is not None}.values():
            with contextlib.suppress(Exception):  # closing must not hide the run's own outcome
                await client.close()


async def _consume(stream: AsyncGenerator[Message | TaskResult, None], progress: _Progress) -> str | None:
    stop_reason = None
    async for item in stream:
        if isinstance(item, TaskResult):
            stop_reason = item.stop_reason
        elif not isinstance(item, ModelClientStreamingChunkEvent):
            progress.messages.append(item)
    return stop_reason


def _arguments(call: FunctionCall) -> str:
    try:
        parsed = strict_loads(call.arguments or "{}")
    except ValueError:  # shown as the model wrote it, a repeated key included
        return call.arguments
    if not isinstance(parsed, dict):
        return call.arguments
    return ", ".join(f"{key}={json.dumps(value)}" for key, value in parsed.items())


def _usage(prompt: object, completion: object, where: str, problems: list[str]) -> tuple[int, int]:
    """Token counts as reported, each invalid one (negative, say) as 0 with the problem added to `problems`."""
    counts = []
    for name, value in (("prompt_tokens", prompt), ("completion_tokens", completion)):
        try:
            counts.append(token_count(value, name))
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            counts.append(0)
    return counts[0], counts[1]


def _team_messages(collected: list[Message], usage_problems: list[str]) -> list[TeamMessage]:
    """The conversation as recorded; token counts that are no counts are added to `usage_problems` and count 0."""
    calls: dict[str, str] = {}
    out = []
    for seq, item in enumerate(collected, start=1):
        if isinstance(item, ToolCallRequestEvent):
            calls.update({call.id: f"{call.name}({_arguments(call)})" for call in item.content})
            content = "\n".join(calls[call.id] for call in item.content)
        elif isinstance(item, ToolCallExecutionEvent):
            content = "\n".join(
                f"{calls.get(r.call_id, r.name + '(...)')} -> {'error: ' if r.is_error else ''}{r.content}"
                for r in item.content
            )
        elif isinstance(item, MultiModalMessage):
            content = "\n".join(part if isinstance(part, str) else "[image]" for part in item.content)
        else:
            content = item.to_text()
        used = item.models_usage
        prompt, completion = (
            _usage(used.prompt_tokens, used.completion_tokens, f"message {seq} ({item.source})", usage_problems)
            if used
            else (0, 0)
        )
        out.append(
            TeamMessage(
                seq=seq,
                agent=item.source,
                kind=type(item).__name__,
                content=content,
                prompt_tokens=prompt,
                completion_tokens=completion,
            )
        )
    return out


def _final_decision(collected: list[Message], stop_text: str, agents: set[str]) -> tuple[Decision, str | None]:
    """The decision in the last agent text with the stop word: the whole text or one ```json block, nothing else."""
    text = next(
        (
            m.content
            for m in reversed(collected)
            if isinstance(m, TextMessage) and m.source in agents and stop_text in m.content
        ),
        None,
    )
    if text is None:
        return _failed(f"No agent message contains {stop_text}")
    # The stop word's own line, allowing Markdown emphasis around it (never backticks: they may close a fence).
    stop_line = re.compile(rf"^[ \t*_#>]*{re.escape(stop_text)}[ \t*_.!]*$", re.MULTILINE)
    body = stop_line.sub("", text).strip()
    # A model may put the stop word right after the closing brace rather than on its own line.
    body = body.removesuffix(stop_text).strip()
    fences = _FENCE.findall(body)
    if body.startswith("{"):
        candidate = body
    elif len(fences) == 1:
        candidate = fences[0]
    else:
        return _failed(f"The final message is not one JSON object (found {len(fences)} ```json blocks)")
    try:
        data = strict_loads(candidate)
    except AmbiguousJson as exc:
        return _failed(f"The final decision is ambiguous: {exc}")
    except ValueError as exc:
        return _failed(f"The final message is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return _failed("The final message is not a JSON object")
    try:
        return Decision.model_validate(data), None
    except ValidationError as exc:
        return _failed(f"The final decision is invalid: {validation_message(exc)}")


def _failed(error: str) -> tuple[Decision, str]:
    return hold(error), error
