"""The task queues as staff see them: broker, queue lengths, workers and their tasks; and the
two repairs a stuck step may need, cancel and retry.

Nothing here may hang or fail the page: a broker that cannot be reached within a couple of
seconds is reported as unreachable (with the reason), no worker answering is "no workers
online". Queue lengths are read by lengths.py, one way per broker transport.

Our tables stay the source of truth. Cancel cancels the run through the engine first, then
revokes the Celery task; retry re-dispatches a QUEUED step with the same compare-and-set the
sweeper uses (DESIGN §5), so a duplicate message is harmless: `execute_step` claims its row.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu import Connection

from trading_site.celery import app as celery_app
from workflows import engine
from workflows.errors import ApplicationError, RunStateError
from workflows.graph import Graph, GraphSpec, graph_upgrade
from workflows.models import Run, RunStatus, StepRun, StepStatus
from workflows.queues import lengths
from workflows.queues.lengths import BROKER_TIMEOUT_S, BrokerUnavailable

logger = logging.getLogger(__name__)

# DESIGN §5; a queue a worker consumes from is listed too, whatever its name.
KNOWN_QUEUES = ("default", "charts", "ai", "ibkr")
EXECUTE_STEP = "workflows.tasks.execute_step"
# A queued step older than this is marked as possibly stuck on the page.
STUCK_AFTER_S = 60
QUEUED_STEPS_SHOWN = 100
# The one process holding the IBKR connection is never killed mid-request (an order could be
# left half sent); its task stops at the step's next cancel check instead.
NO_TERMINATE_QUEUES = frozenset({"ibkr"})


def inspect_timeout_s() -> float:
    return float(settings.QUEUE_INSPECT_TIMEOUT_S)


def flower_url() -> str:
    return settings.FLOWER_URL or ""


@dataclass
class QueueInfo:
    name: str
    length: int | None  # None: this transport cannot say
    workers: list[str] = field(default_factory=list)


@dataclass
class WorkerInfo:
    name: str
    queues: list[str]
    active: int
    reserved: int


@dataclass
class TaskInfo:
    id: str
    name: str
    state: str  # active (running now), reserved (prefetched) or scheduled (waiting for its eta)
    worker: str
    queue: str
    step_run_id: int | None = None
    run_id: int | None = None
    node_id: str = ""
    step_status: str = ""
    symbol: str = ""
    workflow: str = ""


@dataclass
class QueueOverview:
    transport: str
    broker_url: str  # password masked
    broker_ok: bool
    broker_error: str = ""
    workers_error: str = ""
    queues: list[QueueInfo] = field(default_factory=list)
    workers: list[WorkerInfo] = field(default_factory=list)
    tasks: list[TaskInfo] = field(default_factory=list)
    flower_url: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _transport() -> str:
    return lengths.transport(celery_app)


def _masked_url() -> str:
    if _transport() == "filesystem":
        return f"filesystem:// {(celery_app.conf.broker_transport_options or {}).get('data_folder_in', '')}"
    try:
        return Connection(celery_app.conf.broker_url).as_uri()  # masks the password
    except Exception:
        return _transport() + "://"


def queue_lengths(queues: list[str]) -> dict[str, int | None]:
    """Lengths with the broker's own transport; BrokerUnavailable when it cannot be reached."""
    try:
        if _transport() in ("redis", "filesystem"):
            return lengths.queue_lengths(celery_app, queues)
        with _connection() as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)
    except BrokerUnavailable:
        raise
    except Exception as exc:
        raise BrokerUnavailable(_reason(exc)) from exc
    return dict.fromkeys(queues)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@contextmanager
def _connection() -> Iterator[Connection]:
    options: dict[str, Any] = {}
    if _transport() == "filesystem":
        options["polling_interval"] = 0.1  # replies are files: look for them often
    elif _transport() == "redis":
        options["socket_connect_timeout"] = BROKER_TIMEOUT_S
    conn = celery_app.connection_for_write(connect_timeout=BROKER_TIMEOUT_S, transport_options=options)
    try:
        yield conn
    finally:
        conn.release()


# Workers and their tasks


def _inspect(command: str, timeout: float, destination: list[str] | None = None) -> dict[str, Any]:
    # Its own connection: kombu connections are not shared between threads.
    with _connection() as conn:
        limit = len(destination) if destination else None
        inspect = celery_app.control.inspect(timeout=timeout, connection=conn, destination=destination, limit=limit)
        return getattr(inspect, command)() or {}


