"""The live run monitor (workflows/live/stream.py): server-sent events of a run's status changes."""

import http.client
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from django.urls import reverse
from django.utils import timezone
from pytest_django.live_server_helper import LiveServer

from conftest import chain_graph, node
from workflows import engine, services
from workflows.live.stream import run_state_id, state_id, state_id_parse
from workflows.models import Run, RunStatus, StepRun, StepStatus

ORDER = [StepStatus.PENDING, StepStatus.QUEUED, StepStatus.RUNNING, StepStatus.SUCCEEDED]


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, dict, str | None]]:
    """(event, data, last event id) per event of a text/event-stream, as a browser reads it."""
    event, data, last_id = "message", [], None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield event, json.loads("\n".join(data)), last_id
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            last_id = value


def http_lines(response: http.client.HTTPResponse) -> Iterator[str]:
    while line := response.readline():
        yield line.decode()


def body_lines(response) -> Iterator[str]:
    """The lines of a test-client streaming response, read as they are produced."""
    buffer = ""
    for chunk in response.streaming_content:
        buffer += chunk.decode()
        *lines, buffer = buffer.split("\n")
        for line in lines:
            yield line + "\n"


@pytest.fixture
def fast_stream(settings):
    settings.LIVE_POLL_INTERVAL_S = 0.02
    settings.LIVE_HEARTBEAT_S = 15
    settings.LIVE_STREAM_MAX_S = 30


@pytest.fixture
def server(transactional_db, settings):
    settings.SECURE_SSL_REDIRECT = False
    # pytest-django's live server, stopped (its connections closed) before the test database goes.
    live = LiveServer("localhost")
    yield live
    live.stop()


