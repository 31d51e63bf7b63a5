"""The LLM client, through the real openai SDK, against a scripted OpenAI-compatible server on loopback."""

import base64
import hashlib
import json
import logging
from collections.abc import Callable

import pytest

from strategies.ai import llm
from strategies.ai.llm import LlmConfig, cost_of, extract_json, llm_complete, llm_configured
from strategies.ai.schemas import Decision
from strategies.tests.llm_server import FakeLlm, fake_llm, llm_settings

# Only the magic bytes matter to the client; the rest makes the base64 long enough to spot in a dump.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 2
BUY = {
    "action": "BUY",
    "entry": 100.0,
    "stop_loss": 95.0,
    "take_profit_conservative": 110.0,
    "take_profit_aggressive": 120.0,
    "confidence": 0.7,
    "timeframe_alignment": "aligned",
    "key_levels": {"support": [95.0], "resistance": [110.0]},
    "reasoning": "Breakout above resistance on rising volume.",
}
SECRET = "sk-test-SECRET-0123456789abcdef"


@pytest.fixture(autouse=True)
def slept(monkeypatch) -> list[float]:
    """The backoff delays asked for (nothing waits), and a clean slate of what the client remembers per server:
    a port reused by a later test must not inherit a key position or a prompt-only mark."""
    delays: list[float] = []
    monkeypatch.setattr(llm, "_sleep", delays.append)
    monkeypatch.setattr(llm, "_prompt_only", set())
    monkeypatch.setattr(llm, "_key_index", {})
    return delays


@pytest.fixture
def fake(settings):
    with fake_llm() as server:
        llm_settings(settings, server)
        yield server


def ask(**kw) -> llm.LlmReply:
    return llm_complete(**{"system": "You read charts.", "user": "Analyse AAPL, daily.", "schema": Decision, **kw})


def auths(fake: FakeLlm) -> list[str]:
    return [r["_auth"] for r in fake.requests]


# The request


def test_request_carries_the_prompts_the_schema_and_the_chart_images(fake):
    fake.reply_json(BUY)
    reply = ask(images=[PNG, JPEG])

    assert reply.error is None
    [sent] = fake.requests
    assert sent["_auth"] == "Bearer test-key-1"
    assert sent["model"] == "test-vision"
    assert sent["temperature"] == 0
    assert sent["max_tokens"] == 1500
    system, user = sent["messages"]
    assert system["role"] == "system"
    assert system["content"].startswith("You read charts.\n\nAnswer with one JSON object only")
    assert json.dumps(Decision.model_json_schema(), separators=(",", ":")) in system["content"]
    assert user["role"] == "user"
    text, png, jpeg = user["content"]
    assert text == {"type": "text", "text": "Analyse AAPL, daily."}
    assert png["type"] == "image_url"
    assert png["image_url"]["detail"] == "high"
    prefix, _, data = png["image_url"]["url"].partition(",")
    assert prefix == "data:image/png;base64"
    assert base64.b64decode(data) == PNG
    assert jpeg["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert base64.b64decode(jpeg["image_url"]["url"].partition(",")[2]) == JPEG
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Decision", "schema": Decision.model_json_schema(), "strict": False},
    }


def test_recorded_request_is_what_was_sent_with_images_as_placeholders(fake):
    fake.reply_json(BUY)
    reply = ask(images=[PNG])

    sent = {k: v for k, v in fake.requests[0].items() if k != "_auth"}
    shown = reply.request["messages"][1]["content"][1]["image_url"]["url"]
    assert shown == f"<image 1: image/png, {len(PNG)} bytes, sha256 {hashlib.sha256(PNG).hexdigest()[:16]}>"
    sent["messages"][1]["content"][1]["image_url"]["url"] = shown
    assert reply.request == sent
    dump = json.dumps(reply.request)
    assert base64.b64encode(PNG).decode()[:40] not in dump
    assert "test-key-1" not in dump


