"""The AutoGen agent team, run for real against AutoGen's ReplayChatCompletionClient (no network)."""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Any

import pandas as pd
import pytest
from autogen_agentchat.agents import AssistantAgent, CodeExecutorAgent
from autogen_core import FunctionCall
from autogen_core.models import CreateResult, RequestUsage
from autogen_ext.models.openai import OpenAIChatCompletionClient
from autogen_ext.models.replay import ReplayChatCompletionClient
from PIL import Image as PILImage
from pydantic import ValidationError

from brokers.marketdata.bars import market_source
from strategies.ai import team
from strategies.ai.team import DEFAULT_AGENTS, DEFAULT_STOP_TEXT, AgentSpec, TeamTools, team_run
from strategies.tests.llm_server import fake_llm, llm_settings

STOP = DEFAULT_STOP_TEXT
BUY = {
    "action": "BUY",
    "entry": 100.0,
    "stop_loss": 95.0,
    "take_profit_conservative": 110.0,
    "take_profit_aggressive": 120.0,
    "confidence": 0.7,
    "timeframe_alignment": "single",
    "key_levels": {"support": [95.0], "resistance": [110.0, 120.0]},
    "reasoning": "Uptrend above the 50-day average; R 2 to the first target.",
}
FINAL = f"{json.dumps(BUY)}\n{STOP}"
TASK = f"Decide whether to trade AAPL. The executor ends with one JSON decision and then {STOP} on its own line."
# Each default agent on its own model, so each has its own replay and tokens_by_model can be checked.
MODELS = {"technical_analyst": "model-analyst", "risk_manager": "model-risk", "executor": "model-exec"}


def replay(*responses: str | CreateResult) -> ReplayChatCompletionClient:
    return ReplayChatCompletionClient(list(responses), model_info=team.MODEL_INFO)


def tool_call(name: str, **arguments: Any) -> CreateResult:
    call = FunctionCall(id=f"call-{name}", name=name, arguments=json.dumps(arguments))
    return CreateResult(
        finish_reason="function_calls",
        content=[call],
        usage=RequestUsage(prompt_tokens=7, completion_tokens=4),
        cached=False,
    )


def agents_on_models() -> list[AgentSpec]:
    return [spec.model_copy(update={"model": MODELS[spec.name]}) for spec in DEFAULT_AGENTS]


