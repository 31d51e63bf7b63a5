"""Live run monitor: a run's status changes as server-sent events (DESIGN §6, "live updates").

No new server and no message bus: the stream watches the rows. Every LIVE_POLL_INTERVAL_S it
reads the run's status and each step's (status, attempt, finished_at), two small queries, and
sends one event per change. The database stays the only source of truth, so a worker on
another machine needs to know nothing about the browsers watching its steps.

Events (`event:` name, JSON `data:`):
- `step`: a step changed: node_id, status, attempt, queued_at, started_at, finished_at,
  duration_s, error.
- `run`: the run's status changed: status, started_at, finished_at, duration_s, error.
- `end`: the run is finished (sent once; the stream then closes): status, error.

Every event's `id:` encodes what the client has been told so far (the run's status and each
step's status and attempt, see `state_id`). A browser that reconnects sends it back in
`Last-Event-ID` and receives only what changed since; the run page passes the state it was
rendered with as `?last_event_id=` on its first connection, so nothing between the render and
the connection is lost either. A comment line every LIVE_HEARTBEAT_S keeps proxies from closing
a quiet stream and lets the server notice a browser that went away; after LIVE_STREAM_MAX_S
the server ends the stream (a thread is never held forever) and the browser reconnects after
`retry` milliseconds, resuming from its last event id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, close_old_connections

from workflows.models import RUN_FINISHED, Run, RunStatus, StepRun, StepStatus

logger = logging.getLogger(__name__)

# Milliseconds a browser waits before reconnecting after the stream ends or breaks.
RETRY_MS = 3000
# Seconds the stream goes on after the run finished while a step is still queued or running
# (a running step of a cancelled run stops at its next cancel check, moments later).
SETTLE_S = 5.0
MAX_ERROR_CHARS = 2000

# One letter per status in event ids; "?" is a step or run the client knows nothing about.
STEP_CODES = {
    StepStatus.PENDING: "p",
    StepStatus.QUEUED: "q",
    StepStatus.RUNNING: "r",
    StepStatus.WAITING: "w",
    StepStatus.SUCCEEDED: "s",
    StepStatus.FAILED: "f",
    StepStatus.CANCELLED: "c",
    StepStatus.SKIPPED: "k",
}
RUN_CODES = {
    RunStatus.PENDING: "p",
    RunStatus.RUNNING: "r",
    RunStatus.WAITING: "w",
    RunStatus.SUCCEEDED: "s",
    RunStatus.FAILED: "f",
    RunStatus.CANCELLED: "c",
}
UNKNOWN = "?"
_STEP_STATUS = {code: status for status, code in STEP_CODES.items()}
_RUN_STATUS = {code: status for status, code in RUN_CODES.items()}
STATE_ID = re.compile(r"^([a-z?])-((?:[a-z?][0-9]{1,6})(?:\.[a-z?][0-9]{1,6})*)?$")
ACTIVE_STEPS = (StepStatus.QUEUED, StepStatus.RUNNING)

STEP_FIELDS = ("id", "node_id", "status", "attempt", "queued_at", "started_at", "finished_at", "error")
RUN_FIELDS = ("id", "status", "started_at", "finished_at", "error")


def poll_interval_s() -> float:
    return float(settings.LIVE_POLL_INTERVAL_S)


def heartbeat_s() -> float:
    return float(settings.LIVE_HEARTBEAT_S)


def stream_max_s() -> float:
    return float(settings.LIVE_STREAM_MAX_S)


def state_id(run_status: str | None, steps: Sequence[tuple[str, int] | None]) -> str:
    """`<run>-<step>.<step>...`: a letter per status, then each step's attempt, in step-id
    order; e.g. `r-s1.r1.p0`. What a client knows, so a reconnection can resume from it."""
    run = RUN_CODES.get(run_status, UNKNOWN) if run_status else UNKNOWN
    codes = ".".join(f"{STEP_CODES.get(s[0], UNKNOWN)}{s[1]}" if s else f"{UNKNOWN}0" for s in steps)
    return f"{run}-{codes}"


def state_id_parse(value: str, *, step_count: int) -> tuple[str | None, list[tuple[str, int] | None]] | None:
    """The (run status, [(step status, attempt) or None]) an id stands for; None when the id
    is malformed or is not for a run with this many steps (then the client gets everything)."""
    match = STATE_ID.match(value.strip()[:4000])
    if not match:
        return None
    steps_part = match.group(2) or ""
    codes = steps_part.split(".") if steps_part else []
    if len(codes) != step_count:
        return None
    steps: list[tuple[str, int] | None] = []
    for code in codes:
        status = _STEP_STATUS.get(code[0])
        steps.append((status, int(code[1:])) if status else None)
    return _RUN_STATUS.get(match.group(1)), steps


def run_state_id(run: Run, steps: Sequence[StepRun]) -> str:
    """The id of a run as rendered (steps in id order): the run page's starting point."""
    return state_id(run.status, [(s.status, s.attempt) for s in sorted(steps, key=lambda s: s.id)])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _duration(row: dict[str, Any]) -> float | None:
    if row["started_at"] and row["finished_at"]:
        return (row["finished_at"] - row["started_at"]).total_seconds()
    return None