def workers_inspect(*, timeout: float | None = None) -> dict[str, dict[str, Any]]:
    """{command: {worker: reply}} for active_queues, active, reserved and scheduled.

    Every worker that answers the first broadcast is online; it waits `timeout` after the last
    reply, since nobody knows how many workers there are. The other three are addressed to
    those workers, side by side, and return as soon as each has answered. (The first goes
    alone: kombu's filesystem transport creates its reply exchange file without a lock.)"""
    timeout = inspect_timeout_s() if timeout is None else timeout
    if _transport() == "filesystem":
        timeout += 1.0  # its workers look at their control messages once a second
    replies = {"active_queues": _inspect("active_queues", timeout)}
    names = sorted(replies["active_queues"])
    commands = ("active", "reserved", "scheduled")
    if not names:
        return replies | {command: {} for command in commands}
    with ThreadPoolExecutor(len(commands), thread_name_prefix="queue-inspect") as pool:
        results = pool.map(lambda command: _inspect(command, timeout, names), commands)
        replies.update(zip(commands, results, strict=True))
    return replies


def _step_run_id(task: dict[str, Any]) -> int | None:
    if task.get("name") != EXECUTE_STEP:
        return None
    args = task.get("args")
    if isinstance(args, str):  # older workers send a repr
        try:
            args = ast.literal_eval(args)
        except (ValueError, SyntaxError):
            return None
    if isinstance(args, list | tuple) and args and isinstance(args[0], int) and not isinstance(args[0], bool):
        return args[0]
    return None


def _tasks(replies: dict[str, dict[str, Any]]) -> list[TaskInfo]:
    tasks = []
    for state in ("active", "reserved", "scheduled"):
        for worker, entries in sorted(replies.get(state, {}).items()):
            for entry in entries or []:
                task = entry.get("request", entry) if state == "scheduled" else entry
                delivery = task.get("delivery_info") or {}
                tasks.append(
                    TaskInfo(
                        id=str(task.get("id", "")),
                        name=str(task.get("name", "")),
                        state=state,
                        worker=worker,
                        queue=str(delivery.get("routing_key") or ""),
                        step_run_id=_step_run_id(task),
                    )
                )
    steps = StepRun.objects.select_related("run__workflow").in_bulk([t.step_run_id for t in tasks if t.step_run_id])
    for task in tasks:
        step = steps.get(task.step_run_id)
        if step is not None:
            task.run_id, task.node_id, task.step_status = step.run_id, step.node_id, step.status
            task.symbol, task.workflow = step.run.symbol, step.run.workflow.name
    return tasks


def queue_overview() -> QueueOverview:
    """Every figure of the queue page. Never raises: what could not be read says why."""
    overview = QueueOverview(transport=_transport(), broker_url=_masked_url(), broker_ok=True, flower_url=flower_url())
    replies: dict[str, dict[str, Any]] = {}
    lengths: dict[str, int | None] = {}
    try:
        lengths = queue_lengths(list(KNOWN_QUEUES))
    except BrokerUnavailable as exc:
        overview.broker_ok, overview.broker_error = False, exc.message
    except Exception as exc:
        logger.exception("queue page: reading queue lengths")
        overview.broker_ok, overview.broker_error = False, _reason(exc)
    if overview.broker_ok:
        try:
            replies = workers_inspect()
        except Exception as exc:
            logger.warning("queue page: inspecting workers failed", exc_info=True)
            overview.workers_error = _reason(exc)

    consumed: dict[str, list[str]] = {}
    names = sorted({name for reply in replies.values() for name in reply})
    for name in names:
        queues = sorted(q.get("name", "") for q in replies.get("active_queues", {}).get(name) or [])
        for queue in queues:
            consumed.setdefault(queue, []).append(name)
        overview.workers.append(
            WorkerInfo(
                name=name,
                queues=queues,
                active=len(replies.get("active", {}).get(name) or []),
                reserved=len(replies.get("reserved", {}).get(name) or []),
            )
        )
    extra = sorted(set(consumed) - set(KNOWN_QUEUES))
    if extra and overview.broker_ok:
        try:
            lengths.update(queue_lengths(extra))
        except Exception:
            lengths.update(dict.fromkeys(extra))
    overview.queues = [
        QueueInfo(name=q, length=lengths.get(q), workers=consumed.get(q, [])) for q in (*KNOWN_QUEUES, *extra)
    ]
    overview.tasks = _tasks(replies)
    return overview


# Steps waiting for a worker


def _graph(version_graph: dict) -> Graph:
    return Graph(GraphSpec.model_validate(graph_upgrade(version_graph)[0]))


