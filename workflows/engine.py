"""The engine: runs a pinned workflow version as a DAG of Celery tasks (DESIGN §5).

The database decides what runs next. `run_start` writes one StepRun per node and dispatches
the ready ones; the generic `execute_step` task claims its row with a compare-and-set, runs the
step and calls `run_advance`, which, under a row lock on the run, dispatches whatever became
ready. Dispatch happens only after commit, and a message that cannot be sent (the broker is
down) never fails or undoes what was committed: the step stays queued, marked `dispatch_failed`,
and the sweeper sends it at its next pass. A periodic sweeper finds steps whose message or worker
was lost.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string
from pydantic import ValidationError

from workflows.errors import ApplicationError, RunStateError, StepCancelled, StepError, StepParked
from workflows.graph import Graph, GraphSpec, graph_check, graph_upgrade, run_context
from workflows.idempotency import Idempotency
from workflows.models import (
    Batch,
    Run,
    RunStatus,
    StepRun,
    StepStatus,
    Trigger,
    Workflow,
    WorkflowVersion,
)
from workflows.notify.alerts import run_finished_later
from workflows.notify.services import scrub
from workflows.registry import registry
from workflows.selectors import version_latest

logger = logging.getLogger(__name__)

SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,31}$")
# Seconds between the soft limit (the step is told to stop) and the hard one (it is killed).
HARD_LIMIT_MARGIN_S = 10
# Executions the sweeper may add, beyond the retry policy, for steps whose worker died.
LOST_STEP_RECOVERIES = 1
ACTIVE_RUNS = (RunStatus.PENDING, RunStatus.RUNNING)
MAX_LOG_LINES = 500


def log_entry(message: str, *, level: str = "info", at: datetime | None = None) -> dict[str, Any]:
    """One line of a step's log, as stored in StepRun.logs and shown on the run page."""
    return {"t": (at or timezone.now()).isoformat(), "level": level, "message": message}


@dataclass
class StepContext:
    """What a step may know about the run it is part of, and how it reports back."""

    run_id: int
    step_run_id: int
    node_id: str
    symbol: str
    run_params: dict[str, Any]
    attempt: int
    idempotency_key: str
    # The workflow's owner: whose private data (uploaded bars) the step may read.
    owner_id: int | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    _last_cancel_check: float = 0.0

    def log(self, message: str, *, level: str = "info") -> None:
        if len(self.logs) < MAX_LOG_LINES:
            self.logs.append(log_entry(message, level=level))

    def park(self, reason: str) -> None:
        """Stop here and wait (status WAITING, no worker held) until `step_resume` finishes the step."""
        raise StepParked(reason)

    def check_cancelled(self, *, fresh: bool = False) -> None:
        """Long steps call this now and then; it raises StepCancelled once the run is cancelled.
        `fresh`: ask the database now, not at most twice a second (right before and after a side
        effect such as an order, where half a second is the race the check is there to close)."""
        now = time.monotonic()
        if not fresh and now - self._last_cancel_check < 0.5:
            return
        self._last_cancel_check = now
        if Run.objects.filter(id=self.run_id, cancel_requested=True).exists():
            raise StepCancelled()


@lru_cache(maxsize=512)
def _graph_of(version_id: int) -> Graph:
    """The parsed graph of a version, upgraded to the step types' current versions. Versions
    never change, nor do step types within a process, so each process parses it once."""
    stored = WorkflowVersion.objects.values_list("graph", flat=True).get(id=version_id)
    return Graph(GraphSpec.model_validate(graph_upgrade(stored)[0]))


# What a caller tells its user when a run was saved but its first steps could not be sent.
BROKER_DOWN_MESSAGE = "queued; the task broker is unavailable, it will start when it is back"


@dataclass
class DispatchWatch:
    """The runs whose step messages could not be sent while the watch was open."""

    failed_runs: set[int] = field(default_factory=set)

    def failed(self, run_id: int | None = None) -> bool:
        return bool(self.failed_runs) if run_id is None else run_id in self.failed_runs


_watch: ContextVar[DispatchWatch | None] = ContextVar("dispatch_watch", default=None)


@contextmanager
def dispatch_watch() -> Iterator[DispatchWatch]:
    """Open around a start (run_start, batch_start) whose commit happens inside: a step message the
    broker refused is recorded here, so the caller can say "queued" instead of failing."""
    watch = DispatchWatch()
    token = _watch.set(watch)
    try:
        yield watch
    finally:
        _watch.reset(token)