@pytest.mark.worker
def test_a_real_client_receives_the_live_stream_of_a_run_from_start_to_finish(workers, server, client, user, settings):
    settings.LIVE_POLL_INTERVAL_S = 0.1
    graph = chain_graph(node("a", "test.echo", sleep_s=1), node("b", "test.echo", sleep_s=1))
    graph["nodes"][0]["params"] = {"sleep_s": 1}
    workflow = services.workflow_create(owner=user, name="live", graph=graph)
    run = engine.run_start(workflow=workflow, user=user, symbol="AAPL")  # sent; no worker yet

    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    url = urlsplit(server.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    connection.request(
        "GET", reverse("run-events", args=[run.pk]), headers={"Cookie": cookie, "Accept": "text/event-stream"}
    )
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    assert response.getheader("Cache-Control") == "no-cache"
    events = parse_sse(http_lines(response))

    # First what the run is now: nothing has started.
    first = [next(events) for _ in range(4)]
    assert [(e, d.get("node_id"), d["status"]) for e, d, _ in first] == [
        ("step", "src", "queued"),
        ("step", "a", "pending"),
        ("step", "b", "pending"),
        ("run", None, "pending"),
    ]

    workers.start(concurrency=2)
    rest = list(events)  # to the end of the stream, which the server closes after "end"
    connection.close()
    received = first + rest
    assert received[-1][0] == "end", received[-3:]
    assert received[-1][1]["status"] == RunStatus.SUCCEEDED
    assert [e for e, _, _ in received].count("end") == 1

    steps = [(d["node_id"], d["status"], d["attempt"]) for e, d, _ in received if e == "step"]
    for node_id in ("src", "a", "b"):
        statuses = [status for n, status, _ in steps if n == node_id]
        # Each step moves forward only: pending/queued -> running -> succeeded, nothing twice
        # (a step queued and taken within one poll may skip "queued").
        assert statuses[0] in (StepStatus.PENDING, StepStatus.QUEUED), (node_id, statuses)
        assert StepStatus.RUNNING in statuses and statuses[-1] == StepStatus.SUCCEEDED, (node_id, statuses)
        assert statuses == sorted(statuses, key=ORDER.index) and len(set(statuses)) == len(statuses), statuses
        assert [a for n, s, a in steps if n == node_id and s == StepStatus.SUCCEEDED] == [1]
    # In the order of the chain: a step starts only after the one before it succeeded.
    position = {(n, s): i for i, (n, s, _) in enumerate(steps)}
    assert position["src", "succeeded"] < position["a", "running"] < position["a", "succeeded"]
    assert position["a", "succeeded"] < position["b", "running"] < position["b", "succeeded"]
    runs = [d["status"] for e, d, _ in received if e == "run"]
    assert runs == [RunStatus.PENDING, RunStatus.RUNNING, RunStatus.SUCCEEDED]

    # The last event id is the final state: a reconnection would get nothing but "end".
    final = Run.objects.get(pk=run.pk)
    assert received[-1][2] == run_state_id(final, list(final.steps.all())) == "s-s1.s1.s1"


@pytest.fixture
def pending_run(db, user, no_dispatch) -> Run:
    workflow = services.workflow_create(owner=user, name="two", graph=chain_graph(node("echo", "test.echo")))
    return engine.run_start(workflow=workflow, user=user, symbol="AAPL")


def stream(client, run, **headers):
    response = client.get(reverse("run-events", args=[run.pk]), **headers)
    assert response.status_code == 200 and response.streaming
    return response


def test_last_event_id_resumes_with_what_changed_only(client, user, pending_run, fast_stream):
    run = pending_run
    client.force_login(user)
    events = parse_sse(body_lines(stream(client, run)))
    snapshot = [next(events) for _ in range(3)]
    assert [(e, d["status"]) for e, d, _ in snapshot] == [("step", "queued"), ("step", "pending"), ("run", "pending")]
    seen = snapshot[-1][2]
    assert seen == "p-q0.p0"

    # The worker takes the first step while the browser is away.
    now = timezone.now()
    StepRun.objects.filter(run=run, node_id="src").update(status=StepStatus.RUNNING, attempt=1, started_at=now)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, started_at=now)
    events = parse_sse(body_lines(stream(client, run, HTTP_LAST_EVENT_ID=seen)))
    resumed = [next(events) for _ in range(2)]
    assert [(e, d.get("node_id"), d["status"]) for e, d, _ in resumed] == [
        ("step", "src", "running"),
        ("run", None, "running"),
    ]
    assert resumed[0][1]["attempt"] == 1 and resumed[0][1]["started_at"] == now.isoformat()
    seen = resumed[-1][2]
    assert seen == "r-r1.p0"

    # It finishes; the stream says so, then ends by itself.
    StepRun.objects.filter(run=run).update(status=StepStatus.SUCCEEDED, attempt=1, finished_at=timezone.now())
    Run.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, finished_at=timezone.now())
    rest = list(parse_sse(body_lines(stream(client, run, HTTP_LAST_EVENT_ID=seen))))
    assert [(e, d.get("node_id"), d["status"]) for e, d, _ in rest] == [
        ("step", "src", "succeeded"),
        ("step", "echo", "succeeded"),
        ("run", None, "succeeded"),
        ("end", None, "succeeded"),
    ]
    assert rest[1][1]["duration_s"] is None  # never started: no duration

    # Up to date already: only the end. A broken id: everything again.
    assert [e for e, _, _ in parse_sse(body_lines(stream(client, run, HTTP_LAST_EVENT_ID=rest[-1][2])))] == ["end"]
    again = [e for e, _, _ in parse_sse(body_lines(stream(client, run, HTTP_LAST_EVENT_ID="x-zz.9")))]
    assert again == ["step", "step", "run", "end"]


def test_the_run_page_connects_with_the_state_it_was_rendered_with(client, user, pending_run, fast_stream):
    run = pending_run
    client.force_login(user)
    body = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    url = f"{reverse('run-events', args=[run.pk])}?last_event_id=p-q0.p0"
    assert f'data-events-url="{url}"' in body
    assert "js/run_live.js" in body
    assert body.count('class="timeline-row" data-node=') == 2
    # Without JavaScript the page still reloads itself.
    assert '<noscript><meta http-equiv="refresh"' in body

    # The query parameter does what Last-Event-ID does: nothing is sent for what the page shows.
    StepRun.objects.filter(run=run, node_id="src").update(status=StepStatus.RUNNING, attempt=1)
    events = parse_sse(body_lines(client.get(url)))
    event, data, _ = next(events)
    assert (event, data["node_id"], data["status"]) == ("step", "src", "running")


