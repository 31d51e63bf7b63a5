"""Wiring only: settings, URLs, the Celery app (loaded here so shared tasks bind to it)."""

from trading_site.celery import app as celery_app

__all__ = ("celery_app",)
