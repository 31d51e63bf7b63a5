"""One call to an OpenAI-compatible chat model that must answer with JSON matching a pydantic schema.

Works against OpenAI, OpenRouter, Ollama, vLLM and LM Studio: charts go as base64 data URLs, the schema is
both in the system prompt and (when the server accepts it) in response_format, and the answer is extracted
and validated strictly either way. `llm_complete` never raises for anything the network or the model does:
the reply carries one readable error line instead, which the AI steps turn into HOLD (safety rule 2).

Retries are ours alone (the SDK's are off, and Celery does not retry these steps for them), so the number
of requests a step makes is bounded by LLM_MAX_RETRIES + 1, plus one per extra key after a 401.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
from django.conf import settings
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ValidationError

from strategies.ai.schemas import validation_message
from strategies.ai.untrusted import USAGE_INVALID, AmbiguousJson, strict_loads, token_count
from workflows.scrub import MASK, scrub_secrets

log = logging.getLogger(__name__)

# Patched by tests so backoff never waits.
_sleep = time.sleep

MODES = ("auto", "json_schema", "prompt")
NO_KEY = "not-needed"  # Ollama and most local servers ignore the key, but the SDK insists on one
BACKOFF_S = 0.5
BACKOFF_CAP_S = 8.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
# Words a 400 uses when a server cannot do structured output (vLLM, LM Studio, older Ollama, proxies).
FORMAT_REJECTED = ("response_format", "json_schema", "not supported", "unsupported", "structured output")

_lock = threading.Lock()
_clients: dict[tuple[str, str, float], openai.OpenAI] = {}
# Per base_url: the key that last worked, so a call does not start on a key known to be rejected or throttled.
_key_index: dict[str, int] = {}
# base_urls that refused response_format once: asking again would only cost a request per call.
_prompt_only: set[str] = set()


@dataclass(frozen=True)
class LlmConfig:
    base_url: str
    model: str
    api_keys: tuple[str, ...]
    timeout_s: float
    max_retries: int
    structured_output: str  # "auto" | "json_schema" | "prompt"
    max_output_tokens: int
    prices: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, *, model: str | None = None) -> LlmConfig:
        return cls(
            base_url=settings.LLM_BASE_URL,
            model=model or settings.LLM_MODEL,
            api_keys=tuple(settings.LLM_API_KEYS),
            timeout_s=float(settings.LLM_TIMEOUT_S),
            max_retries=int(settings.LLM_MAX_RETRIES),
            structured_output=settings.LLM_STRUCTURED_OUTPUT,
            max_output_tokens=int(settings.LLM_MAX_OUTPUT_TOKENS),
            prices=dict(settings.LLM_PRICES or {}),
        )


def llm_configured() -> bool:
    return bool(settings.LLM_BASE_URL)


@dataclass
class LlmReply:
    model: str
    text: str | None
    parsed: BaseModel | None
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    priced: bool
    latency_ms: int
    attempts: int
    request: dict[str, Any]


class _Failed(Exception):
    """Why a call gave up: the line for the reply, and the SDK error behind it, if any."""

    def __init__(self, message: str, cause: Exception | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause


@dataclass
class _Tally:
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_errors: list[str] = field(default_factory=list)


def llm_complete(
    *,
    system: str,
    user: str,
    images: Sequence[bytes] = (),
    schema: type[BaseModel],
    config: LlmConfig | None = None,
    max_output_tokens: int | None = None,
) -> LlmReply:
    """Ask the model; return its answer parsed into `schema`, or the reason there is none."""
    config = config or LlmConfig.from_settings()
    if not config.base_url:
        raise ValueError("LLM_BASE_URL is not set; check llm_configured() first")
    if config.structured_output not in MODES:
        raise ValueError(f"structured_output must be one of {MODES}, not {config.structured_output!r}")
    wire, request = _build_request(config, system, user, images, schema, max_output_tokens)
    tally = _Tally()
    started = time.monotonic()
    text: str | None = None
    parsed: BaseModel | None = None
    try:
        response = _answer(config, wire, request, tally)
    except _Failed as failed:
        error: str | None = failed.message
    else:
        text, parsed, error = _read(response, schema)
        if tally.usage_errors:
            # Before the answer's own error: the answer is refused for its usage whatever it says.
            usage_error = f"{USAGE_INVALID}: {'; '.join(tally.usage_errors)}"
            parsed, error = None, usage_error + (f"; and: {error}" if error else "")
    if error:
        error = _one_line(_scrub(error, config.api_keys))
    cost, priced = cost_of(config.model, tally.prompt_tokens, tally.completion_tokens, config.prices)
    return LlmReply(
        model=config.model,
        text=text,
        parsed=parsed,
        error=error,
        prompt_tokens=tally.prompt_tokens,
        completion_tokens=tally.completion_tokens,
        cost_usd=cost,
        priced=priced,
        latency_ms=round((time.monotonic() - started) * 1000),
        attempts=tally.attempts,
        request=request,
    )


def cost_of(
    model: str, prompt_tokens: int, completion_tokens: int, prices: dict[str, dict[str, float]]
) -> tuple[float, bool]:
    """USD for these tokens at `prices[model]` (USD per million tokens), and whether the model had a price.

    Never negative: a negative cost would lower what a run has spent against its AI budget, so a negative count
    or price is a ValueError (counts from a server are checked before they get here, by token_count).
    """
    if prompt_tokens < 0 or completion_tokens < 0:
        raise ValueError(f"Token counts cannot be negative: {prompt_tokens} prompt, {completion_tokens} completion")
    price = prices.get(model)
    if price is None:
        return 0.0, False
    rates = {side: float(price.get(side, 0)) for side in ("input", "output")}
    for side, rate in rates.items():
        if not math.isfinite(rate) or rate < 0:
            raise ValueError(f"LLM_PRICES: the {side} price of {model} is {rate:g}; a price is a number from 0 up")
    cost = prompt_tokens * rates["input"] + completion_tokens * rates["output"]
    return round(cost / 1_000_000, 8), True


# A reasoning model's leading thoughts; some servers strip the opening tag and leave only the closing one.
_THINK = re.compile(r"^\s*(?:<think>)?.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_json(text: str) -> dict[str, Any]:
    """The JSON object an answer consists of: the whole text, or the content of its only fenced code block.

    A leading reasoning block (<think>...</think>) is dropped. Nothing is fished out of prose: a model that cannot
    answer in the requested shape has not given an answer we can trust. A key given twice is AmbiguousJson.
    """
    body = _THINK.sub("", text, count=1).strip()
    if not body:
        raise ValueError("the answer is empty")
    if not body.startswith(("{", "[")):
        blocks = _FENCE.findall(body)
        if len(blocks) != 1:
            found = "no JSON object and no code block" if not blocks else f"{len(blocks)} code blocks"
            raise ValueError(f"expected one JSON object or one ```json code block, found {found}")
        body = blocks[0].strip()
    value = strict_loads(body)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _build_request(
    config: LlmConfig,
    system: str,
    user: str,
    images: Sequence[bytes],
    schema: type[BaseModel],
    max_output_tokens: int | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What goes on the wire, and the same with images as placeholders: the record a run can keep and show."""
    json_schema = schema.model_json_schema()
    instruction = (
        "\n\nAnswer with one JSON object only, no other text, matching this JSON schema: "
        + json.dumps(json_schema, separators=(",", ":"))
        + "\nWrite every number as a JSON number, never as a string."
    )
    wire_parts: list[dict[str, Any]] = [{"type": "text", "text": user}]
    shown_parts: list[dict[str, Any]] = [{"type": "text", "text": user}]
    for number, image in enumerate(images, start=1):
        mime = _mime(image)
        url = f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"
        digest = hashlib.sha256(image).hexdigest()[:16]
        placeholder = f"<image {number}: {mime}, {len(image)} bytes, sha256 {digest}>"
        wire_parts.append({"type": "image_url", "image_url": {"url": url, "detail": "high"}})
        shown_parts.append({"type": "image_url", "image_url": {"url": placeholder, "detail": "high"}})

    def request(parts: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": config.model,
            "messages": [{"role": "system", "content": system + instruction}, {"role": "user", "content": parts}],
            "temperature": 0,
            # max_tokens, not max_completion_tokens: Ollama, vLLM and LM Studio know only this one.
            "max_tokens": max_output_tokens or config.max_output_tokens,
        }
        with _lock:
            skip_schema = config.base_url in _prompt_only
        if config.structured_output == "json_schema" or (config.structured_output == "auto" and not skip_schema):
            body["response_format"] = {
                "type": "json_schema",
                # strict=False: OpenAI's strict mode rejects schemas with defaults and optional fields.
                "json_schema": {"name": schema.__name__, "schema": json_schema, "strict": False},
            }
        return body

    return request(wire_parts), request(shown_parts)


