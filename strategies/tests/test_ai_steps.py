"""The AI steps inside real workflow runs: the offline analyst, a local OpenAI-compatible server
driven by the real `openai` client, HOLD on every failure, the records, the budget and the run page."""

import base64
import hashlib
import json
from decimal import Decimal

import pytest
from django.urls import reverse

from strategies.ai import llm as llm_client
from strategies.ai.schemas import Decision
from strategies.models import AiRecord, PromptTemplate
from strategies.selectors import ai_spent
from strategies.services import prompt_save, prompts_seed
from strategies.tests.llm_server import fake_llm, llm_settings
from workflows import engine, services
from workflows.artifacts.store import artifact_get
from workflows.models import Run, RunStatus

pytestmark = pytest.mark.usefixtures("eager_engine")

ANALYSIS = {
    "trend": "up",
    "bias": "bullish",
    "confidence": 0.7,
    "key_levels": {"support": [180.0, 175.5], "resistance": [195.0]},
    "signals": [{"indicator": "rsi_14", "reading": "RSI 61, rising", "bias": "bullish"}],
    "summary": "Higher highs above a rising SMA 50.",
}
DECISION = {
    "action": "BUY",
    "entry": 190.0,
    "stop_loss": 182.0,
    "take_profit_conservative": 202.0,
    "take_profit_aggressive": 215.0,
    "confidence": 0.65,
    "timeframe_alignment": "single",
    "key_levels": {"support": [182.0], "resistance": [202.0, 215.0]},
    "reasoning": "Breakout above resistance with momentum.",
}


def _single_graph(decide_params: dict | None = None) -> dict:
    def n(node_id, type_, **params):
        return {"id": node_id, "type": type_, "params": params}

    def e(source, source_port, target, target_port):
        return {"source": source, "source_port": source_port, "target": target, "target_port": target_port}

    return {
        "schema": 1,
        "params": {},
        "nodes": [
            n("fetch", "market.fetch_bars", symbol="{{symbol}}", period="1y", bar="1d"),
            n("chart", "strategies.render_chart", bars=120, width=800, height=600),
            n("analysis", "ai.analyze_chart"),
            n("decide", "ai.decide", **(decide_params or {})),
        ],
        "edges": [
            e("fetch", "bars", "chart", "bars"),
            e("chart", "chart", "analysis", "chart"),
            e("analysis", "analysis", "decide", "analysis"),
        ],
    }


def _run(user, graph: dict, *, symbol: str = "MSFT", **workflow_fields) -> Run:
    workflow = services.workflow_create(owner=user, name="AI", graph=graph)
    for name, value in workflow_fields.items():
        setattr(workflow, name, value)
    workflow.save()
    run = engine.run_start(workflow=workflow, user=user, symbol=symbol)
    return Run.objects.get(id=run.id)


def _outputs(run: Run, node_id: str) -> dict:
    return run.steps.get(node_id=node_id).outputs


@pytest.fixture
def llm(settings, monkeypatch):
    # Nothing waits, and nothing the client remembers per server leaks from another test.
    monkeypatch.setattr(llm_client, "_sleep", lambda s: None)
    monkeypatch.setattr(llm_client, "_prompt_only", set())
    monkeypatch.setattr(llm_client, "_key_index", {})
    with fake_llm() as fake:
        llm_settings(settings, fake, max_retries=0)
        yield fake


def test_offline_analyst_by_default_labelled_and_recorded(user, client, settings):
    settings.LLM_BASE_URL = ""
    run = _run(user, _single_graph())
    assert run.status == RunStatus.SUCCEEDED, run.error
    analysis, decision = _outputs(run, "analysis")["analysis"], _outputs(run, "decide")["decision"]
    assert analysis["analyst"] == decision["analyst"] == "offline"
    assert decision["action"] in {"BUY", "SELL", "HOLD"}
    Decision.model_validate({k: decision[k] for k in Decision.model_fields})
    records = list(AiRecord.objects.filter(run=run).order_by("id"))
    assert [(r.kind, r.analyst, r.total_tokens) for r in records] == [
        ("analysis", "offline", 0),
        ("decision", "offline", 0),
    ]
    assert records[1].action == decision["action"]
    client.force_login(user)
    page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert "Offline rule-based analyst (no AI model)" in page


