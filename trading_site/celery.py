"""The Celery app: configured from Django settings (CELERY_*), tasks found in every app."""

import os

from celery import Celery
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading_site.settings")

app = Celery("trading_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _close_old_connections(task=None, **kwargs) -> None:
    if task is not None and task.request.is_eager:
        return  # runs inside the caller's connection and transaction
    # What Django does at each request: drop connections that are broken or older than
    # CONN_MAX_AGE, keep the rest (CELERY_DB_REUSE_MAX stops Celery closing them every task).
    from django.db import close_old_connections

    close_old_connections()
