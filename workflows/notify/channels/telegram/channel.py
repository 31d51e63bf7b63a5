"""Telegram: the Bot API, `sendPhoto` (multipart) with a chart, else `sendMessage`."""

from __future__ import annotations

from typing import Any

import requests

from workflows.notify.channels import Channel, ChannelKind, Image, NotifyError, register, text_cut

CAPTION_LIMIT = 1024


@register
class Telegram(ChannelKind):
    name = "telegram"
    label = "Telegram"
    text_limit = 4096

    def endpoint(self, *, name: str, url: str, token: str, chat_id: str, api_base: str) -> str:
        if not token or not chat_id:
            raise NotifyError(f'Channel "{name}" (telegram) needs a bot token (token or token_file) and a chat_id')
        return super().endpoint(name=name, url=api_base.rstrip("/"), token=token, chat_id=chat_id, api_base=api_base)

    def secrets(self, channel: Channel) -> list[str]:
        # The URL is the Bot API's public address; the token is the secret (and sits in every path).
        return [channel.token] if channel.token else []

    def request(
        self, channel: Channel, text: str, image: Image | None, data: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any]]:
        base = f"{channel.url}/bot{channel.token}"
        if image is None:
            message = {"chat_id": channel.chat_id, "text": text_cut(text, self.text_limit)}
            return f"{base}/sendMessage", {"json": {**message, "disable_web_page_preview": True}}
        caption = text_cut(text, CAPTION_LIMIT)
        files = {"photo": (image.filename, image.data, image.content_type)}
        return f"{base}/sendPhoto", {"data": {"chat_id": channel.chat_id, "caption": caption}, "files": files}

    def problem(self, response: requests.Response) -> str | None:
        if response.status_code >= 300:
            return super().problem(response)
        try:
            answer = response.json()
        except ValueError:
            return "the Bot API answered with something other than JSON"
        if not (isinstance(answer, dict) and answer.get("ok")):
            return f"the Bot API refused it: {str(answer.get('description', ''))[:200]}"
        return None