def test_model_decision_with_the_chart_image_recorded(user, llm):
    llm.reply_json(ANALYSIS, prompt_tokens=1200, completion_tokens=80)
    llm.reply_json(DECISION, prompt_tokens=900, completion_tokens=120)
    run = _run(user, _single_graph())
    assert run.status == RunStatus.SUCCEEDED, run.error

    # The analysis request carried the very PNG the chart step stored.
    png_key = _outputs(run, "chart")["chart"]["png"]
    png = artifact_get(key=png_key)
    parts = llm.requests[0]["messages"][1]["content"]
    url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
    assert url.startswith("data:image/png;base64,") and base64.b64decode(url.split(",", 1)[1]) == png
    assert "MSFT" in next(p["text"] for p in parts if p["type"] == "text")

    decision = _outputs(run, "decide")["decision"]
    assert (decision["action"], decision["entry"], decision["stop_loss"], decision["error"]) == (
        "BUY",
        190.0,
        182.0,
        None,
    )
    assert decision["analyst"] == "model" and decision["model"] == "test-vision"
    analysis_record, decision_record = AiRecord.objects.filter(run=run).order_by("id")
    assert analysis_record.prompt == PromptTemplate.objects.get(key="chart_daily", version=1)
    assert analysis_record.images == [{"key": png_key, "bytes": len(png), "sha256": hashlib.sha256(png).hexdigest()}]
    assert json.loads(analysis_record.raw_response) == ANALYSIS
    assert (analysis_record.prompt_tokens, analysis_record.completion_tokens) == (1200, 80)
    # 1200 * 2.5 / 1e6 + 80 * 10 / 1e6
    assert float(analysis_record.cost_usd) == pytest.approx(0.0038)
    assert decision_record.action == "BUY" and decision_record.result["take_profit_aggressive"] == 215.0
    assert "base64" not in json.dumps(analysis_record.request)


def test_garbage_from_the_model_is_hold_and_the_decision_never_asks(user, llm, client):
    llm.reply("Sure! The chart looks great, buy buy buy")
    run = _run(user, _single_graph())
    assert run.status == RunStatus.SUCCEEDED, run.error
    analysis = _outputs(run, "analysis")["analysis"]
    assert analysis["bias"] == "neutral" and "not JSON" in analysis["error"]
    decision = _outputs(run, "decide")["decision"]
    assert decision["action"] == "HOLD"
    assert decision["entry"] is None and decision["stop_loss"] is None
    assert decision["error"].startswith("The analysis failed")
    assert len(llm.requests) == 1  # a failed analysis is never turned into a decision by a model
    record = AiRecord.objects.get(run=run, kind="decision")
    assert record.action == "HOLD" and "analysis failed" in record.error
    client.force_login(user)
    page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert "No trade:" in page and "buy buy buy" in page  # the raw answer is shown


def test_a_stop_on_the_wrong_side_is_hold_with_the_error_recorded(user, llm):
    llm.reply_json(ANALYSIS)
    llm.reply_json({**DECISION, "stop_loss": 195.0})
    run = _run(user, _single_graph())
    decision = _outputs(run, "decide")["decision"]
    assert decision["action"] == "HOLD"
    assert "stop_loss 195 must be below entry 190" in decision["error"]
    record = AiRecord.objects.get(run=run, kind="decision")
    assert record.action == "HOLD" and record.result is None and "must be below entry" in record.error
    assert json.loads(record.raw_response)["stop_loss"] == 195.0


def test_a_server_error_is_hold(user, llm):
    llm.reply_json(ANALYSIS)
    llm.fail(500, "model crashed")
    run = _run(user, _single_graph())
    decision = _outputs(run, "decide")["decision"]
    assert decision["action"] == "HOLD" and "500" in decision["error"]


def test_a_run_that_would_exceed_its_token_budget_stops_before_asking(user, llm):
    run = _run(user, _single_graph(), ai_token_budget=500)
    assert run.status == RunStatus.FAILED
    step = run.steps.get(node_id="analysis")
    assert step.status == "failed" and "would go over its AI budget of 500 tokens" in step.error
    assert run.steps.get(node_id="decide").status != "succeeded"
    assert llm.requests == []


def test_a_run_that_went_over_its_cost_budget_stops(user, llm):
    llm.reply_json(ANALYSIS, prompt_tokens=100_000, completion_tokens=10_000)  # 0.35 USD at the test prices
    run = _run(user, _single_graph(), ai_cost_budget_usd="0.30", ai_token_budget=10_000_000)
    assert run.status == RunStatus.FAILED
    assert "went over its AI budget of 0.3000 USD" in run.steps.get(node_id="analysis").error
    assert AiRecord.objects.get(run=run).cost_usd > 0  # what was spent is recorded all the same