def _mime(image: bytes) -> str:
    if image.startswith(PNG_MAGIC):
        return "image/png"
    if image.startswith(JPEG_MAGIC):
        return "image/jpeg"
    raise ValueError("images must be PNG or JPEG bytes")


def _client(base_url: str, key: str, timeout_s: float) -> openai.OpenAI:
    with _lock:
        client = _clients.get((base_url, key, timeout_s))
        if client is None:
            client = openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout_s, max_retries=0)
            _clients[(base_url, key, timeout_s)] = client
        return client


def _answer(config: LlmConfig, wire: dict[str, Any], request: dict[str, Any], tally: _Tally) -> ChatCompletion:
    """The server's answer, asking once more without response_format when "auto" finds it unsupported."""
    try:
        return _send(config, wire, tally)
    except _Failed as failed:
        if not (config.structured_output == "auto" and "response_format" in wire and _format_rejected(failed.cause)):
            raise
    log.info("Model server at %s refuses response_format; asking for JSON in the prompt only", config.base_url)
    with _lock:
        _prompt_only.add(config.base_url)
    del wire["response_format"], request["response_format"]
    return _send(config, wire, tally)


def _send(config: LlmConfig, request: dict[str, Any], tally: _Tally) -> ChatCompletion:
    """One answer from the server, retrying transient failures and moving to the next key on 401 and 429."""
    keys = config.api_keys or (NO_KEY,)
    with _lock:
        index = _key_index.get(config.base_url, 0) % len(keys)
    rejected: set[int] = set()
    transient: list[openai.APIError] = []  # at most max_retries + 1
    while True:
        tally.attempts += 1
        try:
            response = _client(config.base_url, keys[index], config.timeout_s).chat.completions.create(**request)
        except openai.AuthenticationError as exc:
            # No server text: it echoes part of the key, and says nothing a user could act on anyway.
            rejected.add(index)
            if len(rejected) == len(keys):
                every = " on every key" if len(keys) > 1 else ""
                raise _Failed(f"Model API key rejected (401){every}", exc) from None
            index = next(i for i in _rotation(index, len(keys)) if i not in rejected)
            continue
        except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as exc:
            transient.append(exc)
            if len(transient) > config.max_retries:
                raise _gave_up(transient, tally.attempts, config.timeout_s) from None
            if isinstance(exc, openai.RateLimitError):
                # Quotas are per key: the next key may well have room.
                index = _rotation(index, len(keys))[0]
            delay = min(_retry_after(exc) or BACKOFF_S * 2 ** (len(transient) - 1), BACKOFF_CAP_S)
            log.warning(
                "Model request failed (%s: %s); retry %d in %.1fs",
                type(exc).__name__,
                _scrub(str(exc), config.api_keys),
                len(transient),
                delay,
            )
            _sleep(delay)
            continue
        except openai.APIStatusError as exc:
            raise _Failed(f"Model request rejected ({exc.status_code}): {_server_message(exc)}", exc) from None
        except openai.OpenAIError as exc:  # an answer the SDK could not read, say
            raise _Failed(f"Model call failed: {exc}", exc) from None
        with _lock:
            _key_index[config.base_url] = index
        if not isinstance(response, ChatCompletion):  # the SDK hands back a non-JSON body as a str
            raise _Failed(f"Model server did not answer with a chat completion: {str(response)[:200]}")
        _tally_usage(response, tally)
        return response