def bars(closes: list[float]) -> pd.DataFrame:
    index = pd.date_range("2024-01-02", periods=len(closes), freq="B", name="timestamp")
    close = pd.Series(closes, index=index, dtype=float)
    return pd.DataFrame(
        {"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 1000.0}, index=index
    )


def run(clients: dict[str, ReplayChatCompletionClient], **overrides: Any) -> team.TeamResult:
    arguments: dict[str, Any] = {
        "task": TASK,
        "agents": agents_on_models(),
        "mode": "round_robin",
        "max_messages": 12,
        "stop_text": STOP,
        "timeout_s": 30,
        "token_budget": None,
        "tools": TeamTools(symbol="AAPL", bars=bars([98, 99, 100]), indicators=None),
        "client_for": clients.__getitem__,
    }
    return team_run(**{**arguments, **overrides})


def chat(result: team.TeamResult) -> list[tuple[str, str]]:
    return [(m.agent, m.kind) for m in result.messages]


def test_round_robin_team_concludes_with_the_executors_decision():
    clients = {
        "model-analyst": replay("Uptrend; long at 100, stop 95 under support, targets 110 and 120."),
        "model-risk": replay("Approved: long 100, stop 95, R 2 and 4."),
        "model-exec": replay(FINAL),
    }
    result = run(clients)

    assert chat(result) == [
        ("user", "TextMessage"),
        ("technical_analyst", "TextMessage"),
        ("risk_manager", "TextMessage"),
        ("executor", "TextMessage"),
    ]
    assert [m.seq for m in result.messages] == [1, 2, 3, 4]
    assert result.messages[0].content == TASK
    assert result.messages[3].content == FINAL
    assert result.concluded and result.error is None
    assert f"Text '{STOP}' mentioned" in result.stop_reason
    assert result.decision.model_dump(mode="json") == BUY
    for model, client in clients.items():
        usage = client.total_usage()
        assert result.tokens_by_model[model] == (usage.prompt_tokens, usage.completion_tokens)
    assert result.prompt_tokens == sum(c.total_usage().prompt_tokens for c in clients.values()) > 0
    assert result.completion_tokens == sum(c.total_usage().completion_tokens for c in clients.values()) > 0
    assert result.prompt_tokens == sum(m.prompt_tokens for m in result.messages)
    assert result.latency_ms >= 0


def test_default_model_and_stop_word_in_system_prompts(settings):
    settings.LLM_MODEL = "the-default"
    shared = replay("Looks bullish.", "Approved.", FINAL.replace(STOP, "DONE"))
    result = run({"the-default": shared}, agents=DEFAULT_AGENTS, stop_text="DONE")

    assert result.concluded and result.decision.action == "BUY"
    assert list(result.tokens_by_model) == ["the-default"]
    executor_system = shared.create_calls[2]["messages"][0].content
    assert "DONE" in executor_system and "{stop_text}" not in executor_system


def test_tools_run_in_code_on_the_runs_bars():
    df = market_source("bundled").bars(symbol="AAPL", bar="1d", period="1y")
    clients = {
        "model-analyst": replay(tool_call("market_data"), "Trend up; long at 100, stop 95, target 110."),
        "model-risk": replay(tool_call("risk", side="long", entry=100, stop=95, target=110), "R is 2: approved."),
        "model-exec": replay(FINAL),
    }
    result = run(clients, tools=TeamTools(symbol="AAPL", bars=df, indicators=None))

    assert chat(result) == [
        ("user", "TextMessage"),
        ("technical_analyst", "ToolCallRequestEvent"),
        ("technical_analyst", "ToolCallExecutionEvent"),
        ("technical_analyst", "TextMessage"),
        ("risk_manager", "ToolCallRequestEvent"),
        ("risk_manager", "ToolCallExecutionEvent"),
        ("risk_manager", "TextMessage"),
        ("executor", "TextMessage"),
    ]
    request, execution = result.messages[1].content, result.messages[2].content
    assert request == "market_data()"
    assert execution.startswith("market_data() -> ")
    data = json.loads(execution.removeprefix("market_data() -> "))
    assert data["symbol"] == "AAPL"
    assert data["last_close"] == pytest.approx(float(df["close"].iloc[-1]))
    assert data["last_10_closes"] == pytest.approx(df["close"].iloc[-10:].tolist())
    assert data["last_date"] == f"{df.index[-1]:%Y-%m-%d}"
    assert data["indicators"]["rsi_14"] is not None and data["indicators"]["sma_200"] is not None
    assert result.messages[4].content == 'risk(side="long", entry=100, stop=95, target=110)'
    risk = json.loads(result.messages[5].content.split(" -> ", 1)[1])
    assert risk == {"r": 2.0, "profit_margin": 0.1, "valid": True, "reason": "R at least 1"}
    # The tool results reached the models (the reflection call sees them) and the team still concluded.
    assert "profit_margin" in str(clients["model-risk"].create_calls[1]["messages"])
    assert result.concluded and result.decision.action == "BUY"
    assert result.messages[1].prompt_tokens == 7 and result.messages[1].completion_tokens == 4


def test_market_data_prefers_the_runs_indicator_values():
    tools = TeamTools(symbol="MSFT", bars=bars([1.5, 2.5, 3.25]), indicators={"rsi_14": 55.5})
    assert tools.market_data() == {
        "symbol": "MSFT",
        "last_close": 3.25,
        "last_date": "2024-01-04",
        "last_10_closes": [1.5, 2.5, 3.25],
        "indicators": {"rsi_14": 55.5},
    }
    assert TeamTools(symbol="MSFT", bars=None, indicators=None).market_data()["error"] == "This run has no bars"


@pytest.mark.parametrize(
    ("side", "entry", "stop", "target", "expected"),
    [
        ("long", 100, 95, 110, {"r": 2.0, "profit_margin": 0.1, "valid": True}),
        ("short", 100, 105, 90, {"r": 2.0, "profit_margin": 0.1, "valid": True}),
        ("long", 100, 90, 105, {"r": 0.5, "profit_margin": 0.05, "valid": True}),
        ("long", 100, 105, 110, {"r": None, "profit_margin": None, "valid": False}),
        ("short", 100, 95, 90, {"r": None, "profit_margin": None, "valid": False}),
        ("long", 100, 95, 99, {"r": None, "profit_margin": None, "valid": False}),
        ("long", 0, -5, 10, {"r": None, "profit_margin": None, "valid": False}),
    ],
)
def test_risk_tool_computes_r_in_code(side, entry, stop, target, expected):
    out = TeamTools(symbol="X", bars=None, indicators=None).risk(side, entry, stop, target)
    assert {k: out[k] for k in expected} == expected
    assert out["reason"]


def test_risk_tool_reasons_name_the_problem():
    tools = TeamTools(symbol="X", bars=None, indicators=None)
    assert tools.risk("long", 100, 105, 110)["reason"] == (
        "stop 105.00 is above the entry 100.00: a long's stop must be below its entry"
    )
    assert tools.risk("short", 100, 105, 101)["reason"] == (
        "target 101.00 is above the entry 100.00: a short's target must be below its entry"
    )
    assert "below 1" in tools.risk("long", 100, 90, 105)["reason"]


def test_a_team_that_never_concludes_is_hold_within_max_messages():
    talk = [f"Still thinking ({i})." for i in range(10)]
    clients = {model: replay(*talk) for model in MODELS.values()}
    # The task names the stop word; only an agent saying it ends the chat.
    result = run(clients, max_messages=5)

    chat_messages = [m for m in result.messages if not m.kind.endswith("Event")]
    assert len(chat_messages) == 5  # the task counts, as in AutoGen
    assert [m.agent for m in result.messages] == [
        "user",
        "technical_analyst",
        "risk_manager",
        "executor",
        "technical_analyst",
    ]
    assert not result.concluded
    assert result.decision.action == "HOLD" and result.decision.entry is None
    assert (
        result.error
        == "The agent team did not conclude: Maximum number of messages 5 reached, current message count: 5"
    )
    assert result.error in result.decision.reasoning


def test_the_stop_word_ends_the_chat_right_after_the_executor():
    clients = {
        "model-analyst": replay("Long at 100.", "never said"),
        "model-risk": replay("Approved.", "never said"),
        "model-exec": replay(FINAL, "never said"),
    }
    result = run(clients, max_messages=40)

    assert result.messages[-1].agent == "executor" and len(result.messages) == 4
    assert all(len(client.create_calls) == 1 for client in clients.values())
    assert result.concluded


def test_an_earlier_agent_saying_the_stop_word_is_no_decision():
    clients = {"model-analyst": replay(f"Long at 100. {STOP}"), "model-risk": replay(), "model-exec": replay()}
    result = run(clients)

    assert len(result.messages) == 2 and result.concluded
    assert result.decision.action == "HOLD"
    assert result.error == "The final message is not one JSON object (found 0 ```json blocks)"


class SlowReplay(ReplayChatCompletionClient):
    """A model that takes `delay` seconds per answer."""

    def __init__(self, *responses: str, delay: float) -> None:
        super().__init__(list(responses), model_info=team.MODEL_INFO)
        self.delay = delay

    async def create(self, *args: Any, **kwargs: Any) -> CreateResult:
        await asyncio.sleep(self.delay)
        return await super().create(*args, **kwargs)


def test_timeout_termination_is_hold():
    clients = {model: SlowReplay("Thinking.", FINAL, delay=0.3) for model in MODELS.values()}
    result = run(clients, timeout_s=0.5)

    # Checked after each message: the risk manager's (at 0.6 s), or the analyst's on a very slow machine.
    assert [m.agent for m in result.messages][:2] == ["user", "technical_analyst"]
    assert "executor" not in [m.agent for m in result.messages]
    assert not result.concluded and result.decision.action == "HOLD"
    assert result.error == "The agent team did not conclude: Timeout of 0.5 seconds reached"


def test_a_model_call_that_never_returns_is_cut_by_the_guard(monkeypatch):
    monkeypatch.setattr(team, "GUARD_S", 0.3)
    clients = {model: SlowReplay(FINAL, delay=3600) for model in MODELS.values()}
    started = time.monotonic()
    result = run(clients, timeout_s=0.2)

    assert time.monotonic() - started < 5
    assert result.error == "The agent team did not end within 0.5 seconds"
    assert result.stop_reason == result.error
    assert not result.concluded and result.decision.action == "HOLD"
    assert chat(result) == [("user", "TextMessage")]  # what came before the cut is kept


def test_token_budget_termination_is_hold():
    clients = {model: replay("Long at 100.", FINAL) for model in MODELS.values()}
    result = run(clients, token_budget=100)

    assert [m.agent for m in result.messages] == ["user", "technical_analyst"]
    assert result.prompt_tokens + result.completion_tokens >= 100
    assert not result.concluded and result.decision.action == "HOLD"
    assert result.error.startswith("The agent team did not conclude: Token usage limit reached")


def executor_only(final: str, **overrides: Any) -> team.TeamResult:
    executor = DEFAULT_AGENTS[2].model_copy(update={"model": "model-exec"})
    return run({"model-exec": replay(final)}, agents=[executor], **overrides)


def test_an_invalid_final_decision_is_hold_with_the_validation_error():
    wrong_side = {**BUY, "stop_loss": 101.0}
    result = executor_only(f"{json.dumps(wrong_side)}\n{STOP}")

    assert result.concluded
    assert result.decision.action == "HOLD"
    assert (
        result.error == "The final decision is invalid: answer: Value error, BUY stop_loss 101 must be below entry 100"
    )
    assert result.error in result.decision.reasoning


@pytest.mark.parametrize(
    "final",
    [
        f"{json.dumps(BUY)}\n{STOP}",
        f"{json.dumps(BUY, indent=1)}\n\n**{STOP}**\n",
        f"{json.dumps(BUY)} {STOP}",
        f"Here is the decision:\n```json\n{json.dumps(BUY, indent=2)}\n```\n{STOP}",
        f"{STOP}\n```\n{json.dumps(BUY)}\n```",
    ],
)
def test_accepted_final_answers(final):
    result = executor_only(final)
    assert result.error is None and result.decision.model_dump(mode="json") == BUY


@pytest.mark.parametrize(
    ("final", "error"),
    [
        (f"Decision: {json.dumps(BUY)}\n{STOP}", "The final message is not one JSON object (found 0 ```json blocks)"),
        (
            f"```json\n{json.dumps(BUY)}\n```\n```json\n{json.dumps(BUY)}\n```\n{STOP}",
            "The final message is not one JSON object (found 2 ```json blocks)",
        ),
        ('{"action": "BUY",\n' + STOP, "The final message is not valid JSON: "),
        (f"[{json.dumps(BUY)}]\n{STOP}", "The final message is not one JSON object (found 0 ```json blocks)"),
        (json.dumps({**BUY, "entry": "100"}) + f"\n{STOP}", "The final decision is invalid: entry: Input should be"),
    ],
)
def test_rejected_final_answers(final, error):
    result = executor_only(final)
    assert result.concluded and result.decision.action == "HOLD"
    assert result.error.startswith(error)


# Safety rule 2: a final decision that gives a key twice says two things; json.loads alone would keep the last.
HOLD_THEN_BUY = '{"action": "HOLD", ' + json.dumps(BUY)[1:]


@pytest.mark.parametrize(
    ("final", "error"),
    [
        (f"{HOLD_THEN_BUY}\n{STOP}", 'the key "action" appears twice in one object ("HOLD", then "BUY")'),
        (f"```json\n{HOLD_THEN_BUY}\n```\n{STOP}", 'the key "action" appears twice in one object ("HOLD", then "BUY")'),
        (
            json.dumps(BUY).replace('"resistance": [', '"resistance": [130.0], "resistance": [') + f"\n{STOP}",
            'the key "resistance" appears twice in one object ([130.0], then [110.0, 120.0])',
        ),
    ],
    ids=["action", "action-fenced", "nested"],
)
def test_a_key_given_twice_in_the_final_decision_is_hold(final, error):
    result = executor_only(final)
    assert result.concluded and result.decision.action == "HOLD"
    assert result.error == f"The final decision is ambiguous: {error}; an answer that says two things is no answer"
    assert result.error in result.decision.reasoning


def test_a_key_given_twice_in_tool_arguments_is_shown_as_written():
    call = FunctionCall(id="call-risk", name="risk", arguments='{"side": "long", "side": "short"}')
    assert team._arguments(call) == '{"side": "long", "side": "short"}'


LIMIT = "not a token count (a whole number from 0 to 100 000 000)"


def test_a_negative_token_count_is_hold_and_never_a_negative_charge():
    negative = CreateResult(
        finish_reason="stop", content=FINAL, usage=RequestUsage(prompt_tokens=10, completion_tokens=-500), cached=False
    )
    result = executor_only(negative)

    assert result.decision.action == "HOLD"
    assert result.error == (
        f"The model server's usage report is invalid: message 2 (executor): completion_tokens is -500, {LIMIT}"
    )
    assert result.error in result.decision.reasoning
    assert [(m.prompt_tokens, m.completion_tokens) for m in result.messages] == [(0, 0), (10, 0)]
    assert result.tokens_by_model == {"model-exec": (10, 0)}


def test_a_negative_token_count_from_the_selector_is_hold():
    clients = {"model-analyst": replay("Long."), "model-risk": replay("Approved."), "model-exec": replay(FINAL)}
    pick = CreateResult(
        finish_reason="stop",
        content="executor",
        usage=RequestUsage(prompt_tokens=0, completion_tokens=-40),
        cached=False,
    )
    result = run(clients, mode="selector", selector_client=replay(pick))

    assert [m.agent for m in result.messages] == ["user", "executor"]
    assert result.decision.action == "HOLD"
    assert result.error.startswith(
        f"The model server's usage report is invalid: the selector: completion_tokens is -40, {LIMIT}"
    )
    assert all(p >= 0 and c >= 0 for p, c in result.tokens_by_model.values())


def test_a_model_error_is_hold_and_never_raises():
    # The analyst's replay is empty: its client raises, as a model endpoint that fails would.
    clients = {"model-analyst": replay(), "model-risk": replay("x"), "model-exec": replay(FINAL)}
    result = run(clients)

    assert result.decision.action == "HOLD" and not result.concluded
    assert result.error == "The agent team failed: RuntimeError: ValueError: No more mock responses available"
    assert result.stop_reason == result.error
    assert chat(result) == [("user", "TextMessage")]


def test_a_client_that_cannot_be_built_is_hold():
    def broken(model: str) -> ReplayChatCompletionClient:
        raise ConnectionError(f"no endpoint for {model}")

    result = run({}, client_for=broken)
    assert result.decision.action == "HOLD"
    assert result.error == "The agent team failed: ConnectionError: no endpoint for model-analyst"


def test_duplicate_agent_names_are_hold():
    spec = DEFAULT_AGENTS[2]
    result = run({}, agents=[spec, spec])
    assert result.decision.action == "HOLD" and result.messages == []
    assert result.error == "Agent names must be unique: executor, executor"


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="known mode"):
        run({}, mode="swarm")
    with pytest.raises(ValueError, match="max_messages"):
        run({}, max_messages=0)