def test_a_pinned_prompt_version_is_the_text_sent(user, llm):
    prompts_seed()
    v1 = PromptTemplate.objects.get(key="decide", version=1)
    prompt_save(
        key="decide", kind="decide", title=v1.title, system="Version two. {{symbol}}", user=v1.user, author=user
    )
    llm.reply_json(ANALYSIS)
    llm.reply_json(DECISION)
    llm.reply_json(ANALYSIS)
    llm.reply_json(DECISION)
    _run(user, _single_graph({"prompt_version": 1}))
    _run(user, _single_graph())
    systems = [r["messages"][0]["content"] for r in llm.requests]
    assert systems[1].startswith(v1.system[:200]) and not systems[1].startswith("Version two")
    assert systems[3].startswith("Version two. MSFT")
    assert list(AiRecord.objects.filter(kind="decision").values_list("prompt__version", flat=True)) == [1, 2]


def test_a_missing_prompt_fails_the_step_with_its_name(user, llm):
    llm.reply_json(ANALYSIS)
    run = _run(user, _single_graph({"prompt": "no_such_prompt"}))
    assert 'There is no prompt "no_such_prompt"' in run.steps.get(node_id="decide").error


def test_consolidate_aligned_timeframes_with_the_model(user, llm):
    llm.reply_json(ANALYSIS)
    llm.reply_json({**ANALYSIS, "summary": "Weekly uptrend intact."})
    llm.reply_json({**ANALYSIS, "timeframe_alignment": "aligned", "summary": "Both timeframes up."})
    llm.reply_json({**DECISION, "timeframe_alignment": "aligned"})

    def n(node_id, type_, **params):
        return {"id": node_id, "type": type_, "params": params}

    def e(source, source_port, target, target_port):
        return {"source": source, "source_port": source_port, "target": target, "target_port": target_port}

    graph = {
        "schema": 1,
        "params": {},
        "nodes": [
            n("fetch", "market.fetch_bars", symbol="{{symbol}}", period="1y", bar="1d"),
            n("fetch_w", "market.fetch_bars", symbol="{{symbol}}", period="5y", bar="1w"),
            n("chart", "strategies.render_chart", width=800, height=600),
            n("chart_w", "strategies.render_chart", width=800, height=600),
            n("a_daily", "ai.analyze_chart"),
            n("a_weekly", "ai.analyze_chart", prompt="chart_weekly"),
            n("merge", "ai.consolidate"),
            n("decide", "ai.decide"),
        ],
        "edges": [
            e("fetch", "bars", "chart", "bars"),
            e("fetch_w", "bars", "chart_w", "bars"),
            e("chart", "chart", "a_daily", "chart"),
            e("chart_w", "chart", "a_weekly", "chart"),
            e("a_daily", "analysis", "merge", "analysis_1"),
            e("a_weekly", "analysis", "merge", "analysis_2"),
            e("merge", "analysis", "decide", "analysis"),
        ],
    }
    run = _run(user, graph)
    assert run.status == RunStatus.SUCCEEDED, run.error
    merged = _outputs(run, "merge")["analysis"]
    assert merged["timeframe_alignment"] == "aligned" and merged["bars"] == ["1d", "1w"]
    assert merged["last_close"] == _outputs(run, "a_daily")["analysis"]["last_close"]
    assert "Weekly uptrend intact." in llm.requests[2]["messages"][1]["content"][0]["text"]
    assert _outputs(run, "decide")["decision"]["action"] == "BUY"


# Safety rule 2 for answers that are JSON but not one answer, and for usage reports that are not counts.

HOLD_THEN_BUY = '{"action": "HOLD", ' + json.dumps(DECISION)[1:]
TWO_SUPPORTS = json.dumps(DECISION).replace('"support": [182.0]', '"support": [182.0], "support": [150.0]')