def queued_steps(*, limit: int = QUEUED_STEPS_SHOWN) -> list[StepRun]:
    """Steps of unfinished runs that wait for a worker, oldest first; each with `queue`, `age_s`
    and `stuck` (waiting longer than STUCK_AFTER_S)."""
    steps = list(
        StepRun.objects.filter(status=StepStatus.QUEUED, run__status__in=[RunStatus.PENDING, RunStatus.RUNNING])
        .select_related("run__workflow", "run__version")
        .defer("inputs", "outputs", "logs", "run__version__graph")
        .order_by("queued_at", "id")[:limit]
    )
    graphs: dict[int, Graph | None] = {}
    now = timezone.now()
    for step in steps:
        version_id = step.run.version_id
        if version_id not in graphs:
            try:
                graphs[version_id] = _graph(step.run.version.graph)
            except Exception:
                graphs[version_id] = None
        graph = graphs[version_id]
        step.queue = graph.queue(step.node_id) if graph and step.node_id in graph.nodes else "?"
        step.age_s = (now - step.queued_at).total_seconds() if step.queued_at else None
        step.stuck = step.age_s is not None and step.age_s > STUCK_AFTER_S
    return steps


def step_run_redispatch(*, step_run_id: int, now: datetime | None = None) -> StepRun:
    """Send a QUEUED step to its queue again (its message was lost, say), as the sweeper does:
    a compare-and-set on (QUEUED, queued_at), then dispatch after commit. Executing the step
    twice is impossible: `execute_step` claims the row, and a second delivery exits."""
    now = now or timezone.now()
    with transaction.atomic():
        step = StepRun.objects.select_related("run__version").filter(id=step_run_id).first()
        if step is None:
            raise ApplicationError(f"Step run {step_run_id} does not exist")
        if step.status != StepStatus.QUEUED:
            raise RunStateError(f'Step "{step.node_id}" of run {step.run_id} is {step.status}, not queued')
        if step.run.status not in (RunStatus.PENDING, RunStatus.RUNNING):
            raise RunStateError(f"Run {step.run_id} is {step.run.status}; its steps are not sent any more")
        if step.queued_at and step.queued_at > now:
            due = timezone.localtime(step.queued_at).strftime("%H:%M:%S")
            raise RunStateError(f'Step "{step.node_id}" is waiting out its retry backoff until {due}')
        if not StepRun.objects.filter(id=step.id, status=StepStatus.QUEUED, queued_at=step.queued_at).update(
            queued_at=now, dispatch_failed=False
        ):
            raise RunStateError(f'Step "{step.node_id}" changed meanwhile; look again')
        # The engine's one send: its queue and time limits, and a broker that refuses it leaves
        # the step marked for the sweeper instead of failing this request.
        engine._dispatch(step, engine._graph_of(step.run.version_id))
    step.queued_at = now
    return step


# Cancel


@dataclass
class CancelResult:
    run: Run
    run_cancelled: bool  # False: the run had already finished
    revoked: bool
    terminated: bool
    revoke_error: str = ""


def _is_active_task_of(task_id: str, step_run_id: int) -> bool:
    """Whether the workers say `task_id` is running that very step, off the queues never terminated:
    the form's two fields are checked against each other before a process is killed."""
    try:
        tasks = _tasks({"active": _inspect("active", inspect_timeout_s())})
    except Exception:  # cannot tell: do not kill
        return False
    return any(t.id == task_id and t.step_run_id == step_run_id and t.queue not in NO_TERMINATE_QUEUES for t in tasks)


def task_cancel(*, task_id: str, step_run_id: int, state: str) -> CancelResult:
    """Cancel the run a task belongs to (engine.run_cancel: the database says so first), then
    revoke the task; an active one is terminated, and its step, which the killed execution can
    no longer finish, is marked cancelled with the engine's compare-and-set on (RUNNING, attempt)."""
    step = StepRun.objects.select_related("run__version").filter(id=step_run_id).first()
    if step is None:
        raise ApplicationError(f"Step run {step_run_id} does not exist")
    run = step.run
    run_cancelled = False
    if not run.finished:
        try:
            run = engine.run_cancel(run=run)
            run_cancelled = True
        except RunStateError:
            run.refresh_from_db()  # it finished meanwhile
    try:
        queue = _graph(run.version.graph).queue(step.node_id)
    except Exception:
        queue = ""
    terminate = state == "active" and queue not in NO_TERMINATE_QUEUES and _is_active_task_of(task_id, step_run_id)
    result = CancelResult(run=run, run_cancelled=run_cancelled, revoked=False, terminated=False)
    try:
        with _connection() as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)
            celery_app.control.revoke(task_id, terminate=terminate, signal="SIGTERM", connection=conn)
        result.revoked, result.terminated = True, terminate
    except Exception as exc:
        logger.warning("queue page: revoking task %s failed", task_id, exc_info=True)
        result.revoke_error = _reason(exc)
    if result.terminated:
        step.refresh_from_db(fields=["status", "attempt"])
        StepRun.objects.filter(id=step.id, status=StepStatus.RUNNING, attempt=step.attempt).update(
            status=StepStatus.CANCELLED,
            finished_at=timezone.now(),
            error="Run was cancelled; its task was terminated from the task queue page",
        )
    return result


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return str(timedelta(seconds=int(seconds)))