def test_model_override_output_limit_and_prompt_mode(fake, settings):
    settings.LLM_STRUCTURED_OUTPUT = "prompt"
    fake.reply_json(BUY)
    reply = ask(config=LlmConfig.from_settings(model="other-model"), max_output_tokens=300)

    sent = fake.requests[0]
    assert sent["model"] == reply.model == "other-model"
    assert sent["max_tokens"] == 300
    assert "response_format" not in sent
    assert isinstance(reply.parsed, Decision)
    # No price for this model: recorded as free, and said so.
    assert (reply.cost_usd, reply.priced) == (0.0, False)


def test_without_keys_the_placeholder_key_is_sent(fake, settings):
    settings.LLM_API_KEYS = []
    fake.reply_json(BUY)
    assert ask().error is None
    assert auths(fake) == ["Bearer not-needed"]


def test_llm_configured_follows_the_base_url(settings):
    settings.LLM_BASE_URL = ""
    assert not llm_configured()
    settings.LLM_BASE_URL = "http://localhost:11434/v1"
    assert llm_configured()


# The answer


def test_valid_answer_becomes_a_decision_with_tokens_and_cost(fake):
    fake.reply_json(BUY, prompt_tokens=1200, completion_tokens=300)
    reply = ask(images=[PNG])

    assert reply.error is None
    assert isinstance(reply.parsed, Decision)
    assert (reply.parsed.action, reply.parsed.entry, reply.parsed.stop_loss) == ("BUY", 100.0, 95.0)
    assert reply.text == json.dumps(BUY)
    assert (reply.prompt_tokens, reply.completion_tokens, reply.attempts) == (1200, 300, 1)
    # 1200 * 2.5 / 1e6 + 300 * 10 / 1e6 = 0.003 + 0.003
    assert reply.cost_usd == pytest.approx(0.006)
    assert reply.priced
    assert reply.latency_ms >= 0


def test_cost_of():
    prices = {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}
    assert cost_of("gpt-4o-mini", 1_000_000, 500_000, prices) == (pytest.approx(0.45), True)
    assert cost_of("gpt-4o-mini", 0, 0, prices) == (0.0, True)
    assert cost_of("llava", 1000, 1000, prices) == (0.0, False)


@pytest.mark.parametrize(
    ("tokens", "prices", "message"),
    [
        ((-1000, 10), {}, "Token counts cannot be negative: -1000 prompt, 10 completion"),
        ((10, -1), {"m": {"input": 1}}, "Token counts cannot be negative: 10 prompt, -1 completion"),
        ((10, 10), {"m": {"input": -2.5}}, "LLM_PRICES: the input price of m is -2.5"),
        ((10, 10), {"m": {"input": 1, "output": float("nan")}}, "LLM_PRICES: the output price of m is nan"),
    ],
)
def test_cost_of_is_never_negative(tokens, prices, message):
    # A negative cost would lower what a run has spent against its AI budget.
    with pytest.raises(ValueError, match=message):
        cost_of("m", *tokens, prices)


def _with(**changes) -> str:
    return json.dumps({**BUY, **changes})


def _without(*names: str) -> str:
    return json.dumps({k: v for k, v in BUY.items() if k not in names})


