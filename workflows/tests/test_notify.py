"""workflows/notify/services.py: each channel kind's payload as it arrives at a local HTTP receiver (with the
PNG), one retry on 5xx/timeouts, and errors that never show a channel's URL or token."""

import base64
import json
import logging

import pytest

from workflows.models import NotificationLog, NotificationStatus
from workflows.notify import services as notify
from workflows.notify.services import Image, NotifyError, notification_send, notification_send_once, scrub
from workflows.tests.receiver import Answer, Receiver, tiny_png

DISCORD_SECRET = "SECRET-discord-token-abc123"
TELEGRAM_TOKEN = "123456:SECRET-telegram-token"
HOOK_TOKEN = "SECRET-bearer-xyz"


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture(autouse=True)
def _fast(settings, monkeypatch):
    settings.NOTIFY_TIMEOUT_S = 0.5
    settings.PUBLIC_BASE_URL = ""
    monkeypatch.setattr(notify, "RETRY_DELAY_S", 0)


@pytest.fixture
def channels(settings, receiver, tmp_path):
    url_file = tmp_path / "discord_url"
    url_file.write_text(f"{receiver.url}/api/webhooks/42/{DISCORD_SECRET}\n")
    token_file = tmp_path / "telegram_token"
    token_file.write_text(TELEGRAM_TOKEN)
    settings.NOTIFY_CHANNELS = {
        "desk": {"kind": "discord", "url_file": str(url_file)},
        "ops": {"kind": "slack", "url": f"{receiver.url}/services/T0/B0/SECRET-slack"},
        "phone": {"kind": "telegram", "token_file": str(token_file), "chat_id": "4242", "api_base": receiver.url},
        "hook": {"kind": "webhook", "url": f"{receiver.url}/hook", "token": HOOK_TOKEN},
    }
    return settings.NOTIFY_CHANNELS


def test_discord_gets_multipart_payload_json_and_the_png(channels, receiver):
    png = tiny_png()
    sent = notification_send(channel="desk", text="AAPL: BUY @everyone", image=Image(data=png))
    [request] = receiver.requests
    assert request.path == f"/api/webhooks/42/{DISCORD_SECRET}"
    assert request.headers["content-type"].startswith("multipart/form-data")
    form = request.form()
    filename, content_type, data = form["files[0]"]
    assert (filename, content_type, data) == ("chart.png", "image/png", png)
    payload = json.loads(form["payload_json"][2])
    assert payload["content"] == "AAPL: BUY @everyone"
    assert payload["allowed_mentions"] == {"parse": []}  # no pings from model text
    assert payload["attachments"] == [{"id": 0, "filename": "chart.png"}]
    # What was sent, for the run's outputs: the channel's name, never its URL.
    assert sent["channel"] == "desk" and sent["kind"] == "discord" and sent["image"]["sent"] == "attached"
    assert DISCORD_SECRET not in str(sent)


def test_discord_without_image_is_plain_json(channels, receiver):
    notification_send(channel="desk", text="hello")
    assert receiver.requests[0].json() == {"content": "hello", "allowed_mentions": {"parse": []}}


def test_telegram_send_photo_is_multipart_with_the_png(channels, receiver):
    png = tiny_png()
    notification_send(channel="phone", text="MSFT: SELL", image=Image(data=png))
    [request] = receiver.requests
    assert request.path == f"/bot{TELEGRAM_TOKEN}/sendPhoto"
    form = request.form()
    assert form["chat_id"][2] == b"4242"
    assert form["caption"][2].decode() == "MSFT: SELL"
    filename, content_type, data = form["photo"]
    assert (filename, content_type, data) == ("chart.png", "image/png", png)


def test_telegram_text_only_uses_send_message_and_cuts_long_captions(channels, receiver):
    notification_send(channel="phone", text="just text")
    assert receiver.requests[0].path.endswith("/sendMessage")
    assert receiver.requests[0].json()["text"] == "just text"
    assert receiver.requests[0].json()["chat_id"] == "4242"
    notification_send(channel="phone", text="x" * 2000, image=Image(data=tiny_png()))
    caption = receiver.requests[1].form()["caption"][2].decode()
    assert len(caption) == 1024 and caption.endswith("…")


def test_telegram_refusal_is_a_clear_error_without_the_token(channels, receiver):
    receiver.default = Answer(status=400, body=b'{"ok": false, "description": "Bad Request: chat not found"}')
    with pytest.raises(NotifyError) as caught:
        notification_send(channel="phone", text="hi")
    assert "chat not found" in caught.value.message and "HTTP 400" in caught.value.message
    assert TELEGRAM_TOKEN not in caught.value.message and "SECRET" not in caught.value.message
    assert not caught.value.transient and len(receiver.requests) == 1  # a 4xx is not retried


def test_generic_webhook_gets_json_with_the_png_in_base64(channels, receiver):
    png = tiny_png()
    notification_send(channel="hook", text="IBM: HOLD", image=Image(data=png), data={"run_id": 7})
    [request] = receiver.requests
    assert request.headers["authorization"] == f"Bearer {HOOK_TOKEN}"
    body = request.json()
    assert body["text"] == "IBM: HOLD" and body["data"] == {"run_id": 7}
    assert body["image"]["content_type"] == "image/png"
    assert base64.b64decode(body["image"]["base64"]) == png


