"""The deployment files keep their promises.

Docker cannot run in CI, so nothing here builds an image or starts the stack. Instead the tests
read docker-compose.yml and the Dockerfile and check what the application and DESIGN §5/§7
rely on (every service and queue present, one beat, one IBKR connection, paper trading,
loopback-only ports, secrets as files, every variable documented), and run the parts that can
run without Docker: Django's deploy checks, collectstatic as the image build runs it, and the
image's HEALTHCHECK probe against a real gunicorn.
"""

import json
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"

QUEUES = ("default", "charts", "ai", "ibkr")
PAPER_API_PORT = 4004  # gnzsnz/ib-gateway: socat relays the paper API (4002) on 4004
LIVE_API_PORT = 4003  # ... and the live API (4001) on 4003
TRUE_VALUES = {"true", "on", "ok", "y", "yes", "1"}  # django-environ's env.bool
PLAINTEXT_SECRETS = {
    "SECRET_KEY",
    "DATABASE_PASSWORD",
    "POSTGRES_PASSWORD",
    "MINIO_ROOT_PASSWORD",
    "MINIO_SECRET_KEY",
    "TWS_PASSWORD",
}

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, $NAME; "$$" is a literal "$".
INTERPOLATION = re.compile(
    r"\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}|\$(?P<bare>[A-Za-z_]\w*)"
)


# ---- helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def interpolate(value: str) -> str:
    """The value compose would use with an empty .env: defaults applied, `$$` unescaped."""

    def sub(match: re.Match) -> str:
        if match["op"] in ("-", ":-"):
            return match["arg"]
        return ""

    parts = value.split("$$")
    return "$".join(INTERPOLATION.sub(sub, part) for part in parts)