def _dispatch(step_run: StepRun, graph: Graph, *, countdown: float = 0) -> None:
    from workflows.tasks import execute_step_task

    queue = graph.queue(step_run.node_id)
    limit = graph.timeout_s(step_run.node_id)
    step_run_id, run_id = step_run.id, step_run.run_id

    def send() -> None:
        watch = _watch.get()
        if watch is not None and watch.failed():
            # The broker refused a message of this start already: each try can take seconds
            # (connection timeout, publish retries), and a batch has hundreds. Mark it for the sweeper.
            StepRun.objects.filter(id=step_run_id, status=StepStatus.QUEUED).update(dispatch_failed=True)
            watch.failed_runs.add(run_id)
            return
        try:
            execute_step_task.apply_async(
                args=[step_run_id],
                queue=queue,
                countdown=countdown,
                soft_time_limit=limit,
                time_limit=limit + HARD_LIMIT_MARGIN_S,
            )
        except Exception:
            # The one place a send can fail (kombu OperationalError, a redis ConnectionError, ...).
            # The run is committed and must stay so: never raise into the caller (a 500 to a client
            # that retries would start a second run). The step stays queued; the sweeper sends it
            # at its next pass once the broker is back.
            logger.exception("step run %s (run %s) not sent to queue %s; the sweeper will", step_run_id, run_id, queue)
            StepRun.objects.filter(id=step_run_id, status=StepStatus.QUEUED).update(dispatch_failed=True)
            if watch is not None:
                watch.failed_runs.add(run_id)

    transaction.on_commit(send)


def latest_version(workflow: Workflow) -> WorkflowVersion:
    version = version_latest(workflow=workflow)
    if version is None:
        raise ApplicationError(f'Workflow "{workflow.name}" has no saved version')
    return version


def _create_run(
    *,
    workflow: Workflow,
    version: WorkflowVersion,
    user,
    symbol: str,
    overrides: dict[str, Any],
    trigger: str,
    rerun_of: Run | None = None,
    batch: Batch | None = None,
    idempotency: Idempotency | None = None,
) -> tuple[Run, Graph, dict[str, StepRun]]:
    symbol = (symbol or "").strip().upper()
    if not SYMBOL.match(symbol):
        raise ApplicationError(f'"{symbol}" is not a valid symbol (letters, digits, "." and "-", up to 32)')
    for key in overrides:
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ApplicationError(f'Parameter override name "{key}" is not a valid name')
        if not isinstance(overrides[key], str | int | float | bool):
            raise ApplicationError(f'Parameter override "{key}" must be text, a number or true/false')
    context = run_context(_graph_of(version.id), overrides=overrides, runtime={"symbol": symbol})
    # The stored graph as its step types read it today: an old version whose step type has since
    # renamed a param runs with its value under the new name.
    graph = graph_check(graph_upgrade(version.graph)[0], context=context)
    run = Run.objects.create(
        workflow=workflow,
        version=version,
        created_by=user,
        symbol=symbol,
        overrides=overrides,
        params=context,
        trigger=trigger,
        rerun_of=rerun_of,
        origin=(rerun_of.origin or rerun_of) if rerun_of else None,
        batch=batch,
        idempotency_key=idempotency.key if idempotency else "",
        idempotency_fingerprint=idempotency.fingerprint if idempotency else "",
    )
    steps = {}
    for node_id in graph.order():
        step_type = graph.step_type(node_id)
        params = step_type.Params.model_validate(graph.resolved_params(node_id, context)).model_dump(mode="json")
        steps[node_id] = StepRun(run=run, node_id=node_id, step_type=step_type.name, params=params)
    StepRun.objects.bulk_create(steps.values())
    steps = {s.node_id: s for s in run.steps.all()}
    return run, graph, steps