def test_images_go_with_the_task_as_a_multimodal_message():
    png = io.BytesIO()
    PILImage.new("RGB", (8, 8), "white").save(png, format="PNG")
    clients = {
        "model-analyst": replay("Chart: uptrend."),
        "model-risk": replay("Approved."),
        "model-exec": replay(FINAL),
    }
    result = run(clients, images=[png.getvalue(), png.getvalue()])

    assert result.messages[0].kind == "MultiModalMessage"
    assert result.messages[0].content == f"{TASK}\n[image]\n[image]"
    task_sent = clients["model-analyst"].create_calls[0]["messages"][1]
    assert sum(not isinstance(part, str) for part in task_sent.content) == 2
    assert result.concluded and result.decision.action == "BUY"

    broken = run({}, images=[b"not an image"])
    assert broken.decision.action == "HOLD" and broken.error.startswith("The agent team failed: UnidentifiedImageError")


def test_selector_mode_lets_the_selector_pick_the_speakers():
    clients = {
        "model-analyst": replay("Long at 100, stop 95."),
        "model-risk": replay("Before any analysis: keep risk under 1%."),
        "model-exec": replay(FINAL),
    }
    selector = replay("risk_manager", "technical_analyst", "executor")
    result = run(clients, mode="selector", selector_client=selector)

    assert [m.agent for m in result.messages] == ["user", "risk_manager", "technical_analyst", "executor"]
    assert len(selector.create_calls) == 3
    assert result.concluded and result.decision.action == "BUY"
    # Selector calls are no agent's messages; their tokens are billed to LLM_MODEL.
    picked = selector.total_usage()
    assert result.prompt_tokens == sum(m.prompt_tokens for m in result.messages) + picked.prompt_tokens
    assert result.tokens_by_model["gpt-4o-mini"] == (picked.prompt_tokens, picked.completion_tokens)