def _tally_usage(response: ChatCompletion, tally: _Tally) -> None:
    """Add the answer's token counts; a count that is not one is recorded as the reply's error and adds nothing.

    The answer itself is still read (its text is kept on the record), but a reply with a usage error is never a
    result: a server that reports -5000 tokens would otherwise cost a negative amount, lowering what the run has
    spent against its budget.
    """
    # The SDK does not validate answers: a non-conforming server can put anything anywhere.
    usage = response.usage
    for name in ("prompt_tokens", "completion_tokens"):
        try:
            count = token_count(getattr(usage, name, None), name)
        except ValueError as exc:
            tally.usage_errors.append(str(exc))
            continue
        setattr(tally, name, getattr(tally, name) + count)


def _rotation(index: int, count: int) -> list[int]:
    """The other keys, in order after `index` (the same key when there is only one)."""
    return [(index + step) % count for step in range(1, count + 1)]


def _gave_up(errors: list[openai.APIError], attempts: int, timeout_s: float) -> _Failed:
    last = errors[-1]
    count = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if isinstance(last, openai.APITimeoutError):
        message = f"Model request timed out after {timeout_s:g}s ({count})"
    elif isinstance(last, openai.APIConnectionError):
        message = f"Model server unreachable ({count}): {last.__cause__ or last}"
    elif all(isinstance(e, openai.RateLimitError) for e in errors):
        message = f"Model rate limit (429) on every attempt ({count})"
    else:
        assert isinstance(last, openai.APIStatusError)
        message = f"Model server error {last.status_code} ({count}): {_server_message(last)}"
    return _Failed(message, last)


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:  # an HTTP date: rare enough that the usual backoff will do
        return None


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else body  # a str when the body is not JSON (proxies)
    return message if isinstance(message, str) and message.strip() else exc.message