def test_slack_gets_blocks_and_a_link_to_the_chart_when_the_site_has_a_public_url(channels, receiver, settings):
    link = "https://trading.example.com/runs/5/artifacts/charts/abc.png"
    sent = notification_send(channel="ops", text="GOOG <b> & co", image=Image(data=tiny_png(), link=link))
    body = receiver.requests[0].json()
    assert body["blocks"][0]["text"]["text"] == "GOOG &lt;b&gt; &amp; co"
    assert link in body["blocks"][1]["elements"][0]["text"]
    assert sent["image"]["sent"] == "linked"
    # No upload to an incoming webhook: without a public URL the image is left out, and said so.
    sent = notification_send(channel="ops", text="x", image=Image(data=tiny_png()))
    assert len(receiver.requests[1].json()["blocks"]) == 1
    assert "left out" in sent["image"]["sent"]


def test_500_then_timeout_is_one_retry_and_a_clear_error_without_secrets(channels, receiver, caplog):
    receiver.answers.extend([Answer(status=500, body=b"oops", echo_path=True), Answer(sleep_s=2.0)])
    caplog.set_level(logging.DEBUG)
    with pytest.raises(NotifyError) as caught:
        notification_send(channel="desk", text="hi", image=Image(data=tiny_png()))
    message = caught.value.message
    assert caught.value.transient
    assert message.startswith('Notification to channel "desk" (discord) failed after 2 attempts: timed out after 0.5s')
    assert "HTTP 500" in message  # what the first attempt got
    assert len(receiver.requests) == 2
    everything = message + "\n".join(r.getMessage() for r in caplog.records)
    assert DISCORD_SECRET not in everything and "/api/webhooks" not in everything
    assert "[secret]" in everything  # the echoed path was scrubbed, not dropped silently


def test_connection_refused_is_transient_and_names_no_url(settings, receiver):
    settings.NOTIFY_CHANNELS = {"gone": {"kind": "webhook", "url": "http://127.0.0.1:9/SECRET-path"}}
    with pytest.raises(NotifyError) as caught:
        notification_send(channel="gone", text="hi")
    assert caught.value.transient and "could not connect" in caught.value.message
    assert "SECRET" not in caught.value.message and "127.0.0.1:9" not in caught.value.message


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"kind": "pigeon", "url": "https://x/SECRET-1"}, "kind"),
        ({"kind": "discord"}, "needs an http(s) url"),
        ({"kind": "discord", "url": "ftp://SECRET-1"}, "needs an http(s) url"),
        ({"kind": "telegram", "token": "SECRET-1"}, "chat_id"),
        ({"kind": "webhook", "url_file": "/nonexistent/SECRET-file"}, "cannot read its url file"),
        ({"kind": "discord", "url": "https://x/SECRET-1", "color": 3}, "color"),
    ],
)
def test_misconfigured_channels_are_named_without_their_values(settings, config, expected):
    settings.NOTIFY_CHANNELS = {"bad": config}
    with pytest.raises(NotifyError) as caught:
        notification_send(channel="bad", text="hi")
    assert expected in caught.value.message and 'Channel "bad"' in caught.value.message
    assert "SECRET-1" not in caught.value.message


def test_an_unknown_channel_lists_the_configured_names_only(channels):
    with pytest.raises(NotifyError, match=r'No notification channel named "nope"; configured: desk, hook, ops, phone'):
        notification_send(channel="nope", text="hi")


def test_scrub_replaces_every_configured_secret(channels, receiver):
    text = f"a {receiver.url}/api/webhooks/42/{DISCORD_SECRET} b {TELEGRAM_TOKEN} c /api/webhooks/42/{DISCORD_SECRET}"
    cleaned = scrub(text)
    assert DISCORD_SECRET not in cleaned and TELEGRAM_TOKEN not in cleaned and cleaned.count("[secret]") == 3


@pytest.mark.django_db
def test_send_once_sends_one_message_per_key_and_retries_a_failed_one(channels, receiver):
    _, now = notification_send_once(key="run1-notify", channel="hook", text="once")
    again, now_again = notification_send_once(key="run1-notify", channel="hook", text="once")
    assert now and not now_again and again["already_sent"] and again["text"] == "once"
    assert len(receiver.requests) == 1
    log = NotificationLog.objects.get(key="run1-notify")
    assert log.status == NotificationStatus.SENT and log.attempts == 1 and log.channel == "hook"
    assert HOOK_TOKEN not in str(log.detail) and receiver.url not in str(log.detail)

    receiver.default = Answer(status=503)
    with pytest.raises(NotifyError):
        notification_send_once(key="run2-notify", channel="hook", text="later")
    failed = NotificationLog.objects.get(key="run2-notify")
    assert failed.status == NotificationStatus.FAILED and "HTTP 503" in failed.error and HOOK_TOKEN not in failed.error
    receiver.default = Answer()
    _, now = notification_send_once(key="run2-notify", channel="hook", text="later")
    failed.refresh_from_db()
    assert now and failed.status == NotificationStatus.SENT and failed.attempts == 2 and failed.error == ""
