"""Slack: an incoming webhook; JSON blocks. It cannot take an upload, so the image is a link to this site
when `PUBLIC_BASE_URL` is set."""

from __future__ import annotations

from typing import Any

from workflows.notify.channels import Channel, ChannelKind, Image, register, text_cut


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@register
class Slack(ChannelKind):
    name = "slack"
    label = "Slack"
    text_limit = 3000

    def request(
        self, channel: Channel, text: str, image: Image | None, data: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any]]:
        body = _escape(text_cut(text, self.text_limit))
        blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": body}}]
        if image is not None and image.link:
            link = {"type": "mrkdwn", "text": f"<{image.link}|Chart> (sign-in required)"}
            blocks.append({"type": "context", "elements": [link]})
        return channel.url, {"json": {"text": text_cut(text, self.text_limit), "blocks": blocks}}

    def image_sent(self, image: Image) -> str:
        return "linked" if image.link else "left out (Slack incoming webhooks take no upload; set PUBLIC_BASE_URL)"