@transaction.atomic
def run_start(
    *,
    workflow: Workflow,
    user,
    symbol: str,
    version: WorkflowVersion | None = None,
    overrides: dict[str, Any] | None = None,
    trigger: str = Trigger.MANUAL,
    idempotency: Idempotency | None = None,
) -> Run:
    """Validate the graph with this run's values, write the run and its steps, dispatch.
    `idempotency` is written on the run (see workflows/idempotency.py: `start_once` calls this)."""
    version = version or latest_version(workflow)
    if version.workflow_id != workflow.id:
        raise ApplicationError(f"Version {version.number} does not belong to this workflow")
    run, _, _ = _create_run(
        workflow=workflow,
        version=version,
        user=user,
        symbol=symbol,
        overrides=overrides or {},
        trigger=trigger,
        idempotency=idempotency,
    )
    run_advance(run_id=run.id)
    return run


MAX_BATCH_SYMBOLS = 500


@transaction.atomic
def batch_start(
    *,
    workflow: Workflow,
    user,
    symbols: list[str],
    version: WorkflowVersion | None = None,
    overrides: dict[str, Any] | None = None,
    trigger: str = Trigger.MANUAL,
    label: str = "",
    idempotency: Idempotency | None = None,
) -> Batch:
    """One run per symbol of the same version, dispatched together. All or nothing: a bad symbol or
    parameter refuses the whole batch before anything is written or sent."""
    cleaned = list(dict.fromkeys((s or "").strip().upper() for s in symbols))
    if not cleaned or cleaned == [""]:
        raise ApplicationError("A batch needs at least one symbol")
    if len(cleaned) > MAX_BATCH_SYMBOLS:
        raise ApplicationError(f"A batch may have at most {MAX_BATCH_SYMBOLS} symbols, not {len(cleaned)}")
    bad = [s for s in cleaned if not SYMBOL.match(s)]
    if bad:
        raise ApplicationError(f"Not valid symbols: {', '.join(repr(s) for s in bad[:10])}")
    version = version or latest_version(workflow)
    if version.workflow_id != workflow.id:
        raise ApplicationError(f"Version {version.number} does not belong to this workflow")
    batch = Batch.objects.create(
        workflow=workflow,
        version=version,
        created_by=user,
        trigger=trigger,
        label=label[:200],
        symbols=cleaned,
        overrides=overrides or {},
        idempotency_key=idempotency.key if idempotency else "",
        idempotency_fingerprint=idempotency.fingerprint if idempotency else "",
    )
    for symbol in cleaned:
        run, _, _ = _create_run(
            workflow=workflow,
            version=version,
            user=user,
            symbol=symbol,
            overrides=overrides or {},
            trigger=trigger,
            batch=batch,
        )
        _advance(run.id)
    return batch


@transaction.atomic
def run_advance(*, run_id: int) -> None:
    """Move the run forward: dispatch steps whose upstream all succeeded, or finish the run."""
    _advance(run_id)


def _advance(run_id: int) -> None:
    # Callers hold a transaction; the row lock serialises advances of one run.
    run = Run.objects.select_for_update().get(id=run_id)
    if run.finished:
        return
    graph = _graph_of(run.version_id)
    steps = {s.node_id: s for s in run.steps.only("id", "run_id", "node_id", "status", "error")}
    now = timezone.now()

    # The run itself is not cancelled (it would be finished), so a cancelled step is a failure.
    failed = [s for s in steps.values() if s.status in (StepStatus.FAILED, StepStatus.CANCELLED)]
    if failed:
        run.steps.filter(status__in=[StepStatus.PENDING, StepStatus.QUEUED]).update(
            status=StepStatus.SKIPPED, finished_at=now
        )
        # A step waiting for an approval has nothing left to wait for.
        run.steps.filter(status=StepStatus.WAITING).update(
            status=StepStatus.CANCELLED, finished_at=now, error="Another step of the run failed"
        )
        names = ", ".join(f'"{s.node_id}"' for s in failed)
        run.status, run.finished_at = RunStatus.FAILED, now
        run.error = f"Step {names} failed: {failed[0].error}"
        run.save(update_fields=["status", "finished_at", "error"])
        run_finished_later(run_id=run.id)  # alerts, after commit, in a task: never blocks or fails the run
        return

    if all(s.status == StepStatus.SUCCEEDED for s in steps.values()):
        run.status, run.finished_at = RunStatus.SUCCEEDED, now
        run.started_at = run.started_at or now
        run.save(update_fields=["status", "finished_at", "started_at"])
        run_finished_later(run_id=run.id)
        return

    ready = [
        step
        for node_id, step in steps.items()
        if step.status == StepStatus.PENDING
        and all(steps[up].status == StepStatus.SUCCEEDED for up in graph.upstream(node_id))
    ]
    if ready and StepRun.objects.filter(id__in=[s.id for s in ready], status=StepStatus.PENDING).update(
        status=StepStatus.QUEUED, queued_at=now
    ):
        for step in ready:
            _dispatch(step, graph)

    waiting = any(s.status == StepStatus.WAITING for s in steps.values())
    active = any(s.status in (StepStatus.QUEUED, StepStatus.RUNNING) for s in steps.values())
    if waiting and not active and not ready and run.status != RunStatus.WAITING:
        run.status = RunStatus.WAITING
        run.save(update_fields=["status"])
    elif not (waiting or active or ready):
        # Nothing can move any more; never leave such a run "running" forever.
        stuck = ", ".join(f'"{s.node_id}" ({s.status})' for s in steps.values() if s.status != StepStatus.SUCCEEDED)
        run.status, run.finished_at = RunStatus.FAILED, now
        run.error = f"Run stopped with steps that cannot start: {stuck}"
        run.save(update_fields=["status", "finished_at", "error"])
        run_finished_later(run_id=run.id)