def _format_rejected(exc: Exception | None) -> bool:
    if not isinstance(exc, openai.BadRequestError):
        return False
    text = f"{exc.message} {exc.body}".lower()
    return any(word in text for word in FORMAT_REJECTED)


def _read(response: ChatCompletion, schema: type[BaseModel]) -> tuple[str | None, BaseModel | None, str | None]:
    """The answer's text, its parsed form, and the error when it is not a valid answer."""
    choices = response.choices
    if not isinstance(choices, list) or not choices:
        return None, None, "Model returned no choices"
    # getattr: the SDK builds the answer without validating it, so any part may be missing or of the wrong type.
    message = getattr(choices[0], "message", None)
    text, refusal = getattr(message, "content", None), getattr(message, "refusal", None)
    finish_reason = getattr(choices[0], "finish_reason", None)
    if not isinstance(text, str | None):
        return None, None, f"Malformed answer: the message content is not text ({type(text).__name__})"
    if refusal:
        return text, None, f"Model refused: {refusal}"
    # Before the emptiness check: a reasoning model that spent the budget thinking answers "" with "length".
    if finish_reason == "length":
        return text, None, "Answer cut off at the output token limit (finish_reason=length)"
    if finish_reason == "content_filter":
        return text, None, "Answer withheld by the content filter (finish_reason=content_filter)"
    if not text or not text.strip():
        return text, None, "Empty answer from the model"
    try:
        obj = extract_json(text)
    except AmbiguousJson as exc:
        return text, None, f"Answer is ambiguous: {exc}"
    except ValueError as exc:
        return text, None, f"Answer is not JSON: {exc}"
    try:
        return text, schema.model_validate(obj), None
    except ValidationError as exc:
        return text, None, f"Answer does not match the {schema.__name__} schema: {validation_message(exc)}"


# A provider key's shape (OpenAI, OpenRouter, Anthropic), also as the masked echo "sk-abc***wxyz" of a key we do
# not know in full.
_KEYLIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*.]{4,}")


def _one_line(text: str, limit: int = 1000) -> str:
    # Servers and proxies answer errors with multi-line text or whole HTML pages.
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _scrub(text: str, keys: Sequence[str]) -> str:
    return _KEYLIKE.sub(MASK, scrub_secrets(text, keys))
