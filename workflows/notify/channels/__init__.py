"""Notification channel kinds: one folder each (`discord/`, `slack/`, `telegram/`, `webhook/`), holding a
`channel.py` that registers a `ChannelKind` in `channel_kinds`.

A kind turns a text, an optional PNG and optional data into one HTTP POST for its service and says
whether the service took it. Everything else (configuration, secrets, retries, send-once) is the
kind-free flow of `workflows/notify/services.py`. Adding a service is one new folder; the folders are
imported at start-up (`workflows/apps.py`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

import requests

from workflows.registry import Registry


class NotifyError(Exception):
    """A notification could not be sent. `message` never holds a URL or token; `transient` says a
    later attempt may work (timeout, connection, 429, 5xx)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class Image:
    """A PNG to attach, and where this site serves it (for services that take no upload)."""

    data: bytes
    filename: str = "chart.png"
    content_type: str = "image/png"
    link: str | None = None


@dataclass(frozen=True)
class Channel:
    """A configured channel with its secrets read (never stored, never shown)."""

    name: str
    kind: str
    url: str
    token: str
    chat_id: str


def text_cut(text: str, limit: int) -> str:
    """The text, cut to what a service accepts, ending with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ChannelKind:
    """Base of every channel kind. Subclasses set `name`, `label`, `text_limit` and `request`."""

    name: ClassVar[str]
    label: ClassVar[str]
    # What the service accepts in one message (longer text is cut, ending with an ellipsis).
    text_limit: ClassVar[int] = 20_000

    def endpoint(self, *, name: str, url: str, token: str, chat_id: str, api_base: str) -> str:
        """The address to post to, or NotifyError saying what the channel's settings lack."""
        if not url.startswith(("https://", "http://")):
            raise NotifyError(f'Channel "{name}" ({self.name}) needs an http(s) url (url or url_file)')
        return url

    def secrets(self, channel: Channel) -> list[str]:
        """Every string that must never be shown: the URL (and its path, which libraries quote on their
        own), the token."""
        found = []
        if channel.url:
            found.append(channel.url)
            path = re.sub(r"^[a-z]+://[^/]*", "", channel.url)
            if len(path) > 1:
                found.append(path)
        if channel.token:
            found.append(channel.token)
        return found

    def request(
        self, channel: Channel, text: str, image: Image | None, data: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any]]:
        """The URL to POST to and the `requests` keyword arguments."""
        raise NotImplementedError

    def problem(self, response: requests.Response) -> str | None:
        """Why the service refused the message, or None when it took it."""
        if response.status_code < 300:
            return None
        detail = re.sub(r"\s+", " ", response.text or "")[:200]
        return f"HTTP {response.status_code}" + (f": {detail}" if detail else "")

    def image_sent(self, image: Image) -> str:
        """How the image went: attached, linked, or left out (and why)."""
        return "attached"


class ChannelKindRegistry(Registry[ChannelKind]):
    def __init__(self) -> None:
        super().__init__("notification channel kind")

    def check(self, kind: ChannelKind) -> None:
        from django.core.exceptions import ImproperlyConfigured

        if not getattr(kind, "label", None):
            raise ImproperlyConfigured(f"Channel kind {kind.name!r} has no label")


channel_kinds = ChannelKindRegistry()


def register(kind: type[ChannelKind]) -> type[ChannelKind]:
    """Class decorator: register one instance of the kind."""
    channel_kinds.register(kind())
    return kind
