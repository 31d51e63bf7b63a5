"""Notifications: a text, with an optional PNG, sent to a channel configured in the environment.

Channels are named in `NOTIFY_CHANNELS` (JSON, or the file `NOTIFY_CHANNELS_FILE`), e.g.

    {"desk":  {"kind": "discord",  "url_file": "/run/secrets/discord_desk"},
     "ops":   {"kind": "slack",    "url": "https://hooks.slack.com/services/..."},
     "phone": {"kind": "telegram", "token_file": "/run/secrets/telegram_bot", "chat_id": "123456"},
     "hook":  {"kind": "webhook",  "url": "https://example.com/hook", "token_file": "/run/secrets/hook"}}

The database, step params and strategy settings hold channel NAMES only; URLs and tokens are read
here at send time (a `*_file` on every send, so a rotated secret needs no restart) and scrubbed
from every error and log line (safety rule 6). Errors are composed here, never copied from the
HTTP library, whose messages quote the URL.

Kinds (`kind`) are the registered channel kinds, one folder each in `workflows/notify/channels/`
(discord, slack, telegram, webhook): each builds its service's request and reads its answer; this
module is the kind-free flow around them.

Each send has a timeout (`NOTIFY_TIMEOUT_S`) and one retry on a timeout, a connection error, a
429 or a 5xx. This module knows nothing of strategies or orders: callers hand it text and bytes
(`strategies/notify/messages.py` writes decisions and orders as text).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from workflows.models import NotificationLog, NotificationStatus
from workflows.notify.channels import Channel, ChannelKind, Image, NotifyError, channel_kinds
from workflows.scrub import scrub_secrets

logger = logging.getLogger(__name__)

CHANNEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
# Seconds before the one retry; a 429's Retry-After is honoured up to RETRY_AFTER_MAX_S.
RETRY_DELAY_S = 1.0
RETRY_AFTER_MAX_S = 5.0
SCRUBBED = "[secret]"


class _ChannelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    url: str | None = None
    url_file: str | None = None
    token: str | None = None
    token_file: str | None = None
    chat_id: str | int | None = None
    # Telegram only: the Bot API's address (a local Bot API server, or the tests' receiver).
    api_base: str = "https://api.telegram.org"

    @field_validator("kind")
    @classmethod
    def _registered(cls, kind: str) -> str:
        if channel_kinds.get(kind) is None:
            raise ValueError(channel_kinds.unknown(kind))
        return kind


def _read_file(path: str, *, channel: str, what: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        # The path is configuration, not a secret; what is in the file is.
        raise NotifyError(f'Channel "{channel}": cannot read its {what} file {path} ({exc.strerror})') from None


def _channels_raw() -> dict[str, Any]:
    raw = settings.NOTIFY_CHANNELS
    if not isinstance(raw, dict):
        raise NotifyError("NOTIFY_CHANNELS must be a JSON object mapping channel names to their settings")
    return raw


def channel_names() -> list[str]:
    """The configured channels' names (never their settings)."""
    try:
        return sorted(_channels_raw())
    except NotifyError:
        return []


def channel_get(name: str) -> Channel:
    """The channel by name, with its URL and token read now."""
    raw = _channels_raw()
    if name not in raw:
        known = ", ".join(sorted(raw)) or "none (set NOTIFY_CHANNELS)"
        raise NotifyError(f'No notification channel named "{name}"; configured: {known}')
    if not re.fullmatch(CHANNEL_NAME, name):
        raise NotifyError(f'Channel name "{name}" must be letters, digits, "_", "." or "-" (up to 64)')
    try:
        config = _ChannelConfig.model_validate(raw[name])
    except ValidationError as exc:
        # Field names and what is wrong only: pydantic's own text quotes the values (the URL).
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise NotifyError(f'Channel "{name}" is misconfigured in NOTIFY_CHANNELS: {problems}') from None
    url = config.url or (_read_file(config.url_file, channel=name, what="url") if config.url_file else "")
    token = config.token or (_read_file(config.token_file, channel=name, what="token") if config.token_file else "")
    chat_id = str(config.chat_id or "")
    kind = _kind(config.kind)
    url = kind.endpoint(name=name, url=url, token=token, chat_id=chat_id, api_base=config.api_base)
    return Channel(name=name, kind=config.kind, url=url, token=token, chat_id=chat_id)


def _kind(name: str) -> ChannelKind:
    kind = channel_kinds.get(name)
    if kind is None:
        raise NotifyError(channel_kinds.unknown(name))
    return kind