def _inputs(step: StepRun, graph: Graph) -> dict[str, Any]:
    edges = graph.incoming(step.node_id)
    if not edges:
        return {}
    upstream = dict(
        StepRun.objects.filter(run_id=step.run_id, node_id__in=graph.upstream(step.node_id)).values_list(
            "node_id", "outputs"
        )
    )
    return {e.target_port: upstream[e.source].get(e.source_port) for e in edges}


def _check_outputs(step_type, outputs: Any) -> dict[str, Any]:
    if not isinstance(outputs, dict):
        raise StepError(f"Step type {step_type.name} returned {type(outputs).__name__}, not a dict of outputs")
    missing = [p.name for p in step_type.outputs if p.name not in outputs]
    if missing:
        raise StepError(f"Step type {step_type.name} did not produce output(s) {', '.join(missing)}")
    try:
        json.dumps(outputs, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StepError(f"Step type {step_type.name} returned outputs that are not plain JSON: {exc}") from exc
    return outputs


def step_run_execute(*, step_run_id: int, task_id: str = "", heartbeat: bool = False) -> None:
    """Claim one step, run it, record what happened, advance the run. Safe to call twice.

    `task_id`: the Celery message being executed, recorded by the claim, so the worker's main
    process can settle this execution if it is killed (`step_run_killed`). `heartbeat`: keep
    `heartbeat_at` fresh while the step runs, so the sweeper knows within
    ENGINE_HEARTBEAT_LOST_S when the process running it died (a worker's executions do both)."""
    step = StepRun.objects.select_related("run__workflow").filter(id=step_run_id, status=StepStatus.QUEUED).first()
    if step is None:
        logger.info("step run %s was already taken or is no longer queued", step_run_id)
        return
    run = step.run
    graph = _graph_of(run.version_id)
    # Upstream outputs are final once a step is queued, so inputs are resolved before the
    # claim and written by it: one round trip.
    inputs = _inputs(step, graph)
    now = timezone.now()
    claimed = StepRun.objects.filter(id=step_run_id, status=StepStatus.QUEUED).update(
        status=StepStatus.RUNNING,
        started_at=now,
        finished_at=None,
        attempt=F("attempt") + 1,
        inputs=inputs,
        task_id=task_id,
        heartbeat_at=now,
    )
    if not claimed:
        logger.info("step run %s was taken by another delivery", step_run_id)
        return
    step.status, step.attempt, step.inputs = StepStatus.RUNNING, step.attempt + 1, inputs
    if run.finished or run.cancel_requested:
        _finish(step, status=StepStatus.CANCELLED, error="Run was cancelled before this step started")
        return
    if run.status == RunStatus.PENDING:
        Run.objects.filter(id=run.id, status=RunStatus.PENDING).update(status=RunStatus.RUNNING, started_at=now)

    step_type = registry.get(step.step_type)
    ctx = StepContext(
        run_id=run.id,
        step_run_id=step.id,
        node_id=step.node_id,
        owner_id=run.workflow.owner_id,
        symbol=run.symbol,
        run_params=run.params,
        attempt=step.attempt,
        # Reruns share their first run's key: a rerun never repeats a side effect (an order)
        # that any earlier run of the chain may already have made.
        idempotency_key=f"run{run.origin_id or run.id}-{step.node_id}",
    )
    try:
        if step_type is None:
            raise StepError(f'Step type "{step.step_type}" is not installed on this worker')
        params = step_type.Params.model_validate(step.params)
        with _heartbeat(step) if heartbeat else nullcontext():
            outputs = _check_outputs(step_type, step_type().run(ctx, inputs, params))
    except StepCancelled:
        ctx.log("Stopped: the run was cancelled", level="warning")
        _finish(step, status=StepStatus.CANCELLED, error="Run was cancelled", logs=ctx.logs)
        return
    except StepParked as parked:
        ctx.log(f"Waiting: {parked.reason}")
        _finish(step, status=StepStatus.WAITING, logs=ctx.logs)
        return
    except Exception as exc:
        retryable = isinstance(exc, SoftTimeLimitExceeded) or (
            step_type is not None and isinstance(exc, step_type.retry_on)
        )
        message = _describe(exc, graph.timeout_s(step.node_id))
        ctx.log(message, level="error")
        if not isinstance(exc, StepError | SoftTimeLimitExceeded | ValidationError):
            # The traceback goes to the worker's log only: it can hold what users must not see.
            logger.exception("step run %s (%s) raised", step.id, step.step_type)
        _retry_or_fail(step, graph, retryable=retryable, error=message, logs=ctx.logs)
        return
    _finish(step, status=StepStatus.SUCCEEDED, outputs=outputs, logs=ctx.logs)


def _retry_or_fail(step: StepRun, graph: Graph, *, retryable: bool, error: str, logs: list) -> None:
    """The step's own retry policy (the node's RetrySpec): run it again after its backoff, or fail."""
    retry = graph.nodes[step.node_id].retry
    if retryable and step.attempt <= retry.max:
        delay = retry.backoff_s * 2 ** (step.attempt - 1)
        logs = [*logs, log_entry(f"Attempt {step.attempt} failed; retrying in {delay:g}s", level="warning")]
        _requeue(step, graph, error=error, logs=logs, countdown=delay)
        return
    _finish(step, status=StepStatus.FAILED, error=error, logs=logs)


@contextmanager
def _heartbeat(step: StepRun) -> Iterator[None]:
    """While the body runs, a thread writes `heartbeat_at` every ENGINE_HEARTBEAT_S (its own
    database connection, closed at the end). It stops when the step ends, and by itself once the
    execution no longer owns the row. A failed write is logged and tried again at the next beat."""
    stop = threading.Event()
    interval = settings.ENGINE_HEARTBEAT_S
    mine = StepRun.objects.filter(id=step.id, status=StepStatus.RUNNING, attempt=step.attempt)

    def beat() -> None:
        try:
            while not stop.wait(interval):
                try:
                    if not mine.update(heartbeat_at=timezone.now()):
                        return
                except DatabaseError:
                    logger.warning("step run %s: heartbeat not written; next try in %ss", step.id, interval)
                    connection.close()
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"heartbeat-{step.id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def _describe(exc: BaseException, timeout_s: int) -> str:
    if isinstance(exc, SoftTimeLimitExceeded):
        return f"Timed out after {timeout_s}s"
    if isinstance(exc, StepError):
        return str(exc)
    if isinstance(exc, ValidationError):
        return f"Invalid parameters: {exc}"
    return f"{type(exc).__name__}: {exc}"


def step_run_killed(*, step_run_id: int, task_id: str, timed_out: bool) -> str | None:
    """The worker's main process saw the execution of message `task_id` end without a result:
    killed at its hard time limit (`timed_out`), or its process died. Settled now, not when the
    sweeper notices: a timeout fails the step at once (re-run only by its own retry policy), a
    death re-queues it as the sweeper would. Nothing happens when that execution no longer owns
    the step (it finished, or the step was given to another). Returns what was done."""
    if not task_id:
        return None
    step = StepRun.objects.select_related("run").filter(id=step_run_id, status=StepStatus.RUNNING, task_id=task_id)
    step = step.first()
    if step is None:
        return None
    graph = _graph_of(step.run.version_id)
    if timed_out:
        limit = graph.timeout_s(step.node_id)
        message = (
            f"Timed out after {limit}s: the step did not stop at its time limit and was stopped by force "
            f"{HARD_LIMIT_MARGIN_S}s later"
        )
        if step.run.finished:
            _finish(step, status=StepStatus.CANCELLED, error=message)
            return "cancelled"
        _retry_or_fail(step, graph, retryable=True, error=message, logs=[log_entry(message, level="error")])
        return "timed_out"
    return _recover_lost(step, graph, f"The worker process running this step died (attempt {step.attempt})")


def _finish(
    step: StepRun, *, status: str, error: str = "", outputs: dict | None = None, logs: list | None = None
) -> None:
    # Compare-and-set on (RUNNING, attempt): if the sweeper gave this step to another
    # execution meanwhile, that execution's result is the one that counts.
    with transaction.atomic():
        written = StepRun.objects.filter(id=step.id, status=StepStatus.RUNNING, attempt=step.attempt).update(
            status=status,
            error=error,
            outputs=outputs or {},
            logs=(step.logs or []) + (logs or []),
            finished_at=None if status == StepStatus.WAITING else timezone.now(),
        )
        if written:
            _advance(step.run_id)


def _requeue(step: StepRun, graph: Graph, *, error: str, logs: list, countdown: float) -> None:
    with transaction.atomic():
        # queued_at is when the step is due, so the sweeper does not take a retry waiting out
        # its backoff for a lost message.
        due = timezone.now() + timedelta(seconds=countdown)
        if StepRun.objects.filter(id=step.id, status=StepStatus.RUNNING, attempt=step.attempt).update(
            status=StepStatus.QUEUED, queued_at=due, error=error, logs=(step.logs or []) + logs
        ):
            _dispatch(step, graph, countdown=countdown)


@transaction.atomic
def step_resume(*, step_run_id: int, outputs: dict[str, Any] | None = None, error: str = "", log: str = "") -> bool:
    """Finish a WAITING step (an approval was decided): succeeded with `outputs`, or failed with
    `error`, then move the run on. False when the step was no longer waiting (cancelled, or
    resumed by someone else first): nothing is changed then."""
    step = StepRun.objects.select_for_update().filter(id=step_run_id, status=StepStatus.WAITING).first()
    if step is None:
        return False
    step_type = registry.get(step.step_type)
    if not error and step_type is not None:
        outputs = _check_outputs(step_type, outputs or {})
    lines = [log_entry(log or error, level="error" if error else "info")]
    StepRun.objects.filter(id=step.id).update(
        status=StepStatus.FAILED if error else StepStatus.SUCCEEDED,
        error=error,
        outputs={} if error else outputs,
        logs=(step.logs or []) + (lines if (log or error) else []),
        finished_at=timezone.now(),
    )
    Run.objects.filter(id=step.run_id, status=RunStatus.WAITING).update(status=RunStatus.RUNNING)
    _advance(step.run_id)
    return True


@transaction.atomic
def run_cancel(*, run: Run) -> Run:
    """Stop a run: nothing new starts; running steps stop at their next cancel check.

    Under the run's row lock: a step's side effect that takes the same lock (the trading gate locks
    the run before it writes an order) happens wholly before this cancel or sees it. After commit,
    each RUN_CANCELLED_HOOKS hook undoes what the run already did (the orders it sent)."""
    run = Run.objects.select_for_update().get(id=run.id)
    if run.finished:
        raise RunStateError(f"Run {run.id} already {run.status}; nothing to cancel")
    now = timezone.now()
    run.cancel_requested = True
    run.status, run.finished_at = RunStatus.CANCELLED, now
    run.error = "Cancelled by user"
    run.save(update_fields=["cancel_requested", "status", "finished_at", "error"])
    run.steps.filter(status__in=[StepStatus.PENDING, StepStatus.QUEUED, StepStatus.WAITING]).update(
        status=StepStatus.CANCELLED, finished_at=now, error="Run was cancelled"
    )
    run_id = run.id
    # After commit, so a hook sees the cancel committed (and an order placed after it is refused by
    # the gate, not missed by the hook); robust: a failing hook never undoes the cancel.
    transaction.on_commit(lambda: run_cancelled_hooks_call(run_id=run_id), robust=True)
    return run


def run_cancelled_hooks_call(*, run_id: int) -> list[str]:
    """Call every RUN_CANCELLED_HOOKS hook (with run_id=) and add what each says to the run's error.

    workflows names no domain app: the hooks are named in settings (brokers cancels the run's
    orders). One failing never stops the next; its failure is written on the run too."""
    notes: list[str] = []
    for path in settings.RUN_CANCELLED_HOOKS:
        try:
            note = import_string(path)(run_id=run_id)
        except Exception as exc:
            # No traceback: it may quote what the log must not hold; the type, text and where.
            logger.error("run %s: cancel hook %s failed: %s: %s", run_id, path, type(exc).__name__, scrub(str(exc)))
            note = f"The cancel hook {path} failed: {type(exc).__name__}"
        if note:
            notes.append(str(note).strip())
    if notes:
        with transaction.atomic():
            run = Run.objects.select_for_update().get(id=run_id)
            run.error = " ".join([run.error.rstrip(".") + ".", *notes])[:10000]
            run.save(update_fields=["error"])
    return notes


def _same_definition(old_graph: Graph, new_graph: Graph, node_id: str, old: StepRun, new: StepRun) -> bool:
    edges = lambda g: {(e.source, e.source_port, e.target_port) for e in g.incoming(node_id)}  # noqa: E731
    return old.step_type == new.step_type and old.params == new.params and edges(old_graph) == edges(new_graph)


@transaction.atomic
def run_rerun(*, run: Run, user, from_failed: bool, latest: bool) -> Run:
    """A new run of the same symbol and overrides, on the pinned or the latest version.

    From the failed step: every step that succeeded before, with the same definition and all
    its upstream steps reused too, keeps its stored outputs instead of running again."""
    if not run.finished:
        raise RunStateError(f"Run {run.id} is still {run.status}; cancel it or wait before rerunning")
    busy = run.steps.filter(status__in=[StepStatus.QUEUED, StepStatus.RUNNING]).values_list("node_id", flat=True)
    if busy:
        raise RunStateError(f"Run {run.id} still has steps running ({', '.join(busy)}); rerun once they have stopped")
    version = latest_version(run.workflow) if latest else run.version
    new, graph, steps = _create_run(
        workflow=run.workflow,
        version=version,
        user=user,
        symbol=run.symbol,
        overrides=run.overrides,
        trigger=Trigger.RERUN,
        rerun_of=run,
    )
    if from_failed:
        old_graph = _graph_of(run.version_id)
        old_steps = {s.node_id: s for s in run.steps.all()}
        reused: set[str] = set()
        for node_id in graph.order():
            old = old_steps.get(node_id)
            if (
                old is not None
                and old.status == StepStatus.SUCCEEDED
                and graph.upstream(node_id) <= reused
                and _same_definition(old_graph, graph, node_id, old, steps[node_id])
            ):
                reused.add(node_id)
                StepRun.objects.filter(id=steps[node_id].id).update(
                    status=StepStatus.SUCCEEDED,
                    inputs=old.inputs,
                    outputs=old.outputs,
                    logs=[log_entry(f"Reused from run {run.id}")],
                    reused_from=old.reused_from_id or old.id,
                    started_at=old.started_at,
                    finished_at=old.finished_at,
                )
    run_advance(run_id=new.id)
    return new


def step_runs_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Recover from lost messages and dead workers. Run by beat every ENGINE_SWEEP_INTERVAL_S."""
    now = now or timezone.now()
    counts = {"redispatched": 0, "recovered": 0, "failed": 0, "advanced": 0, "errors": 0}
    stale = now - timedelta(seconds=settings.ENGINE_QUEUED_STALE_S)
    # Never sent (the broker was down): sent at the first pass once due. Lost in transit: sent
    # again once its queue shows the loss (_missing_from_queues), or after ENGINE_QUEUED_STALE_S
    # whatever the queue says. A second message is harmless: execute_step claims its row.
    unsent = Q(queued_at__lt=stale) | Q(dispatch_failed=True, queued_at__lte=now)
    queued = list(_queued_steps().filter(unsent))
    queued += [step for step in _missing_from_queues(now) if step.id not in {s.id for s in queued}]
    work = [
        (_sweep_queued, queued),
        (_sweep_running, StepRun.objects.filter(status=StepStatus.RUNNING).select_related("run")),
    ]
    for sweep, steps in work:
        for step in steps:
            # One broken step (say, of a type a deploy removed) must not stop the sweep.
            try:
                outcome = sweep(step, now)
            except Exception:
                logger.exception("sweeper: step run %s", step.id)
                outcome = "errors"
            if outcome:
                counts[outcome] += 1

    # A run whose last step finished while its advance was lost (a crash in between).
    idle = Run.objects.filter(status__in=ACTIVE_RUNS).exclude(
        steps__status__in=[StepStatus.QUEUED, StepStatus.RUNNING, StepStatus.WAITING]
    )
    for run_id in idle.values_list("id", flat=True):
        run_advance(run_id=run_id)
        counts["advanced"] += 1
    if any(counts.values()):
        logger.warning("sweeper: %s", counts)
    return counts


def _queued_steps():
    return StepRun.objects.filter(status=StepStatus.QUEUED, run__status__in=ACTIVE_RUNS).select_related("run")


def _missing_from_queues(now: datetime) -> list[StepRun]:
    """Queued steps whose message is not in their queue: a queue holding fewer messages than it
    has steps due is missing the difference (a worker took them and died before its claim, or
    the broker restarted empty). Queues are first in, first out, so the missing ones are its
    oldest steps; those waiting longer than ENGINE_QUEUED_LOST_S are sent again. A step that
    was only held by a live worker (prefetched) gets a second message, which is harmless."""
    from workflows.queues.lengths import queue_lengths
    from workflows.tasks import execute_step_task

    lost_after = now - timedelta(seconds=settings.ENGINE_QUEUED_LOST_S)
    due = _queued_steps().filter(queued_at__lte=now).order_by("queued_at", "id")
    if not due.filter(queued_at__lt=lost_after).exists():
        return []
    by_queue: dict[str, list[StepRun]] = {}
    for step in due:
        by_queue.setdefault(_graph_of(step.run.version_id).queue(step.node_id), []).append(step)
    try:
        lengths = queue_lengths(execute_step_task.app, list(by_queue))
    except Exception as exc:  # the broker is away: nothing can be sent now anyway
        logger.warning("sweeper: queue lengths unavailable (%s)", exc)
        return []
    missing = []
    for queue, steps in by_queue.items():
        length = lengths.get(queue)
        if length is not None and length < len(steps):
            missing += [step for step in steps[: len(steps) - length] if step.queued_at < lost_after]
    return missing


def _sweep_queued(step: StepRun, now: datetime) -> str | None:
    with transaction.atomic():
        if StepRun.objects.filter(id=step.id, status=StepStatus.QUEUED, queued_at=step.queued_at).update(
            queued_at=now, dispatch_failed=False
        ):
            _dispatch(step, _graph_of(step.run.version_id))
            return "redispatched"
    return None


def _sweep_running(step: StepRun, now: datetime) -> str | None:
    graph = _graph_of(step.run.version_id)
    limit = graph.timeout_s(step.node_id) + HARD_LIMIT_MARGIN_S + settings.ENGINE_RUNNING_GRACE_S
    silence = settings.ENGINE_HEARTBEAT_LOST_S
    last_sign = step.heartbeat_at or step.started_at
    if step.task_id and last_sign and last_sign + timedelta(seconds=silence) < now:
        # A worker's execution beats every ENGINE_HEARTBEAT_S: its process is gone.
        message = f"The worker running this step was lost (attempt {step.attempt}, no sign of life for {silence}s)"
    elif not step.started_at or step.started_at + timedelta(seconds=limit) < now:
        # Past its hard time limit, the worker would have killed it: the worker is gone.
        message = f"The worker running this step was lost (attempt {step.attempt}, no result after {limit}s)"
    else:
        return None
    return _recover_lost(step, graph, message, now=now)


def _recover_lost(step: StepRun, graph: Graph, message: str, *, now: datetime | None = None) -> str | None:
    """A step whose execution died without a word: run it again (at most LOST_STEP_RECOVERIES
    beyond its retry policy; the claim and the order key make that safe), or fail it."""
    if step.run.finished:
        _finish(step, status=StepStatus.CANCELLED, error=message)
        return None
    if step.attempt <= graph.nodes[step.node_id].retry.max + LOST_STEP_RECOVERIES:
        log = log_entry(message + "; running it again", level="warning", at=now)
        _requeue(step, graph, error=message, logs=[log], countdown=0)
        return "recovered"
    _finish(step, status=StepStatus.FAILED, error=message)
    return "failed"
