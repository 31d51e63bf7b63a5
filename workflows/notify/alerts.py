"""Alerts sent when a run finishes (failed: NOTIFY_ALERTS_CHANNEL; either way: RUN_FINISHED_HOOKS,
such as the strategies' own channels) and on events such as the kill switch.

Callers are the engine (`_advance`, under the run's row lock) and the trading gate, so nothing
here may block or fail them: they only register an on-commit callback that sends a Celery task
to the default queue, and the task does the HTTP. A notification that fails is logged and kept in
NotificationLog; it never fails, retries or changes a run.
"""

from __future__ import annotations

import logging
import traceback
import uuid

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from workflows.models import Run, RunStatus
from workflows.notify.services import NotifyError, notification_send_once, scrub, site_link

logger = logging.getLogger(__name__)


# The names are what travels in messages: kept from before this module moved (workflows/alerts.py), so
# a message queued by the old code is still understood after a deploy.
@shared_task(name="workflows.alerts.run_finished")
def run_finished_task(run_id: int) -> None:
    run_finished_notify(run_id=run_id)


@shared_task(name="workflows.alerts.alert")
def alert_task(key: str, text: str) -> None:
    alert_send(key=key, text=text)


def _enqueue_after_commit(task, *args) -> None:
    def send() -> None:
        task.apply_async(args=list(args), queue="default")

    try:
        # robust: a broker that is down is logged, never raised into the caller's commit.
        transaction.on_commit(send, robust=True)
    except Exception:
        logger.exception("could not schedule %s", task.name)


def run_finished_later(*, run_id: int) -> None:
    """The engine calls this as a run becomes SUCCEEDED or FAILED; the work happens after commit."""
    if not settings.NOTIFY_CHANNELS:
        return  # nowhere to send anything: no task at all
    _enqueue_after_commit(run_finished_task, run_id)


def alert_later(*, text: str) -> None:
    """Send `text` to NOTIFY_ALERTS_CHANNEL once the caller's transaction commits."""
    if not settings.NOTIFY_ALERTS_CHANNEL:
        return
    _enqueue_after_commit(alert_task, f"alert-{uuid.uuid4().hex}", text)


def alert_send(*, key: str, text: str, run_id: int | None = None) -> bool:
    """Send to the alerts channel once per key. False (logged) when it could not be sent."""
    channel = settings.NOTIFY_ALERTS_CHANNEL
    if not channel:
        return False
    try:
        notification_send_once(key=key, channel=channel, text=text, run_id=run_id)
    except NotifyError as exc:
        logger.error("alert %s not sent: %s", key, exc.message)
        return False
    return True


def run_failed_text(run: Run) -> str:
    link = site_link(f"/runs/{run.id}/")
    return "\n".join(
        [
            f"Run {run.id} FAILED: {run.workflow.name} on {run.symbol}",
            run.error[:1000] or "(no error recorded)",
            *([link] if link else []),
        ]
    )


def run_finished_notify(*, run_id: int) -> None:
    """The failed-run alert, then every RUN_FINISHED_HOOKS hook; one failing never stops the next."""
    run = Run.objects.select_related("workflow").filter(id=run_id).first()
    if run is None or run.status not in (RunStatus.SUCCEEDED, RunStatus.FAILED):
        return
    if run.status == RunStatus.FAILED:
        alert_send(key=f"run{run.id}-failed-alert", text=run_failed_text(run), run_id=run.id)
    for path in settings.RUN_FINISHED_HOOKS:
        try:
            import_string(path)(run_id=run.id)
        except NotifyError as exc:
            logger.error("run %s: notification hook %s: %s", run.id, path, exc.message)
        except Exception as exc:
            # No traceback (it would quote the error unscrubbed): the scrubbed text and where it came from.
            frames = traceback.extract_tb(exc.__traceback__)
            where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
            logger.error(
                "run %s: notification hook %s failed%s: %s: %s",
                run.id,
                path,
                where,
                type(exc).__name__,
                scrub(str(exc)),
            )
