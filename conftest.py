"""Fixtures shared by every app's tests: users, graphs, and a real Celery worker."""

import contextlib
import itertools
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

from trading_site.celery import app as celery_app
from workflows import engine
from workflows.tests import step_types  # registers the test step types in this process
from workflows.tests.s3 import moto_endpoint
from workflows.tests.workers import QUEUES, Workers, wait_for  # noqa: F401 - wait_for is shared with tests

TEST_REDIS_DB = 15

if settings.CELERY_BROKER_URL.startswith("redis"):
    # The tests' own Redis database, so a worker of `make run` on the same Redis never takes
    # the tests' tasks (and the tests never take its).
    celery_app.conf.broker_url = urlunsplit(urlsplit(settings.CELERY_BROKER_URL)._replace(path=f"/{TEST_REDIS_DB}"))
elif settings.CELERY_BROKER_URL.startswith("filesystem://"):
    # A private broker folder for this test session, set before any connection is made, so a
    # `make run` worker on this checkout never takes the tests' tasks.
    _broker = Path(tempfile.mkdtemp(prefix="test-broker-"))
    for sub in ("queue", "control"):
        (_broker / sub).mkdir()
    celery_app.conf.broker_transport_options = {
        "data_folder_in": str(_broker / "queue"),
        "data_folder_out": str(_broker / "queue"),
        "control_folder": str(_broker / "control"),
        "store_processed": False,
    }


@pytest.fixture(autouse=True)
def _artifacts(settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"


@pytest.fixture(autouse=True)
def _no_model_endpoint(settings):
    # A developer's .env may point at a real model; tests use the local fake server or none.
    settings.LLM_BASE_URL = ""
    settings.LLM_API_KEYS = []


@pytest.fixture(autouse=True)
def _no_notification_channels(settings):
    # Nor real notification channels: a test run must never post to a developer's Discord.
    settings.NOTIFY_CHANNELS = {}
    settings.NOTIFY_ALERTS_CHANNEL = ""


@pytest.fixture(autouse=True)
def _fresh_graph_cache():
    # The engine caches parsed graphs by version id. Committed ids are never reused, but a
    # test's rolled-back transaction gives its ids (on SQLite) to the next test.
    engine._graph_of.cache_clear()


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-alice-123")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw-bob-123")


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("carol", password="pw-carol-123", is_staff=True)


def node(node_id: str, type_: str, **params) -> dict:
    return {"id": node_id, "type": type_, "params": params}


def edge(source: str, target: str, source_port: str = "out", target_port: str = "in") -> dict:
    return {"source": source, "source_port": source_port, "target": target, "target_port": target_port}


def chain_graph(*extra_nodes: dict, params: dict | None = None) -> dict:
    """source -> each extra node in turn, through ports out -> in."""
    nodes = [node("src", "test.source"), *extra_nodes]
    edges = [edge(a["id"], b["id"]) for a, b in itertools.pairwise(nodes)]
    return {"schema": 1, "params": params or {}, "nodes": nodes, "edges": edges}


def stamped(graph: dict, version: int = 1) -> dict:
    """The graph as stored from now on: each node with the version of its step type."""
    return {**graph, "nodes": [{**n, "version": n.get("version", version)} for n in graph["nodes"]]}


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """host:port of an S3-compatible server (moto) on loopback, for the MinIO artifact backend."""
    return moto_endpoint()


@pytest.fixture
def no_dispatch(monkeypatch):
    """Runs and their steps are written, but no message is sent (no broker needed)."""
    monkeypatch.setattr(engine, "_dispatch", lambda *args, **kwargs: None)


@pytest.fixture
def eager_engine(transactional_db, settings):
    """Run dispatched steps in this process, right after each commit (no broker, no worker)."""
    step_types.records_clear()
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


# A port nothing listens on: a send to it is refused at once, as when Redis is down.
CLOSED_BROKER_URL = "redis://127.0.0.1:1/0"


@pytest.fixture
def broker_down(transactional_db):
    """The task broker unreachable (a closed port): every message the engine sends fails, after
    commit, as with Redis down. Yields `back()`, which brings a broker back: eager, in-process."""
    conf = celery_app.conf
    saved = (conf.broker_url, conf.broker_transport_options, conf.broker_connection_timeout)

    def use(url, options, timeout) -> None:
        conf.broker_url, conf.broker_transport_options, conf.broker_connection_timeout = url, options, timeout
        _drop_broker_connections()

    use(CLOSED_BROKER_URL, {}, 1)

    def back() -> None:
        use(*saved)
        step_types.records_clear()
        conf.task_always_eager = True

    yield back
    conf.task_always_eager = False
    use(*saved)


def _drop_broker_connections() -> None:
    """Forget the pooled connections and producers to the broker used so far.

    Not app.close(): it also takes the app out of Celery's active apps, and a shared task imported
    after that (brokers.tasks, on first use) would never register: NotRegistered in a later test."""
    # What app.close() does to the pool (kombu keeps one pool per broker URL: never close them).
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def _purge_queues() -> None:
    with celery_app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in QUEUES.split(","):
            # A queue that was never declared has nothing to purge.
            with contextlib.suppress(Exception):
                channel.queue_purge(queue)


@pytest.fixture
def workers(transactional_db, tmp_path, settings):
    """Real Celery workers. The test's data is committed (transactional_db) so they see it."""
    step_types.records_clear()
    _purge_queues()
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()
    _purge_queues()
    if os.environ.get("SHOW_WORKER_LOGS"):
        print(pool.logs())