def test_selector_defaults_to_a_client_for_the_default_model(settings):
    settings.LLM_MODEL = "the-default"
    clients = {
        "model-analyst": replay("Long at 100."),
        "model-risk": replay("Approved."),
        "model-exec": replay(FINAL),
        "the-default": replay("technical_analyst", "risk_manager", "executor"),
    }
    result = run(clients, mode="selector")
    assert [m.agent for m in result.messages] == ["user", "technical_analyst", "risk_manager", "executor"]
    assert result.concluded


# Safety rule 5: an AI step has no tool that places orders, and no agent runs code.


def tool_names(agent: AssistantAgent) -> set[str]:
    async def names() -> set[str]:
        return {tool["name"] for workbench in agent._workbench for tool in await workbench.list_tools()}

    return asyncio.run(names())


def test_agents_get_only_their_named_read_only_tools():
    specs = [
        *DEFAULT_AGENTS,
        AgentSpec(name="both", system_prompt="x", tools=["market_data", "risk", "risk"]),
        AgentSpec(name="none", system_prompt="x"),
    ]
    tools = TeamTools(symbol="AAPL", bars=bars([1, 2, 3]), indicators=None)
    agents, clients = team.build_agents(specs, tools, lambda model: replay())

    assert [tool_names(agent) for agent in agents] == [{"market_data"}, {"risk"}, set(), {"market_data", "risk"}, set()]
    assert list(clients) == ["gpt-4o-mini"]
    for agent in agents:
        assert type(agent) is AssistantAgent and not isinstance(agent, CodeExecutorAgent)
        assert tool_names(agent) <= {"market_data", "risk"}
    every_tool = set(tools.function_tools())
    assert every_tool == {"market_data", "risk"}
    assert not [name for name in every_tool if any(word in name for word in ("order", "trade", "place"))]