@pytest.mark.parametrize("mode", ["json_schema", "prompt"])
@pytest.mark.parametrize(
    ("content", "key"),
    [(HOLD_THEN_BUY, 'the key "action" appears twice'), (TWO_SUPPORTS, 'the key "support" appears twice')],
    ids=["action", "nested"],
)
def test_a_decision_that_gives_a_key_twice_is_hold_with_the_key_named(user, llm, settings, mode, content, key):
    settings.LLM_STRUCTURED_OUTPUT = mode
    llm.reply_json(ANALYSIS)
    llm.reply(f"```json\n{content}\n```" if mode == "prompt" else content)
    run = _run(user, _single_graph())
    assert run.status == RunStatus.SUCCEEDED, run.error

    assert ("response_format" in llm.requests[1]) == (mode == "json_schema")
    decision = _outputs(run, "decide")["decision"]
    assert decision["action"] == "HOLD" and decision["entry"] is None
    assert decision["error"].startswith(f"Answer is ambiguous: {key} in one object")
    record = AiRecord.objects.get(run=run, kind="decision")
    assert record.action == "HOLD" and record.result is None and record.error == decision["error"]
    assert content in record.raw_response


def test_a_negative_token_count_is_hold_and_never_lowers_the_spent_total(user, llm):
    llm.reply_json(ANALYSIS, prompt_tokens=100, completion_tokens=50)  # 0.00075 USD at the test prices
    # Counted, -1 000 000 prompt tokens would be -2.5 USD: room in the budget for whatever comes next.
    llm.reply_json(DECISION, prompt_tokens=-1_000_000, completion_tokens=50)
    run = _run(user, _single_graph())
    assert run.status == RunStatus.SUCCEEDED, run.error

    decision = _outputs(run, "decide")["decision"]
    assert decision["action"] == "HOLD"
    assert decision["error"] == (
        "The model server's usage report is invalid: prompt_tokens is -1000000, not a token count "
        "(a whole number from 0 to 100 000 000)"
    )
    record = AiRecord.objects.get(run=run, kind="decision")
    assert record.action == "HOLD" and record.result is None and record.error == decision["error"]
    assert (record.prompt_tokens, record.completion_tokens, record.cost_usd) == (0, 50, Decimal("0.0005"))
    assert ai_spent(run_id=run.id) == (200, Decimal("0.00125"))


def _team_graph() -> dict:
    return {
        "schema": 1,
        "params": {},
        "nodes": [
            {"id": "fetch", "type": "market.fetch_bars", "params": {"symbol": "{{symbol}}", "period": "1y"}},
            {"id": "chart", "type": "strategies.render_chart", "params": {"width": 800, "height": 600}},
            {"id": "team", "type": "ai.agent_team", "params": {"analyst": "model"}},
        ],
        "edges": [
            {"source": "fetch", "source_port": "bars", "target": "chart", "target_port": "bars"},
            {"source": "chart", "source_port": "chart", "target": "team", "target_port": "chart_1"},
        ],
    }


@pytest.mark.parametrize(
    ("final", "executor_usage", "error"),
    [
        (
            HOLD_THEN_BUY,
            (60, 70),
            'The final decision is ambiguous: the key "action" appears twice in one object ("HOLD", then "BUY")',
        ),
        (
            json.dumps(DECISION),
            (60, -70),
            "The model server's usage report is invalid: message 4 (executor): completion_tokens is -70",
        ),
    ],
    ids=["key-twice", "negative-usage"],
)
def test_an_agent_team_answer_that_is_no_answer_is_hold(user, llm, settings, final, executor_usage, error):
    # The real OpenAI client of the team against the local server, answering as the model it is asked for.
    llm_settings(settings, llm, max_retries=0, model="fake", prices={"fake": {"input": 2.5, "output": 10.0}})
    llm.reply("Uptrend; long at 190, stop 182, targets 202 and 215.", prompt_tokens=40, completion_tokens=10)
    llm.reply("Approved, R 1.5.", prompt_tokens=50, completion_tokens=5)
    prompt, completion = executor_usage
    llm.reply(f"{final}\nFINAL_DECISION", prompt_tokens=prompt, completion_tokens=completion)
    run = _run(user, _team_graph())
    assert run.status == RunStatus.SUCCEEDED, run.error

    decision = _outputs(run, "team")["decision"]
    assert decision["action"] == "HOLD" and decision["entry"] is None
    assert decision["error"].startswith(error)
    record = AiRecord.objects.get(run=run, kind="team")
    assert record.action == "HOLD" and record.error == decision["error"]
    assert record.prompt_tokens == 150 and record.completion_tokens == 15 + max(completion, 0)
    assert record.cost_usd >= 0 and all(m.completion_tokens >= 0 for m in record.messages.all())