NO_CHOICES = {"id": "x", "object": "chat.completion", "created": 0, "model": "fake", "choices": []}


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (lambda f: f.reply('{"action": "BUY", "entry": 100,'), "Answer is not JSON: Expecting"),
        (lambda f: f.reply("I would buy at 100, stop 95."), "Answer is not JSON: expected one JSON object"),
        (
            lambda f: f.reply(_with(entry="101.5")),
            "Answer does not match the Decision schema: entry: Input should be a valid number",
        ),
        (
            lambda f: f.reply(_without("confidence", "reasoning")),
            "Answer does not match the Decision schema: confidence: Field required; reasoning: Field required",
        ),
        (lambda f: f.reply(_with(stop_loss=105.0)), "BUY stop_loss 105 must be below entry 100"),
        (lambda f: f.reply(_with(action="SHORT")), "action: Input should be 'BUY', 'SELL' or 'HOLD'"),
        (lambda f: f.reply(None, refusal="I can't help with trading."), "Model refused: I can't help with trading."),
        (lambda f: f.reply(""), "Empty answer from the model"),
        (lambda f: f.reply(None), "Empty answer from the model"),
        (
            lambda f: f.reply('{"action": "BUY", "ent', finish_reason="length"),
            "Answer cut off at the output token limit (finish_reason=length)",
        ),
        (
            lambda f: f.reply(None, finish_reason="content_filter"),
            "Answer withheld by the content filter (finish_reason=content_filter)",
        ),
        (lambda f: f.raw(NO_CHOICES), "Model returned no choices"),
        (lambda f: f.raw("<html>It works!</html>"), "Model server did not answer with a chat completion: <html>"),
        (lambda f: f.raw({"choices": [{"message": {"content": 5}}]}), "Malformed answer: the message content is not"),
    ],
    ids=[
        "malformed",
        "prose",
        "number-as-text",
        "missing-fields",
        "stop-wrong-side",
        "unknown-action",
        "refusal",
        "empty",
        "null-content",
        "cut-off",
        "content-filter",
        "no-choices",
        "not-json-body",
        "content-not-text",
    ],
)
def test_unusable_answer_gives_no_decision_and_says_why(fake, script: Callable[[FakeLlm], None], expected: str):
    script(fake)
    reply = ask()

    assert reply.parsed is None
    assert reply.error is not None
    assert expected in reply.error
    assert reply.attempts == 1  # a bad answer is not retried here: the step decides (HOLD)


def test_a_local_server_answer_need_not_be_openai_to_the_letter(fake):
    # What llama.cpp-style servers send: no usage, no refusal, their own finish_reason, extra fields.
    fake.raw(
        {"choices": [{"message": {"role": "assistant", "content": json.dumps(BUY)}, "finish_reason": "eos"}], "x": 1}
    )
    reply = ask()

    assert isinstance(reply.parsed, Decision)
    assert (reply.prompt_tokens, reply.completion_tokens, reply.cost_usd) == (0, 0, 0.0)


def test_answer_text_is_kept_when_it_does_not_validate(fake):
    content = "```json\n" + _with(entry="101.5") + "\n```"
    fake.reply(content, prompt_tokens=7, completion_tokens=3)
    reply = ask()

    assert reply.parsed is None
    assert reply.text == content
    # Tokens were spent all the same.
    assert (reply.prompt_tokens, reply.completion_tokens) == (7, 3)


# Safety rule 2: an answer that gives a key twice says two things, and is HOLD. json.loads alone keeps the last
# one, which would read HOLD-then-BUY as a BUY.
HOLD_THEN_BUY = '{"action": "HOLD", ' + json.dumps(BUY)[1:]
TWO_SUPPORTS = json.dumps(BUY).replace('"support": [95.0]', '"support": [95.0], "support": [50.0]')


@pytest.mark.parametrize("mode", ["json_schema", "prompt"])
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (HOLD_THEN_BUY, 'Answer is ambiguous: the key "action" appears twice in one object ("HOLD", then "BUY")'),
        (f"```json\n{HOLD_THEN_BUY}\n```", 'the key "action" appears twice in one object ("HOLD", then "BUY")'),
        (TWO_SUPPORTS, 'Answer is ambiguous: the key "support" appears twice in one object ([95.0], then [50.0])'),
    ],
    ids=["action", "action-fenced", "nested"],
)
def test_a_key_given_twice_is_no_answer(fake, settings, mode, content, expected):
    settings.LLM_STRUCTURED_OUTPUT = mode
    fake.reply(content)
    reply = ask()

    assert ("response_format" in fake.requests[0]) == (mode == "json_schema")
    assert reply.parsed is None
    assert expected in reply.error
    assert reply.text == content  # kept for the record