def test_agent_specs_accept_only_known_tools_and_identifier_names():
    with pytest.raises(ValidationError, match=r"tools\.0"):
        AgentSpec(name="trader", system_prompt="x", tools=["place_order"])
    for name in ("risk manager", "1st", "", "x" * 41, "user", "café"):
        with pytest.raises(ValidationError, match="must be 1-40 letters, digits or underscores"):
            AgentSpec(name=name, system_prompt="x")
    with pytest.raises(ValidationError, match="Extra inputs"):
        AgentSpec(name="a", system_prompt="x", code_execution=True)
    assert AgentSpec(name="_a1", system_prompt="x").tools == []


def test_default_agents_prompts_cover_the_decision_fields():
    names = [spec.name for spec in DEFAULT_AGENTS]
    assert names == ["technical_analyst", "risk_manager", "executor"]
    assert [spec.tools for spec in DEFAULT_AGENTS] == [["market_data"], ["risk"], []]
    executor = DEFAULT_AGENTS[2].system_prompt
    for word in (*BUY, "aligned", "mixed", "conflicting", "support", "resistance", "{stop_text}"):
        assert word in executor
    assert "below 1" in DEFAULT_AGENTS[1].system_prompt
    assert all("place orders" in spec.system_prompt for spec in DEFAULT_AGENTS)


