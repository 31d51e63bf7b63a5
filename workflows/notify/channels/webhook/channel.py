"""A generic webhook: POST JSON with the PNG in base64, and an optional bearer token."""

from __future__ import annotations

import base64
from typing import Any

from workflows.notify.channels import Channel, ChannelKind, Image, register, text_cut


@register
class Webhook(ChannelKind):
    name = "webhook"
    label = "JSON webhook"
    text_limit = 20_000

    def request(
        self, channel: Channel, text: str, image: Image | None, data: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any]]:
        payload = {
            "text": text_cut(text, self.text_limit),
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
