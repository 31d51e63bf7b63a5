"""A scripted OpenAI-compatible chat server on loopback, for tests that drive the real `openai` client.

    with fake_llm() as fake:
        llm_settings(settings, fake, max_retries=0)   # pytest-django's `settings` fixture
        fake.reply_json({"action": "HOLD", ...})
        reply = llm_complete(system="...", user="...", schema=Decision)
        assert fake.requests[0]["_auth"] == "Bearer test-key-1"

Each POST /v1/chat/completions consumes the next queued answer, in order. With nothing queued the server
answers 500 "no scripted reply", so a test that makes more calls than it scripted fails loudly instead of
passing by accident. `requests` holds every JSON body received (the Authorization header under "_auth"),
including the ones answered with an error.

A queued answer is one of:
- reply(content, refusal=, finish_reason=, prompt_tokens=, completion_tokens=): a 200 chat.completion;
- reply_json(obj, **same keywords): the same, with json.dumps(obj) as content;
- fail(status, message, retry_after=): an error in OpenAI's JSON shape, with a Retry-After header if given;
- hang(seconds, content="{}"): wait, then a 200 (the client should have timed out by then);
- raw(body, status=200): any JSON body, or text (a proxy's HTML error page), for shapes the others cannot make.
reject_response_format() is not queued: from then on every request carrying response_format gets a 400
like vLLM's or LM Studio's, without consuming the queue.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# What each queued entry turns into once a request arrives.
_Answer = tuple[int, dict[str, Any] | str, dict[str, str]]


@dataclass
class _Hang:
    seconds: float
    content: str


class FakeLlm:
    """The server and its script. Create it through `fake_llm()` so it is always closed."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._queue: deque[_Answer | _Hang] = deque()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._reject_format = False
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        # Daemon handler threads: a hanging answer must never keep the test process alive.
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for it, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-llm", daemon=True
        )
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def reply(
        self,
        content: str | None = None,
        *,
        refusal: str | None = None,
        finish_reason: str = "stop",
        prompt_tokens: int = 100,
        completion_tokens: int = 50,
    ) -> None:
        """Queue a 200 chat.completion with this message."""
        body = self._completion(content, refusal, finish_reason, prompt_tokens, completion_tokens)
        self._push((200, body, {}))

    def reply_json(self, obj: dict[str, Any], **kw: Any) -> None:
        """Queue a 200 chat.completion whose content is `obj` as JSON text."""
        self.reply(json.dumps(obj), **kw)

    def fail(self, status: int, message: str = "scripted failure", *, retry_after: float | None = None) -> None:
        """Queue an error answer shaped like OpenAI's: {"error": {"message", "type", "param", "code"}}."""
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        self._push((status, _error_body(status, message), headers))

    def hang(self, seconds: float, content: str = "{}") -> None:
        """Queue a slow answer: wait `seconds` (or until close), then a 200 with `content`."""
        self._push(_Hang(seconds, content))

    def raw(self, body: dict[str, Any] | str, status: int = 200) -> None:
        """Queue any body as it is: a dict goes as JSON, a str as text/html."""
        self._push((status, body, {}))

    def reject_response_format(self) -> None:
        """From now on, answer 400 to any request that carries response_format."""
        self._reject_format = True

    def close(self) -> None:
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()

    def _push(self, answer: _Answer | _Hang) -> None:
        with self._lock:
            self._queue.append(answer)

    def _completion(
        self, content: str | None, refusal: str | None, finish_reason: str, prompt_tokens: int, completion_tokens: int
    ) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-fake-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _answer(self, body: dict[str, Any]) -> _Answer:
        with self._lock:
            self.requests.append(body)
            if self._reject_format and "response_format" in body:
                return 400, _error_body(400, "response_format json_schema is not supported by this server"), {}
            if not self._queue:
                return 500, _error_body(500, "no scripted reply"), {}
            answer = self._queue.popleft()
        if isinstance(answer, _Hang):
            self._closed.wait(answer.seconds)
            return 200, self._completion(answer.content, None, "stop", 100, 50), {}
        return answer


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}


def _handler_class(fake: FakeLlm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "test"}]})
            else:
                self._send(404, _error_body(404, f"no route {self.path}"))

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, _error_body(404, f"no route {self.path}"))
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._send(400, _error_body(400, "body is not JSON"))
                return
            body["_auth"] = self.headers.get("Authorization")
            self._send(*fake._answer(body))

        def _send(self, status: int, body: dict[str, Any] | str, headers: dict[str, str] | None = None) -> None:
            text = isinstance(body, str)
            data = body.encode() if text else json.dumps(body).encode()
            # The client may have given up (timeout) while a hanging answer waited.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(status)
                self.send_header("Content-Type", "text/html" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test output is not the place for an access log

    return Handler


@contextlib.contextmanager
def fake_llm() -> Iterator[FakeLlm]:
    """A running FakeLlm, closed on exit."""
    fake = FakeLlm()
    try:
        yield fake
    finally:
        fake.close()


_DEFAULTS: dict[str, Any] = {
    "api_keys": ["test-key-1"],
    "model": "test-vision",
    "timeout_s": 2.0,
    "max_retries": 2,
    "structured_output": "auto",
    "max_output_tokens": 1500,
    # USD per million tokens: 100 prompt + 50 completion tokens cost 0.00025 + 0.0005 = 0.00075.
    "prices": {"test-vision": {"input": 2.5, "output": 10.0}},
}


def llm_settings(settings: Any, fake: FakeLlm, **overrides: Any) -> None:
    """Point the LLM_* settings at `fake` through pytest-django's `settings` fixture (restored after the test).

    Overrides use the setting names without the prefix, lower case: max_retries=0 sets LLM_MAX_RETRIES.
    """
    unknown = set(overrides) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown LLM setting(s): {', '.join(sorted(unknown))}")
    settings.LLM_BASE_URL = fake.base_url
    for name, value in {**_DEFAULTS, **overrides}.items():
        setattr(settings, f"LLM_{name.upper()}", value)
