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

Kinds: `discord` (webhook; multipart `payload_json` + the PNG as a file), `slack` (incoming
webhook; JSON blocks; an incoming webhook cannot take an upload, so the image is a link to this
site when `PUBLIC_BASE_URL` is set), `telegram` (bot API `sendPhoto` multipart, else
`sendMessage`) and `webhook` (POST JSON with the PNG in base64, optional bearer token).

Each send has a timeout (`NOTIFY_TIMEOUT_S`) and one retry on a timeout, a connection error, a
429 or a 5xx. This module knows nothing of strategies or orders: callers hand it text and bytes.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, ValidationError

from workflows.models import NotificationLog, NotificationStatus

logger = logging.getLogger(__name__)

CHANNEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
KINDS = ("discord", "slack", "telegram", "webhook")
# Seconds before the one retry; a 429's Retry-After is honoured up to RETRY_AFTER_MAX_S.
RETRY_DELAY_S = 1.0
RETRY_AFTER_MAX_S = 5.0
# What each service accepts in one message (longer text is cut, ending with an ellipsis).
TEXT_LIMITS = {"discord": 2000, "slack": 3000, "telegram": 4096, "telegram_caption": 1024, "webhook": 20_000}
SCRUBBED = "[secret]"


class NotifyError(Exception):
    """A notification could not be sent. `message` never holds a URL or token; `transient` says a
    later attempt may work (timeout, connection, 429, 5xx)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


class _ChannelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["discord", "slack", "telegram", "webhook"]
    url: str | None = None
    url_file: str | None = None
    token: str | None = None
    token_file: str | None = None
    chat_id: str | int | None = None
    # Telegram only: the Bot API's address (a local Bot API server, or the tests' receiver).
    api_base: str = "https://api.telegram.org"


@dataclass(frozen=True)
class Channel:
    name: str
    kind: str
    url: str
    token: str
    chat_id: str

    def secrets(self) -> list[str]:
        """Every string that must never be shown: the URL (and its path, which libraries quote on
        their own), the token."""
        found = []
        if self.kind != "telegram" and self.url:
            found.append(self.url)
            path = re.sub(r"^[a-z]+://[^/]*", "", self.url)
            if len(path) > 1:
                found.append(path)
        if self.token:
            found.append(self.token)
        return found


@dataclass(frozen=True)
class Image:
    """A PNG to attach, and where this site serves it (for Slack, which takes no upload)."""

    data: bytes
    filename: str = "chart.png"
    content_type: str = "image/png"
    link: str | None = None


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
    if config.kind == "telegram":
        if not token or not chat_id:
            raise NotifyError(f'Channel "{name}" (telegram) needs a bot token (token or token_file) and a chat_id')
        url = config.api_base.rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise NotifyError(f'Channel "{name}" ({config.kind}) needs an http(s) url (url or url_file)')
    return Channel(name=name, kind=config.kind, url=url, token=token, chat_id=chat_id)


def scrub(text: str, extra: list[str] | None = None) -> str:
    """The text with every configured channel's URL and token replaced, for logs and errors."""
    secrets = list(extra or [])
    try:
        raw = _channels_raw()
    except NotifyError:
        raw = {}
    for name in raw:
        try:
            secrets.extend(channel_get(name).secrets())
        except NotifyError:
            continue
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, SCRUBBED)
    return text


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _request(channel: Channel, text: str, image: Image | None, data: dict[str, Any] | None) -> tuple[str, dict]:
    """The URL to POST to and the `requests` keyword arguments, per kind."""
    if channel.kind == "discord":
        # No @everyone or role pings from a model's reasoning text.
        payload: dict[str, Any] = {"content": _cut(text, TEXT_LIMITS["discord"]), "allowed_mentions": {"parse": []}}
        if image is None:
            return channel.url, {"json": payload}
        payload["attachments"] = [{"id": 0, "filename": image.filename}]
        files = {
            "payload_json": (None, json.dumps(payload), "application/json"),
            "files[0]": (image.filename, image.data, image.content_type),
        }
        return channel.url, {"files": files}
    if channel.kind == "slack":
        body = _slack_escape(_cut(text, TEXT_LIMITS["slack"]))
        blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": body}}]
        if image is not None and image.link:
            link = {"type": "mrkdwn", "text": f"<{image.link}|Chart> (sign-in required)"}
            blocks.append({"type": "context", "elements": [link]})
        return channel.url, {"json": {"text": _cut(text, TEXT_LIMITS["slack"]), "blocks": blocks}}
    if channel.kind == "telegram":
        base = f"{channel.url}/bot{channel.token}"
        if image is None:
            message = {"chat_id": channel.chat_id, "text": _cut(text, TEXT_LIMITS["telegram"])}
            return f"{base}/sendMessage", {"json": {**message, "disable_web_page_preview": True}}
        caption = _cut(text, TEXT_LIMITS["telegram_caption"])
        files = {"photo": (image.filename, image.data, image.content_type)}
        return f"{base}/sendPhoto", {"data": {"chat_id": channel.chat_id, "caption": caption}, "files": files}
    payload = {
        "text": _cut(text, TEXT_LIMITS["webhook"]),
        "image": None
        if image is None
        else {
            "filename": image.filename,
            "content_type": image.content_type,
            "base64": base64.b64encode(image.data).decode("ascii"),
            "url": image.link,
        },
        "data": data or {},
    }
    kwargs: dict[str, Any] = {"json": payload}
    if channel.token:
        kwargs["headers"] = {"Authorization": f"Bearer {channel.token}"}
    return channel.url, kwargs