def _completion(content: str, usage: dict) -> dict:
    """A chat completion with any usage report, however wrong (FakeLlm.reply only makes valid ones)."""
    return {
        "id": "chatcmpl-usage",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": usage,
    }


LIMIT = "not a token count (a whole number from 0 to 100 000 000)"


@pytest.mark.parametrize(
    ("usage", "counted", "expected"),
    [
        ({"prompt_tokens": -5000, "completion_tokens": 50}, (0, 50), f"prompt_tokens is -5000, {LIMIT}"),
        ({"prompt_tokens": 100, "completion_tokens": -1}, (100, 0), f"completion_tokens is -1, {LIMIT}"),
        ({"prompt_tokens": "100", "completion_tokens": 50}, (0, 50), f"prompt_tokens is '100', {LIMIT}"),
        ({"prompt_tokens": 100, "completion_tokens": 2.5}, (100, 0), f"completion_tokens is 2.5, {LIMIT}"),
        ({"prompt_tokens": True, "completion_tokens": 50}, (0, 50), f"prompt_tokens is True, {LIMIT}"),
        ({"prompt_tokens": 10**12, "completion_tokens": 50}, (0, 50), f"prompt_tokens is 1000000000000, {LIMIT}"),
        (
            {"prompt_tokens": -1, "completion_tokens": -2},
            (0, 0),
            f"prompt_tokens is -1, {LIMIT}; completion_tokens is -2, {LIMIT}",
        ),
    ],
    ids=["negative-prompt", "negative-completion", "text", "fraction", "bool", "absurd", "both"],
)
def test_a_usage_report_with_a_count_that_is_no_count_is_no_answer(fake, usage, counted, expected):
    fake.raw(_completion(json.dumps(BUY), usage))
    reply = ask()

    # A valid BUY, refused for its usage: a server that lies about tokens is not trusted about the trade either.
    assert reply.parsed is None
    assert reply.error == f"The model server's usage report is invalid: {expected}"
    assert (reply.prompt_tokens, reply.completion_tokens) == counted
    assert reply.cost_usd == cost_of("test-vision", *counted, {"test-vision": {"input": 2.5, "output": 10.0}})[0]
    assert reply.cost_usd >= 0
    assert reply.text == json.dumps(BUY)


def test_a_usage_error_comes_first_and_the_answers_own_error_follows(fake):
    fake.raw(_completion("I would buy.", {"prompt_tokens": -3, "completion_tokens": 5}))
    reply = ask()
    assert reply.error == (
        f"The model server's usage report is invalid: prompt_tokens is -3, {LIMIT}; "
        "and: Answer is not JSON: expected one JSON object or one ```json code block, found no JSON object and no "
        "code block"
    )


def test_unscripted_request_fails_loudly(fake, settings):
    settings.LLM_MAX_RETRIES = 0
    reply = ask()
    assert reply.parsed is None
    assert reply.error == "Model server error 500 (1 attempt): no scripted reply"


# Retries and keys


def test_rate_limit_moves_to_the_next_key_and_the_next_call_starts_there(fake, settings, slept):
    settings.LLM_API_KEYS = ["key-one", "key-two"]
    fake.fail(429, "slow down", retry_after=3)
    fake.reply_json(BUY, prompt_tokens=10, completion_tokens=5)
    reply = ask()

    assert isinstance(reply.parsed, Decision)
    assert reply.attempts == 2
    assert auths(fake) == ["Bearer key-one", "Bearer key-two"]
    assert slept == [3.0]  # Retry-After honoured
    assert (reply.prompt_tokens, reply.completion_tokens) == (10, 5)  # only the answer carried usage

    fake.reply_json(BUY)
    assert ask().error is None
    assert auths(fake)[2] == "Bearer key-two"


def test_rejected_key_moves_to_the_next_key_without_waiting(fake, settings, slept):
    settings.LLM_API_KEYS = ["key-one", "key-two"]
    settings.LLM_MAX_RETRIES = 0  # a 401 is not a transient failure: it does not use the retry budget
    fake.fail(401, "Incorrect API key provided")
    fake.reply_json(BUY)
    reply = ask()

    assert isinstance(reply.parsed, Decision)
    assert reply.attempts == 2
    assert auths(fake) == ["Bearer key-one", "Bearer key-two"]
    assert slept == []


