"""Engine overhead on Redis + a real 2-process Celery worker (DESIGN §5, issue 2 benchmark).

Prints: the raw Celery no-op round trip; the per-step engine overhead of a 20-step no-op
chain; the wall time of a 10-wide no-op fan-out. Goal: per-step overhead <= 2x the round trip.

    REDIS_URL=redis://127.0.0.1:6379/0 DATABASE_URL=postgres://postgres@127.0.0.1/trading make bench

It creates and drops its own database (bench_<name>), so it never touches your data.
"""

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading_site.settings")
os.environ["EXTRA_STEP_MODULES"] = "bench.steps"
if not os.environ.get("REDIS_URL"):
    sys.exit("bench/engine.py measures on Redis: set REDIS_URL (and DATABASE_URL for PostgreSQL)")
os.environ["CELERY_RESULT_BACKEND"] = os.environ["REDIS_URL"]

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

from bench.steps import noop_task  # noqa: E402
from workflows import engine, services  # noqa: E402
from workflows.models import Run  # noqa: E402
from workflows.tests.workers import Workers  # noqa: E402

CHAIN, FAN, ROUND_TRIPS, REPEATS = 20, 10, 200, 5


def run_and_wait(workflow, user) -> float:
    run = engine.run_start(workflow=workflow, user=user, symbol="BENCH")
    while not (run := Run.objects.get(id=run.id)).finished:
        time.sleep(0.01)
    assert run.status == "succeeded", run.error
    return (run.finished_at - run.created_at).total_seconds()


def main() -> None:
    old_name = connection.settings_dict["NAME"]
    # A database of its own, never the one a test run uses at the same time.
    sqlite = connection.vendor == "sqlite"
    bench_name = str(Path(old_name).with_name("bench.sqlite3")) if sqlite else f"bench_{old_name}"
    connection.settings_dict.setdefault("TEST", {})["NAME"] = bench_name
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    logs = ROOT / "var" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    workers = Workers(logs, step_modules="bench.steps", queues="default")
    try:
        workers.start(concurrency=2)
        noop_task.delay().get(timeout=30)  # warm up connections
        trips = []
        for _ in range(ROUND_TRIPS):
            t = time.perf_counter()
            noop_task.delay().get(timeout=30)
            trips.append(time.perf_counter() - t)
        raw = statistics.median(trips)

        user = get_user_model().objects.create_user("bench")
        nodes = [{"id": "n0", "type": "bench.source"}]
        nodes += [{"id": f"n{i}", "type": "bench.noop"} for i in range(1, CHAIN)]
        edges = [
            {"source": f"n{i}", "source_port": "out", "target": f"n{i + 1}", "target_port": "in"}
            for i in range(CHAIN - 1)
        ]
        chain = services.workflow_create(owner=user, name="chain", graph={"nodes": nodes, "edges": edges})
        fan_nodes = [{"id": "src", "type": "bench.source"}]
        fan_nodes += [{"id": f"f{i}", "type": "bench.noop"} for i in range(FAN)]
        fan_edges = [
            {"source": "src", "source_port": "out", "target": f"f{i}", "target_port": "in"} for i in range(FAN)
        ]
        fan = services.workflow_create(owner=user, name="fan", graph={"nodes": fan_nodes, "edges": fan_edges})

        run_and_wait(chain, user)  # warm up
        chain_times = [run_and_wait(chain, user) for _ in range(REPEATS)]
        fan_times = [run_and_wait(fan, user) for _ in range(REPEATS)]
        per_step = statistics.median(chain_times) / CHAIN
        print(f"database: {connection.vendor}; broker: Redis; worker: prefork, 2 processes")
        print(f"raw Celery no-op round trip (median of {ROUND_TRIPS}): {raw * 1000:.1f} ms")
        print(
            f"engine, {CHAIN}-step no-op chain (median of {REPEATS}): {statistics.median(chain_times) * 1000:.0f} ms"
            f" = {per_step * 1000:.1f} ms per step = {per_step / raw:.2f}x the round trip (goal <= 2x)"
        )
        print(
            f"engine, {FAN}-wide no-op fan-out after one source step (median of {REPEATS}): "
            f"{statistics.median(fan_times) * 1000:.0f} ms"
        )
    finally:
        workers.stop_all()
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