def test_production_client_works_for_any_model_name(settings):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"
    settings.LLM_API_KEYS = []
    client = team.model_client_for("qwen2.5-vl:7b")
    assert isinstance(client, OpenAIChatCompletionClient)
    assert client.model_info["vision"] and client.model_info["function_calling"]
    assert not client.model_info["structured_output"]
    assert client._raw_config["base_url"] == "http://127.0.0.1:9/v1"
    assert client._raw_config["api_key"] == "not-needed"
    assert client._raw_config["max_retries"] == settings.LLM_MAX_RETRIES


def test_errors_never_carry_the_api_key(settings):
    settings.LLM_API_KEYS = ["sk-live-secret-123456"]

    def broken(model: str) -> ReplayChatCompletionClient:
        raise ConnectionError("401 for key sk-live-secret-123456")

    result = run({}, client_for=broken)
    assert result.error == "The agent team failed: ConnectionError: 401 for key ***"


def test_the_production_client_end_to_end(settings):
    """The real OpenAI client against a scripted server: tools, images and usage go over the wire."""
    with fake_llm() as fake:
        # The fake server answers as model "fake"; another name would only make autogen warn.
        llm_settings(settings, fake, max_retries=0, model="fake")
        call = {"id": "call-1", "type": "function", "function": {"name": "market_data", "arguments": "{}"}}
        fake.raw(
            {
                "id": "chatcmpl-tool",
                "object": "chat.completion",
                "created": 0,
                "model": "fake",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                        "finish_reason": "tool_calls",
                    }
                ],
                "usage": {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35},
            }
        )
        fake.reply("Uptrend; long at 100, stop 95, targets 110 and 120.", prompt_tokens=40, completion_tokens=10)
        fake.reply("Approved, R 2.", prompt_tokens=50, completion_tokens=5)
        fake.reply(FINAL, prompt_tokens=60, completion_tokens=70)
        png = io.BytesIO()
        PILImage.new("RGB", (8, 8), "white").save(png, format="PNG")
        result = team_run(
            task=TASK,
            images=[png.getvalue()],
            agents=DEFAULT_AGENTS,
            mode="round_robin",
            max_messages=12,
            stop_text=STOP,
            timeout_s=30,
            token_budget=40_000,
            tools=TeamTools(symbol="AAPL", bars=bars([98, 99, 100]), indicators={"rsi_14": 61.0}),
        )

    assert result.error is None and result.decision.model_dump(mode="json") == BUY
    assert result.tokens_by_model == {"fake": (180, 90)}
    analyst_first, analyst_reflection, risk, executor = fake.requests
    assert analyst_first["_auth"] == "Bearer test-key-1" and analyst_first["model"] == "fake"
    assert analyst_first["max_tokens"] == 1500
    assert [tool["function"]["name"] for tool in analyst_first["tools"]] == ["market_data"]
    assert [tool["function"]["name"] for tool in risk["tools"]] == ["risk"]
    assert "tools" not in executor
    task_parts = analyst_first["messages"][1]["content"]
    assert task_parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    tool_result = next(m for m in analyst_reflection["messages"] if m["role"] == "tool")
    assert json.loads(tool_result["content"])["last_close"] == 100.0


def test_the_production_client_refuses_a_negative_token_count(settings):
    """The real OpenAI client: a usage report the server got wrong is HOLD, and no count below zero is kept."""
    with fake_llm() as fake:
        llm_settings(settings, fake, max_retries=0, model="fake")
        fake.reply(FINAL, prompt_tokens=60, completion_tokens=-7000)
        result = team_run(
            task=TASK,
            agents=[DEFAULT_AGENTS[2]],
            mode="round_robin",
            max_messages=4,
            stop_text=STOP,
            timeout_s=30,
            token_budget=40_000,
            tools=TeamTools(symbol="AAPL", bars=bars([98, 99, 100]), indicators=None),
        )

    assert result.decision.action == "HOLD"
    assert result.error == (
        f"The model server's usage report is invalid: message 2 (executor): completion_tokens is -7000, {LIMIT}"
    )
    assert result.tokens_by_model == {"fake": (60, 0)}