def scrub(text: str, extra: list[str] | None = None) -> str:
    """The text with every configured channel's URL and token replaced, for logs and errors."""
    secrets = list(extra or [])
    try:
        raw = _channels_raw()
    except NotifyError:
        raw = {}
    for name in raw:
        try:
            channel = channel_get(name)
            secrets.extend(_kind(channel.kind).secrets(channel))
        except NotifyError:
            continue
    return scrub_secrets(text, secrets, mask=SCRUBBED, min_length=4)


def _post(channel: Channel, url: str, kwargs: dict[str, Any]) -> requests.Response:
    timeout = float(settings.NOTIFY_TIMEOUT_S)
    where = f'Notification to channel "{channel.name}" ({channel.kind})'
    first = ""
    for attempt in (1, 2):
        delay = RETRY_DELAY_S
        try:
            response = requests.post(url, timeout=timeout, allow_redirects=False, **kwargs)
        except requests.Timeout:
            problem, transient = f"timed out after {timeout:g}s", True
        except requests.ConnectionError:
            problem, transient = "could not connect", True
        except requests.RequestException as exc:
            # The library's text quotes the URL: the type says enough.
            problem, transient = f"failed ({type(exc).__name__})", False
        else:
            problem = _kind(channel.kind).problem(response)
            if problem is None:
                return response
            transient = response.status_code >= 500 or response.status_code == 429
            if response.status_code == 429:
                with contextlib.suppress(ValueError):
                    delay = min(RETRY_AFTER_MAX_S, float(response.headers.get("Retry-After", delay)))
        problem = scrub(problem, _kind(channel.kind).secrets(channel))
        if not transient:
            raise NotifyError(f"{where} failed: {problem}")
        if attempt == 1:
            first = problem
            logger.warning("%s: %s; retrying once in %gs", where, problem, delay)
            time.sleep(delay)
    then = f" (first attempt: {first})" if first and first != problem else ""
    raise NotifyError(f"{where} failed after 2 attempts: {problem}{then}", transient=True)


def notification_send(
    *, channel: str, text: str, image: Image | None = None, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Send now. Returns what was sent (no URL, no token); raises NotifyError."""
    target = channel_get(channel)
    if not text.strip():
        raise NotifyError(f'Notification to channel "{channel}": the message is empty')
    kind = _kind(target.kind)
    url, kwargs = kind.request(target, text, image, data)
    response = _post(target, url, kwargs)
    how = None if image is None else kind.image_sent(image)
    return {
        "channel": target.name,
        "kind": target.kind,
        "http_status": response.status_code,
        "text": text,
        "image": None if image is None else {"filename": image.filename, "bytes": len(image.data), "sent": how},
    }


def notification_send_once(
    *,
    key: str,
    channel: str,
    text: str,
    image: Image | None = None,
    data: dict[str, Any] | None = None,
    run_id: int | None = None,
) -> tuple[dict[str, Any], bool]:
    """Send unless a notification with this key was sent already. Returns (what was sent, sent now).

    The key is claimed in NotificationLog first, so a redelivered step finds it and sends nothing.
    A failed earlier attempt is tried again; so is one that died mid-send (its outcome is unknown:
    a notification is sent at least once, never knowingly twice)."""
    try:
        with transaction.atomic():
            log, created = NotificationLog.objects.get_or_create(
                key=key, defaults={"channel": channel, "status": NotificationStatus.SENDING, "run_id": run_id}
            )
    except IntegrityError:
        log, created = NotificationLog.objects.get(key=key), False
    if not created and log.status == NotificationStatus.SENT:
        return {**log.detail, "already_sent": True}, False
    if not created:
        logger.info("notification %s: earlier attempt %s (%s); sending again", key, log.status, log.error[:200])
    NotificationLog.objects.filter(id=log.id).update(
        status=NotificationStatus.SENDING, channel=channel, attempts=F("attempts") + 1
    )
    try:
        sent = notification_send(channel=channel, text=text, image=image, data=data)
    except NotifyError as exc:
        NotificationLog.objects.filter(id=log.id).update(status=NotificationStatus.FAILED, error=exc.message)
        raise
    sent = {**sent, "key": key, "already_sent": False}
    NotificationLog.objects.filter(id=log.id).update(
        status=NotificationStatus.SENT, error="", detail=sent, sent_at=timezone.now()
    )
    return sent, True


def site_link(path: str) -> str | None:
    """An absolute link to this site, when PUBLIC_BASE_URL is set."""
    base = (settings.PUBLIC_BASE_URL or "").rstrip("/")
    return f"{base}{path}" if base else None