def _step_data(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "node_id": row["node_id"],
        "status": row["status"],
        "attempt": row["attempt"],
        "queued_at": _iso(row["queued_at"]),
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
        "duration_s": _duration(row),
        "error": (row["error"] or "")[:MAX_ERROR_CHARS],
    }


def _run_data(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "status": row["status"],
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
        "duration_s": _duration(row),
        "error": (row["error"] or "")[:MAX_ERROR_CHARS],
    }


def sse(event: str, data: Any, *, event_id: str | None = None) -> str:
    """One server-sent event. JSON has no raw newlines, so `data` is one line."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class RunWatcher:
    """Compares the run's rows with what the client was told, and says what changed."""

    def __init__(self, run_id: int, *, last_event_id: str = "") -> None:
        self.run_id = run_id
        self.last_event_id = last_event_id
        self.step_ids: list[int] | None = None
        self.known_run: str | None = None
        # step id -> (status, attempt, finished_at) the client was told
        self.known: dict[int, tuple[str, int, datetime | None]] = {}
        self.finished_seen_at: float | None = None

    def _resume(self, steps: list[dict[str, Any]]) -> None:
        self.step_ids = [s["id"] for s in steps]
        parsed = state_id_parse(self.last_event_id, step_count=len(steps)) if self.last_event_id else None
        if parsed is None:
            return
        self.known_run, told = parsed
        for row, was in zip(steps, told, strict=True):
            # The id holds status and attempt; a step the client has right keeps what it has.
            if was is not None and was == (row["status"], row["attempt"]):
                self.known[row["id"]] = (row["status"], row["attempt"], row["finished_at"])

    def state_id(self) -> str:
        steps = []
        for step_id in self.step_ids or []:
            known = self.known.get(step_id)
            steps.append((known[0], known[1]) if known else None)
        return state_id(self.known_run, steps)

    def poll(self) -> tuple[list[str], bool]:
        """(events to send, whether the stream is over)."""
        # The run first: once it reads as finished, the steps read next are as new as that.
        run = Run.objects.filter(id=self.run_id).values(*RUN_FIELDS).first()
        if run is None:
            return [sse("end", {"status": "deleted", "error": "The run was deleted"})], True
        steps = list(StepRun.objects.filter(run_id=self.run_id).order_by("id").values(*STEP_FIELDS))
        if self.step_ids is None:
            self._resume(steps)
        events = []
        for row in steps:
            seen = (row["status"], row["attempt"], row["finished_at"])
            if self.known.get(row["id"]) != seen:
                self.known[row["id"]] = seen
                events.append(sse("step", _step_data(row), event_id=self.state_id()))
        if self.known_run != run["status"]:
            self.known_run = run["status"]
            events.append(sse("run", _run_data(run), event_id=self.state_id()))
        if run["status"] not in RUN_FINISHED:
            return events, False
        now = time.monotonic()
        self.finished_seen_at = self.finished_seen_at or now
        if any(row["status"] in ACTIVE_STEPS for row in steps) and now - self.finished_seen_at < SETTLE_S:
            return events, False
        events.append(sse("end", {"status": run["status"], "error": run["error"]}, event_id=self.state_id()))
        return events, True


class RunEventStream:
    """The `text/event-stream` body of one connection, for WSGI (iterate it) or ASGI (`aiter`)."""

    def __init__(self, run_id: int, *, last_event_id: str = "") -> None:
        self.watcher = RunWatcher(run_id, last_event_id=last_event_id)
        self.poll_s = poll_interval_s()
        self.heartbeat_s = heartbeat_s()
        self.deadline = time.monotonic() + stream_max_s()
        self.last_sent = time.monotonic()

    def tick(self) -> tuple[str, bool]:
        """One look at the rows: (text to send, whether to close the stream)."""
        try:
            events, done = self.watcher.poll()
        except DatabaseError:
            # A broken connection (database restart): end; the browser reconnects and resumes.
            logger.warning("live stream of run %s: database error", self.watcher.run_id, exc_info=True)
            close_old_connections()
            return ": database unavailable; reconnect\n\n", True
        now = time.monotonic()
        text = "".join(events)
        if done:
            return text, True
        if now >= self.deadline:
            return text + ": stream lifetime reached; reconnect\n\n", True
        if text:
            self.last_sent = now
        elif now - self.last_sent >= self.heartbeat_s:
            self.last_sent = now
            text = ": heartbeat\n\n"
        return text, False

    def __iter__(self) -> Iterator[str]:
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            text, done = self.tick()
            if text:
                yield text
            if done:
                return
            time.sleep(self.poll_s)

    async def aiter(self) -> AsyncIterator[str]:
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            text, done = await sync_to_async(self.tick)()
            if text:
                yield text
            if done:
                return
            await asyncio.sleep(self.poll_s)
