"""A local HTTP receiver for the notification tests: records every request (method, path, headers,
body) and answers as told (a status, a body, or a sleep past the client's timeout). Also a test
step type with a decision, a chart and an order among its outputs."""

from __future__ import annotations

import json
import struct
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from workflows.registry import Port, StepType, register, registry


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, tuple[str | None, str, bytes]]:
        """A multipart/form-data body: name -> (filename, content type, bytes)."""
        header = f"Content-Type: {self.headers['content-type']}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(header + self.body)
        assert message.is_multipart(), "not a multipart body"
        parts = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            parts[name] = (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
        return parts


@dataclass
class Answer:
    status: int = 200
    body: bytes = b'{"ok": true}'
    sleep_s: float = 0.0
    # Echo the request path in the body (as some services do), to check it is scrubbed.
    echo_path: bool = False


@dataclass
class Receiver:
    answers: deque[Answer] = field(default_factory=deque)
    default: Answer = field(default_factory=Answer)
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append(Received("POST", self.path, headers, body))
                answer = receiver.answers.popleft() if receiver.answers else receiver.default
                if answer.sleep_s:
                    time.sleep(answer.sleep_s)
                payload = answer.body + (f" path={self.path}".encode() if answer.echo_path else b"")
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def tiny_png() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x10\x80\xf0"))
        + chunk(b"IEND", b"")
    )


# A test step type standing in for render_chart + ai.decide + broker.place_order: a decision, a
# chart PNG (in the artifact store) and an order result, as those steps would output them.


class _TradeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["BUY", "SELL", "HOLD"] = "BUY"
    order_sent: bool = True


class TradeOutputs(StepType):
    name = "test.trade_outputs"
    label = "Test trade outputs"
    category = "test"
    Params = _TradeParams
    outputs = (Port("decision", "decision"), Port("chart", "chart"), Port("order", "order"))
    tags = frozenset({"data_source"})

    def run(self, ctx, inputs, params):
        from workflows.artifacts.store import artifact_put

        trade = params.action != "HOLD"
        decision = {
            "symbol": ctx.symbol,
            "action": params.action,
            "entry": 100.0 if trade else None,
            "stop_loss": 95.0 if trade else None,
            "take_profit_conservative": 110.0 if trade else None,
            "take_profit_aggressive": 120.0 if trade else None,
            "confidence": "high",
            "reasoning": "Trend up, RSI fine.",
            "analyst": "offline",
            "error": None,
        }
        order = (
            {
                "sent": True,
                "status": "submitted",
                "order_id": 77,
                "symbol": ctx.symbol,
                "side": params.action,
                "quantity": 10,
                "entry": 100.0,
                "take_profit": 110.0,
                "stop_loss": 95.0,
                "r": 2.0,
                "mode": "paper",
                "reason": "",
            }
            if params.order_sent and trade
            else {"sent": False, "status": "", "order_id": None, "reason": "the risk check did not pass: HOLD"}
        )
        chart = {"png": artifact_put(data=tiny_png(), kind="charts", ext="png"), "symbol": ctx.symbol, "bar": "1d"}
        return {"decision": decision, "chart": chart, "order": order}


if registry.get(TradeOutputs.name) is None:
    register(TradeOutputs)