def interpolated_names(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from interpolated_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from interpolated_names(value)
    elif isinstance(node, str):
        for part in node.split("$$"):
            for match in INTERPOLATION.finditer(part):
                yield match["braced"] or match["bare"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def args(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def option(argv: list[str], short: str, long: str) -> list[str]:
    """Every value given to a CLI option: `-Q x`, `-Qx`, `--queues x`, `--queues=x`."""
    values = []
    for i, arg in enumerate(argv):
        if arg in (short, long) and i + 1 < len(argv):
            values.append(argv[i + 1])
        elif arg.startswith(long + "="):
            values.append(arg.split("=", 1)[1])
        elif arg.startswith(short) and not arg.startswith("--") and len(arg) > len(short):
            values.append(arg[len(short) :])
    return values


def celery_subcommand(service: dict[str, Any]) -> str | None:
    argv = args(service)
    if "celery" not in argv:
        return None
    for sub in ("worker", "beat", "flower"):
        if sub in argv:
            return sub
    return None


def app_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Services running the project's image (built from the Dockerfile)."""
    return {name: service for name, service in services.items() if "build" in service}


def workers(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in services.items() if celery_subcommand(service) == "worker"}


def queues_of(service: dict[str, Any]) -> set[str]:
    names = ",".join(option(args(service), "-Q", "--queues"))
    return {name.strip() for name in names.split(",") if name.strip()}


def host_ip(port: Any) -> str | None:
    """The host address a published port binds to; None means every interface."""
    if isinstance(port, dict):
        return port.get("host_ip")
    spec = str(port).split("/")[0]
    if spec.startswith("["):
        return spec[1 : spec.index("]")]
    parts = spec.split(":")
    return parts[0] if len(parts) == 3 else None


def container_port(port: Any) -> int:
    if isinstance(port, dict):
        return int(port["target"])
    return int(str(port).split("/")[0].split(":")[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def production_env(**overrides: str) -> dict[str, str]:
    """A production-like environment: the test runner's own settings variables removed."""
    dropped = {"DEBUG", "ALLOWED_HOSTS", "DATABASE_URL", "DATABASE_PASSWORD", "DATABASE_PASSWORD_FILE"}
    dropped |= {"SECRET_KEY", "SECRET_KEY_FILE", "STATIC_ROOT"}
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in dropped and not key.startswith(("SECURE_", "SESSION_COOKIE_", "CSRF_COOKIE_"))
    }
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="trading.example.com",
        SECURE_PROXY_SSL_HEADER="true",
    )
    env.update(overrides)
    return env


def manage(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    if current:
        logical.append(current)
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in logical]


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


# ---- docker-compose.yml -------------------------------------------------------------------------


def test_compose_uses_the_compose_spec_without_version(compose):
    assert "version" not in compose
    assert "services" in compose


def test_every_service_the_settings_need_exists(services):
    for name in ("postgres", "redis", "minio", "ib-gateway", "web", "beat", "flower"):
        assert name in services, f"service {name} is missing"
    assert services["ib-gateway"]["image"].startswith("ghcr.io/gnzsnz/ib-gateway")
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert "gunicorn" in args(services["web"])
    assert any(arg.startswith("trading_site.wsgi") for arg in args(services["web"]))


def test_one_worker_service_per_queue(services):
    consumers = {queue: [name for name, w in workers(services).items() if queue in queues_of(w)] for queue in QUEUES}
    for queue, names in consumers.items():
        assert len(names) == 1, f"queue {queue} is consumed by {names or 'no worker'}"
    for name, worker in workers(services).items():
        assert queues_of(worker), f"{name} consumes no explicit queue (-Q)"
        assert queues_of(worker) <= set(QUEUES), f"{name} consumes an unknown queue"


def test_the_ibkr_worker_is_a_single_process_with_its_own_client_id(services):
    (name,) = [name for name, w in workers(services).items() if "ibkr" in queues_of(w)]
    worker = services[name]
    assert queues_of(worker) == {"ibkr"}
    assert option(args(worker), "-c", "--concurrency") == ["1"]
    assert "IBKR_CLIENT_ID" in environment(worker)
    assert "--autoscale" not in " ".join(args(worker))
    # A fixed container name makes `docker compose up --scale` refuse to start a second one.
    assert worker.get("container_name")
    assert int((worker.get("deploy") or {}).get("replicas", 1)) == 1


def test_exactly_one_beat_with_the_database_scheduler(services):
    beats = [
        name
        for name, service in services.items()
        if celery_subcommand(service) == "beat" or {"-B", "--beat"} & set(args(service))
    ]
    assert len(beats) == 1, f"beat runs in {beats}"
    beat = services[beats[0]]
    assert option(args(beat), "-S", "--scheduler") == ["django_celery_beat.schedulers:DatabaseScheduler"]
    assert beat.get("container_name")
    assert int((beat.get("deploy") or {}).get("replicas", 1)) == 1


def test_migrations_run_before_the_app_starts(services):
    migrate = [name for name, service in services.items() if {"manage.py", "migrate"} <= set(args(service))]
    assert migrate, "no service runs manage.py migrate"
    for name, service in app_services(services).items():
        if name in migrate:
            continue
        depends = service.get("depends_on") or {}
        assert depends.get(migrate[0], {}).get("condition") == "service_completed_successfully", name
        for backing in ("postgres", "redis"):
            assert depends.get(backing, {}).get("condition") == "service_healthy", f"{name} -> {backing}"
    for backing in ("postgres", "redis", "minio"):
        assert services[backing].get("healthcheck", {}).get("test"), f"{backing} has no healthcheck"
        assert services[backing].get("volumes"), f"{backing} keeps no data on a volume"


def test_every_host_in_the_app_environment_is_a_service(services):
    for name, service in app_services(services).items():
        env = {key: interpolate(value) for key, value in environment(service).items()}
        hosts = {
            "DATABASE_URL": urlsplit(env["DATABASE_URL"]).hostname,
            "REDIS_URL": urlsplit(env["REDIS_URL"]).hostname,
            "MINIO_ENDPOINT": env["MINIO_ENDPOINT"].split(":")[0],
            "IBKR_HOST": env["IBKR_HOST"],
        }
        for variable, host in hosts.items():
            assert host in services, f"{name}: {variable} names {host!r}, which is no service"
        assert urlsplit(env["DATABASE_URL"]).scheme in ("postgres", "postgresql", "pgsql")
        assert urlsplit(env["REDIS_URL"]).scheme == "redis"


def test_the_app_talks_to_the_paper_gateway(services):
    gateway = services["ib-gateway"]
    assert environment(gateway)["TRADING_MODE"] == "paper"
    targets = {container_port(port) for port in gateway.get("ports", [])}
    assert PAPER_API_PORT in targets
    assert LIVE_API_PORT not in targets
    for name, service in app_services(services).items():
        assert interpolate(environment(service)["IBKR_PORT"]) == str(PAPER_API_PORT), name


def test_paper_trading_is_pinned_and_live_trading_off(services):
    for name, service in {**app_services(services), "ib-gateway": services["ib-gateway"]}.items():
        env = environment(service)
        assert env["TRADING_MODE"] == "paper", name
        # Literal values: an interpolation would let .env switch them.
        assert "$" not in env["TRADING_MODE"], name
    for name, service in app_services(services).items():
        env = environment(service)
        assert env.get("TRADING_ENABLED", "false").lower() not in TRUE_VALUES, name
        assert "$" not in env.get("TRADING_ENABLED", ""), name
        assert env["DEBUG"].lower() not in TRUE_VALUES, name


@pytest.mark.parametrize("service", ["ib-gateway", "flower"])
def test_sensitive_ports_bind_loopback_only(services, service):
    ports = services[service].get("ports", [])
    assert ports, f"{service} publishes nothing"
    for port in ports:
        assert host_ip(port) == "127.0.0.1", f"{service} publishes {port} beyond loopback"


def test_nothing_is_published_on_every_interface(services):
    # The TLS reverse proxy is the only way in; everything else is reached through SSH.
    for name, service in services.items():
        for port in service.get("ports", []):
            assert host_ip(port) == "127.0.0.1", f"{name} publishes {port} on every interface"


def test_secrets_are_files_never_plain_environment(compose, services):
    declared = compose.get("secrets", {})
    for name, spec in declared.items():
        assert spec["file"].startswith("./secrets/"), name
    for name, service in services.items():
        env = environment(service)
        assert not PLAINTEXT_SECRETS & env.keys(), f"{name} passes a secret in plain text"
        granted = set(service.get("secrets", []))
        for key, value in env.items():
            if key.endswith("_FILE") and value.startswith("/run/secrets/"):
                secret = value.removeprefix("/run/secrets/")
                assert secret in granted, f"{name}: {key} reads {secret}, which it is not given"
                assert secret in declared, f"{name}: {key} reads an undeclared secret"
    for name, service in app_services(services).items():
        env = environment(service)
        assert env["SECRET_KEY_FILE"] == "/run/secrets/secret_key", name
        assert env["DATABASE_PASSWORD_FILE"].startswith("/run/secrets/"), name
        assert urlsplit(interpolate(env["DATABASE_URL"])).password is None, name
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "secrets/" in ignored
    assert ".env" in ignored


def test_every_variable_the_compose_uses_is_in_env_example(compose, services):
    # .env.example must exist: a missing file is a failure, not a skip.
    assert ENV_EXAMPLE.is_file(), ".env.example is missing"
    documented = ENV_EXAMPLE.read_text()

    def is_documented(variable: str) -> bool:
        names = [variable, variable.removesuffix("_FILE")] if variable.endswith("_FILE") else [variable]
        return any(re.search(rf"(?<![A-Za-z0-9_]){name}(?![A-Za-z0-9_])", documented) for name in names)

    passed = {key for service in app_services(services).values() for key in environment(service)}
    interpolated = set(interpolated_names(compose))
    missing = sorted(name for name in passed | interpolated if not is_documented(name))
    assert not missing, f".env.example does not document: {', '.join(missing)}"


# ---- Dockerfile ---------------------------------------------------------------------------------


def test_dockerfile_runs_python_311_with_chromium_as_a_non_root_user():
    stage = final_stage()
    assert re.fullmatch(r"python:3\.11-slim-bookworm", stage[0][1].split()[0])
    runs = [text for name, text in stage if name == "RUN"]
    assert any("apt-get install" in run and re.search(r"\bchromium(-headless-shell)?\b", run) for run in runs)
    assert any(re.search(r"\bfonts-", run) for run in runs)
    env = " ".join(text for name, text in stage if name == "ENV")
    assert "BROWSER_PATH=/usr/bin/chromium-headless-shell" in env
    users = [text.split(":")[0] for name, text in stage if name == "USER"]
    assert users, "the image runs as root"
    assert users[-1] not in ("root", "0")
    user_at = max(i for i, (name, _) in enumerate(stage) if name == "USER")
    cmd_at = max(i for i, (name, _) in enumerate(stage) if name == "CMD")
    assert user_at < cmd_at


def test_dockerfile_installs_pinned_runtime_requirements_and_collects_static():
    runs = [text for name, text in final_stage() if name == "RUN"]
    assert any("pip install -r requirements.txt" in run for run in runs)
    assert not any("requirements-dev" in run for run in runs)
    assert any("collectstatic" in run and "SECRET_KEY=" in run for run in runs)
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        assert not line or line.startswith("-r") or "==" in line, f"unpinned requirement: {line}"


def test_dockerfile_serves_gunicorn_on_port_8000_with_a_health_check():
    stage = dict(final_stage())
    cmd = json.loads(stage["CMD"])
    assert cmd[0] == "gunicorn"
    assert cmd[1].startswith("trading_site.wsgi")
    assert "0.0.0.0:8000" in cmd  # inside the container; compose publishes it on loopback
    assert "/health/" in stage["HEALTHCHECK"]


def test_dockerfile_builds_the_frontend_only_when_it_exists():
    instructions = dockerfile_instructions()
    froms = [text for name, text in instructions if name == "FROM"]
    node = [text for text in froms if text.startswith("node:20")]
    assert node, "no node:20 build stage"
    alias = node[0].split()[-1]
    runs = [text for name, text in instructions if name == "RUN"]
    assert any("[ -f frontend/package.json ]" in run and "npm run build" in run for run in runs)
    copies = [text for name, text in final_stage() if name == "COPY"]
    assert any(f"--from={alias}" in text and "static" in text for text in copies)


def test_the_image_health_check_passes_against_a_running_server():
    """Run the Dockerfile's HEALTHCHECK probe against gunicorn with production settings."""
    stage = dict(final_stage())
    probe = json.loads(stage["HEALTHCHECK"][stage["HEALTHCHECK"].index("CMD") + 3 :].strip())
    assert probe[:2] == ["python", "-c"]
    port = free_port()
    code = probe[2].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    env = production_env(WEB_CONCURRENCY="1")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "trading_site.wsgi:application", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, server.stderr.read().decode()
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        ok = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
        # Without a Host from ALLOWED_HOSTS Django answers 400: the probe must fail then.
        bad = subprocess.run(
            [sys.executable, "-c", code],
            env={**env, "ALLOWED_HOSTS": "other.example.org"},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert bad.returncode != 0
    finally:
        server.terminate()
        server.wait(timeout=10)


# ---- Django's deploy checks ---------------------------------------------------------------------


def test_collectstatic_runs_as_in_the_image_build(tmp_path):
    result = manage(
        "collectstatic",
        "--noinput",
        env=production_env(SECRET_KEY="collectstatic-build-only-not-a-secret", STATIC_ROOT=str(tmp_path)),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "staticfiles.json").is_file()


def test_check_deploy_passes_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output


def test_check_deploy_fails_when_debug_is_on():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(DEBUG="true"))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "security.W018" in output