def test_rejected_on_every_key_ends_at_once(fake, settings):
    settings.LLM_API_KEYS = ["key-one", "key-two"]
    fake.fail(401, "Incorrect API key provided")
    fake.fail(401, "Incorrect API key provided")
    reply = ask()

    assert reply.parsed is None
    assert reply.error == "Model API key rejected (401) on every key"
    assert reply.attempts == len(fake.requests) == 2


def test_rate_limit_on_every_attempt_waits_at_most_the_cap(fake, settings, slept):
    settings.LLM_MAX_RETRIES = 1
    fake.fail(429, retry_after=30)
    fake.fail(429)
    reply = ask()

    assert reply.error == "Model rate limit (429) on every attempt (2 attempts)"
    assert len(fake.requests) == 2
    assert slept == [8.0]


def test_timeout_is_retried_then_reported(fake, settings):
    settings.LLM_TIMEOUT_S = 0.3
    settings.LLM_MAX_RETRIES = 1
    fake.hang(5)
    fake.hang(5)
    reply = ask()

    assert reply.parsed is None
    assert reply.error == "Model request timed out after 0.3s (2 attempts)"
    assert reply.attempts == len(fake.requests) == 2
    assert reply.latency_ms >= 600


def test_server_error_is_retried_max_retries_times(fake, settings, slept):
    settings.LLM_MAX_RETRIES = 2
    for _ in range(3):
        fake.fail(500, "CUDA out of memory")
    reply = ask()

    assert reply.parsed is None
    assert reply.error == "Model server error 500 (3 attempts): CUDA out of memory"
    assert reply.attempts == len(fake.requests) == 3
    assert slept == [0.5, 1.0]


def test_proxy_error_page_becomes_one_short_line(fake, settings):
    settings.LLM_MAX_RETRIES = 0
    fake.raw("<html>\n<body>\n<h1>502 Bad Gateway</h1>\n" + "<p>nginx</p>\n" * 500 + "</body></html>", status=502)
    reply = ask()

    assert reply.error.startswith("Model server error 502 (1 attempt): <html> <body> <h1>502 Bad Gateway</h1>")
    assert "\n" not in reply.error
    assert len(reply.error) <= 1000


def test_server_error_then_answer(fake):
    fake.fail(503, "loading model")
    fake.reply_json(BUY)
    reply = ask()

    assert isinstance(reply.parsed, Decision)
    assert reply.attempts == 2
    assert (reply.prompt_tokens, reply.completion_tokens) == (100, 50)


def test_unreachable_server(settings):
    with fake_llm() as gone:
        llm_settings(settings, gone, max_retries=1)
    reply = ask()

    assert reply.parsed is None
    assert reply.error.startswith("Model server unreachable (2 attempts):")
    assert reply.attempts == 2


def test_other_client_errors_are_not_retried(fake):
    fake.fail(404, "The model `test-vision` does not exist")
    reply = ask()

    assert reply.error == "Model request rejected (404): The model `test-vision` does not exist"
    assert reply.attempts == 1


# Structured output


def test_auto_falls_back_to_prompt_mode_and_remembers(fake):
    fake.reject_response_format()
    fake.reply("Here is my decision:\n```json\n" + json.dumps(BUY, indent=2) + "\n```\n")
    reply = ask()

    assert isinstance(reply.parsed, Decision)
    assert reply.attempts == 2
    first, second = fake.requests
    assert first["response_format"]["type"] == "json_schema"
    assert "response_format" not in second
    assert "response_format" not in reply.request
    # The schema still reaches the model, in the system prompt.
    assert '"stop_loss"' in second["messages"][0]["content"]

    fake.reply_json(BUY)
    reply = ask()
    assert reply.attempts == 1
    assert "response_format" not in fake.requests[2]