def _response_problem(channel: Channel, response: requests.Response) -> str | None:
    """Why the service refused the message, or None when it took it."""
    if channel.kind == "telegram" and response.status_code < 300:
        try:
            answer = response.json()
        except ValueError:
            return "the Bot API answered with something other than JSON"
        if not (isinstance(answer, dict) and answer.get("ok")):
            return f"the Bot API refused it: {str(answer.get('description', ''))[:200]}"
        return None
    if response.status_code < 300:
        return None
    detail = re.sub(r"\s+", " ", response.text or "")[:200]
    return f"HTTP {response.status_code}" + (f": {detail}" if detail else "")


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
            problem = _response_problem(channel, response)
            if problem is None:
                return response
            transient = response.status_code >= 500 or response.status_code == 429
            if response.status_code == 429:
                with contextlib.suppress(ValueError):
                    delay = min(RETRY_AFTER_MAX_S, float(response.headers.get("Retry-After", delay)))
        problem = scrub(problem, channel.secrets())
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
    url, kwargs = _request(target, text, image, data)
    response = _post(target, url, kwargs)
    if image is None:
        how = None
    elif target.kind == "slack":
        how = "linked" if image.link else "left out (Slack incoming webhooks take no upload; set PUBLIC_BASE_URL)"
    else:
        how = "attached"
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


# Message text shared by the notify.webhook step and the strategies' notifications. Inputs are
# the steps' outputs (untrusted model text included), so every value is checked before use.


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def price_text(value: Any) -> str:
    number = _num(value)
    return "—" if number is None else f"{number:,.4f}".rstrip("0").rstrip(".")


def reward_risk(decision: dict[str, Any] | None) -> float | None:
    """R at the conservative target, computed here from the decision's levels (never the model's R)."""
    if not isinstance(decision, dict):
        return None
    action = decision.get("action")
    entry, stop = _num(decision.get("entry")), _num(decision.get("stop_loss"))
    target = _num(decision.get("take_profit_conservative"))
    if entry is None or stop is None or target is None:
        return None
    risk, reward = (entry - stop, target - entry) if action == "BUY" else (stop - entry, entry - target)
    if action not in ("BUY", "SELL") or risk <= 0:
        return None
    return reward / risk


def decision_lines(decision: Any) -> list[str]:
    """A decision (ai.decide / ai.agent_team output) as a few lines of text."""
    if not isinstance(decision, dict) or decision.get("action") not in ("BUY", "SELL", "HOLD"):
        return []
    action = decision["action"]
    head = f"Decision: {action}"
    if isinstance(decision.get("confidence"), str):
        head += f" (confidence {decision['confidence']})"
    if decision.get("analyst") == "offline":
        head += " · offline rule-based analyst, no AI model"
    lines = [head]
    if action in ("BUY", "SELL"):
        entry, stop = price_text(decision.get("entry")), price_text(decision.get("stop_loss"))
        targets = [price_text(decision.get(f"take_profit_{k}")) for k in ("conservative", "aggressive")]
        lines.append(f"Entry {entry} · stop {stop} · targets {' / '.join(targets)}")
        r = reward_risk(decision)
        if r is not None:
            lines.append(f"R {r:.2f} at the conservative target (computed from these levels)")
    if decision.get("error"):
        lines.append(f"No trade: {str(decision['error'])[:300]}")
    elif isinstance(decision.get("reasoning"), str) and decision["reasoning"].strip():
        lines.append(f"Reasoning: {_cut(decision['reasoning'].strip(), 500)}")
    return lines


def order_lines(order: Any) -> list[str]:
    """A broker.place_order output as a line: what was sent, or why nothing was."""
    if not isinstance(order, dict) or "sent" not in order:
        return []
    if not order.get("sent"):
        status = "blocked" if order.get("status") == "blocked" else "not sent"
        return [f"Order {status}: {str(order.get('reason') or 'no reason given')[:300]}"]
    quantity = order.get("quantity") if isinstance(order.get("quantity"), int) else "?"
    line = (
        f"Order {order.get('order_id')}: {order.get('side')} {quantity} {order.get('symbol')} @ "
        f"{price_text(order.get('entry'))}, take-profit {price_text(order.get('take_profit'))}, "
        f"stop-loss {price_text(order.get('stop_loss'))} · {order.get('status')} ({order.get('mode') or 'paper'})"
    )
    r = _num(order.get("r"))
    return [line + (f" · R {r:.2f}" if r is not None else "")]


def site_link(path: str) -> str | None:
    """An absolute link to this site, when PUBLIC_BASE_URL is set."""
    base = (settings.PUBLIC_BASE_URL or "").rstrip("/")
    return f"{base}{path}" if base else None