def test_a_finished_run_page_has_no_stream_and_offers_every_rerun(client, user, pending_run):
    run = pending_run
    engine.run_cancel(run=run)
    client.force_login(user)
    body = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert 'id="run-live"' not in body and 'http-equiv="refresh"' not in body
    assert 'id="run-timeline"' in body
    assert "Rerun from failed step" in body and "Rerun from start" in body
    assert body.count(f"on pinned v{run.version.number}") == 2 and body.count("on the latest version") == 2


def test_heartbeats_and_a_bounded_lifetime(client, user, pending_run, settings):
    settings.LIVE_POLL_INTERVAL_S = 0.02
    settings.LIVE_HEARTBEAT_S = 0.1
    settings.LIVE_STREAM_MAX_S = 0.5
    client.force_login(user)
    text = b"".join(stream(client, pending_run).streaming_content).decode()
    assert text.startswith("retry: 3000\n\n")
    assert text.count(": heartbeat\n\n") >= 2
    # The server ends the stream (the browser reconnects after `retry`), the run goes on.
    assert text.endswith(": stream lifetime reached; reconnect\n\n")
    assert "event: end" not in text


def test_a_cancelled_run_waits_for_its_running_step_to_stop(client, user, pending_run, fast_stream, monkeypatch):
    monkeypatch.setattr("workflows.live.stream.SETTLE_S", 0.3)
    run = pending_run
    StepRun.objects.filter(run=run, node_id="src").update(status=StepStatus.RUNNING, attempt=1)
    engine.run_cancel(run=run)  # src still runs until its next cancel check
    client.force_login(user)
    received = list(parse_sse(body_lines(stream(client, run))))
    assert [(e, d["status"]) for e, d, _ in received] == [
        ("step", "running"),
        ("step", "cancelled"),
        ("run", "cancelled"),
        ("end", "cancelled"),
    ]


def test_events_are_for_the_owner_and_staff_only(client, user, other_user, staff_user, pending_run, fast_stream):
    url = reverse("run-events", args=[pending_run.pk])
    engine.run_cancel(run=pending_run)  # finished: each stream ends at once
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(other_user)
    assert client.get(url).status_code == 404
    assert client.get(reverse("run-events", args=[999999])).status_code == 404
    client.force_login(staff_user)
    assert b"event: end" in b"".join(client.get(url).streaming_content)
    assert client.post(url).status_code == 405


def test_under_asgi_the_stream_is_asynchronous(transactional_db, user, no_dispatch, fast_stream):
    workflow = services.workflow_create(owner=user, name="asgi", graph=chain_graph())
    run = engine.run_start(workflow=workflow, user=user, symbol="AAPL")
    engine.run_cancel(run=run)

    async def read() -> tuple[bool, str]:
        client = AsyncClient()
        await client.aforce_login(user)
        response = await client.get(reverse("run-events", args=[run.pk]))
        return response.is_async, b"".join([part async for part in response.streaming_content]).decode()

    is_async, text = async_to_sync(read)()
    assert is_async
    assert [e for e, _, _ in parse_sse(iter(text.splitlines(keepends=True)))] == ["step", "run", "end"]


def test_state_ids_round_trip():
    assert state_id("running", [("succeeded", 1), None, ("queued", 12)]) == "r-s1.?0.q12"
    assert state_id_parse("r-s1.?0.q12", step_count=3) == ("running", [("succeeded", 1), None, ("queued", 12)])
    assert state_id_parse("r-s1.?0.q12", step_count=2) is None  # another run's shape
    assert state_id_parse("r-s1;DROP", step_count=1) is None
    assert state_id_parse("?-", step_count=0) == (None, [])