def test_json_schema_mode_does_not_fall_back(fake, settings):
    settings.LLM_STRUCTURED_OUTPUT = "json_schema"
    fake.reject_response_format()
    reply = ask()

    assert reply.parsed is None
    assert reply.error == "Model request rejected (400): response_format json_schema is not supported by this server"
    assert reply.attempts == 1


def test_unrelated_bad_request_does_not_trigger_the_fallback(fake):
    fake.fail(400, "messages: image too large")
    reply = ask()

    assert reply.error == "Model request rejected (400): messages: image too large"
    assert reply.attempts == 1
    assert llm._prompt_only == set()


# Secrets


def test_keys_never_reach_the_error_the_request_or_the_logs(fake, settings, caplog):
    settings.LLM_API_KEYS = [SECRET]
    fake.fail(401, f"Incorrect API key provided: {SECRET}. You can find your API key at ...")
    reply = ask(images=[PNG])
    assert reply.error == "Model API key rejected (401)"

    settings.LLM_MAX_RETRIES = 1
    fake.fail(500, f"upstream said: bad key {SECRET}")
    fake.fail(500, "upstream said: bad key sk-test-***cdef")  # the masked echo of a key
    with caplog.at_level(logging.DEBUG):  # the SDK's and httpx's loggers too
        reply = ask(images=[PNG])

    assert reply.error == "Model server error 500 (2 attempts): upstream said: bad key ***"
    assert "bad key ***" in caplog.text
    dump = json.dumps(reply.request)
    for text in (reply.error, caplog.text, dump):
        assert SECRET not in text
        assert "SECRET" not in text
        assert "sk-test-" not in text
    assert base64.b64encode(PNG).decode()[:40] not in dump
    assert fake.requests[0]["_auth"] == f"Bearer {SECRET}"  # it was really sent, just never shown


# extract_json


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('  \n{"a": [1.5, "x"]}\n ', {"a": [1.5, "x"]}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('```\n{"a": 1}\n```', {"a": 1}),
        ('Here it is:\n```JSON\n{"a": 1}\n```\nGood luck.', {"a": 1}),
        ('<think>maybe {"a": 2}? no.</think>\n{"a": 1}', {"a": 1}),
        ('<think>\n```json\n{"a": 2}\n```\n</think>```json\n{"a": 1}\n```', {"a": 1}),
        ('Let me look.</think>{"a": 1}', {"a": 1}),
    ],
    ids=["whole", "padded", "fenced-json", "fenced-plain", "fenced-with-prose", "think", "think-fence", "think-close"],
)
def test_extract_json_accepts(text: str, expected: dict):
    assert extract_json(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('Sure! {"a": 1}', "found no JSON object and no code block"),
        ('{"a": 1} hope this helps', "Extra data"),
        ('```json\n{"a": 1}\n```\n```json\n{"a": 2}\n```', "found 2 code blocks"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": -Infinity}', "-Infinity is not a JSON number"),
        ('{"a": 1e999}', "1e999 is out of range"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"a": 1, "a": 1}', 'the key "a" appears twice in one object (1, then 1)'),
        ('[{"a": {"b": [1], "c": 2, "b": {"d": 3}}}]', 'the key "b" appears twice in one object ([1], then {"d": 3})'),
        ('```json\n[{"a": 1}]\n```', "expected a JSON object, got list"),
        ("<think>all thought, no answer</think>", "the answer is empty"),
        ("", "the answer is empty"),
    ],
    ids=[
        "prose-around",
        "trailing-prose",
        "two-fences",
        "nan",
        "infinity",
        "overflow",
        "list",
        "same-key-same-value",
        "nested-key-twice-before-the-list-check",
        "fenced-list",
        "only-think",
        "empty",
    ],
)
def test_extract_json_rejects(text: str, message: str):
    with pytest.raises(ValueError) as info:
        extract_json(text)
    assert message in str(info.value)
