"""Channel kinds are plugins: a kind registered through the registry alone (no other edit) carries both a
direct notification and a workflow's notify.webhook step. And a kind nobody registered is a clear error."""

from typing import Any

import pytest
import requests

from conftest import edge, node
from workflows import engine, services
from workflows.models import RunStatus
from workflows.notify import services as notify
from workflows.notify.channels import Channel, ChannelKind, Image, NotifyError, channel_kinds
from workflows.tests.receiver import Receiver, tiny_png

SECRET = "SECRET-pigeon-key-314"


class Pigeon(ChannelKind):
    """A test service: POSTs form fields, the image as a file, and answers "coo" when it took them."""

    name = "pigeon"
    label = "Carrier pigeon (test)"
    text_limit = 50

    def request(
        self, channel: Channel, text: str, image: Image | None, data: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any]]:
        fields = {"message": text[: self.text_limit], "key": channel.token}
        files = {"leg": (image.filename, image.data, image.content_type)} if image else None
        return f"{channel.url}/coop", {"data": fields, "files": files}

    def problem(self, response: requests.Response) -> str | None:
        return None if response.status_code == 200 else f"the pigeon came back ({response.status_code})"


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def pigeon(settings, receiver):
    channel_kinds.register(Pigeon())
    settings.NOTIFY_CHANNELS = {"loft": {"kind": "pigeon", "url": receiver.url, "token": SECRET}}
    yield
    channel_kinds.unregister("pigeon")


def test_a_registered_kind_sends_a_notification(pigeon, receiver):
    sent = notify.notification_send(channel="loft", text="Buy AAPL", image=Image(data=tiny_png()))
    assert sent["kind"] == "pigeon" and sent["image"]["sent"] == "attached"
    [request] = receiver.requests
    assert request.path == "/coop" and b"Buy AAPL" in request.body and tiny_png() in request.body
    # Its secret is scrubbed like any kind's.
    assert notify.scrub(f"key {SECRET}") == "key [secret]"


def test_a_registered_kind_serves_the_notify_step_of_a_run(pigeon, receiver, eager_engine, user):
    nodes = [node("trade", "test.trade_outputs"), node("tell", "notify.webhook", channel="loft")]
    edges = [edge("trade", "tell", port, port) for port in ("decision", "chart", "order")]
    workflow = services.workflow_create(owner=user, name="Pigeon", graph={"nodes": nodes, "edges": edges})
    run = engine.run_start(workflow=workflow, user=user, symbol="AAPL")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    [request] = receiver.requests
    assert b"AAPL: BUY" in request.body
    assert run.steps.get(node_id="tell").outputs["notification"]["kind"] == "pigeon"


def test_an_unregistered_kind_names_the_known_ones(settings):
    settings.NOTIFY_CHANNELS = {"loft": {"kind": "pigeon", "url": "https://x.example/SECRET-1"}}
    with pytest.raises(NotifyError) as caught:
        notify.channel_get("loft")
    assert 'Unknown notification channel kind "pigeon"; use one of: discord, slack, telegram, webhook' in str(
        caught.value
    )
    assert "SECRET" not in str(caught.value)


def test_the_four_kinds_are_found_in_their_folders():
    assert channel_kinds.names() == ["discord", "slack", "telegram", "webhook"]
