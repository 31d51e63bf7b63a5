"""Real Celery worker processes for tests and benchmarks, against the current database."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from trading_site.celery import app as celery_app

QUEUES = "default,charts,ai,ibkr"


def wait_for(predicate, *, timeout: float = 30, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def database_url() -> str:
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Workers:
    """Start real `celery worker` processes against this process's database and broker."""

    def __init__(self, tmp_path: Path, *, step_modules: str = "workflows.tests.step_types", queues: str = QUEUES):
        self.tmp_path = tmp_path
        self.step_modules = step_modules
        self.queues = queues
        self.procs: list[subprocess.Popen] = []

    def start(self, *, concurrency: int = 2) -> subprocess.Popen:
        n = len(self.procs)
        log = self.tmp_path / f"worker{n}.log"
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": celery_app.conf.broker_url,
            "EXTRA_STEP_MODULES": self.step_modules,
            "ARTIFACTS_DIR": str(settings.ARTIFACTS_DIR),
            # The model endpoint of this test (a local fake server), or none: never a .env's real one.
            "LLM_BASE_URL": settings.LLM_BASE_URL,
            "LLM_API_KEYS": ",".join(settings.LLM_API_KEYS),
            # Likewise the notification channels: the test's (a local receiver), never a .env's.
            "NOTIFY_CHANNELS": json.dumps(settings.NOTIFY_CHANNELS),
            "NOTIFY_CHANNELS_FILE": "",
            "NOTIFY_ALERTS_CHANNEL": settings.NOTIFY_ALERTS_CHANNEL,
        }
        if settings.CELERY_BROKER_URL.startswith("filesystem://"):
            env["CELERY_FILESYSTEM_BROKER_DIR"] = str(
                Path(celery_app.conf.broker_transport_options["data_folder_in"]).parent
            )
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "trading_site",
            "worker",
            "-Q",
            self.queues,
            "-c",
            str(concurrency),
        ]
        cmd += ["-n", f"test{n}-{os.getpid()}@%h", "--without-mingle", "--without-gossip", "-l", "INFO"]
        proc = subprocess.Popen(
            cmd,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so SIGKILL reaches its children
        )
        self.procs.append(proc)
        wait_for(lambda: " ready." in log.read_text() or proc.poll() is not None, timeout=60, what="worker start")
        if proc.poll() is not None:
            raise AssertionError(f"worker exited at start:\n{log.read_text()}")
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.tmp_path.glob("worker*.log")))
