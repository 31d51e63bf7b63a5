"""Discord: a webhook; JSON, or multipart `payload_json` with the PNG as a file."""

from __future__ import annotations

import json
from typing import Any

from workflows.notify.channels import Channel, ChannelKind, Image, register, text_cut


@register
class Discord(ChannelKind):
    name = "discord"
    label = "Discord"
    text_limit = 2000

    def request(
        self, channel: Channel, text: str, image: Image | None, data: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any]]:
        # No @everyone or role pings from a model's reasoning text.
        payload: dict[str, Any] = {"content": text_cut(text, self.text_limit), "allowed_mentions": {"parse": []}}
        if image is None:
            return channel.url, {"json": payload}
        payload["attachments"] = [{"id": 0, "filename": image.filename}]
        files = {
            "payload_json": (None, json.dumps(payload), "application/json"),
            "files[0]": (image.filename, image.data, image.content_type),
        }
        return channel.url, {"files": files}
