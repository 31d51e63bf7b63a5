"""Settings, read from the environment only (see .env.example for every variable).

Defaults are the embedded, no-servers setup of `make run`: SQLite, kombu's filesystem broker,
a local artifact folder and the bundled market data. Production differs only by values.
"""

import json
import os
from pathlib import Path

import environ
import plotly

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A local .env (created by `make run` from .env.example) is read if present; real environment
# variables win over it.
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"), overwrite=False)


def secret(name: str, default: str | None = None) -> str | None:
    """A secret from NAME, or from the file named by NAME_FILE (Docker/Kubernetes secrets)."""
    path = env.str(f"{name}_FILE", default="")
    if path:
        return Path(path).read_text().strip()
    return env.str(name, default=default)


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = secret("SECRET_KEY", default="insecure-local-key-set-SECRET_KEY" if DEBUG else None)
if not SECRET_KEY:
    raise environ.ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) must be set when DEBUG is off")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# This project's own apps: where step types are looked for (workflows/apps.py).
PROJECT_APPS = ["workflows", "strategies", "brokers"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    *PROJECT_APPS,
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "workflows.middleware.PagesLoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "trading_site.urls"
WSGI_APPLICATION = "trading_site.wsgi.application"
ASGI_APPLICATION = "trading_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "workflows.context_processors.pending_approvals",
            ],
        },
    },
]

# Database: SQLite file by default; DATABASE_URL=postgres://... in production and CI.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASE_PASSWORD = secret("DATABASE_PASSWORD", default="")
if DATABASE_PASSWORD:
    DATABASES["default"]["PASSWORD"] = DATABASE_PASSWORD
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Workers and the web server share the file: wait for locks instead of failing, take the
    # write lock at BEGIN so two writers never deadlock, and let readers run beside a writer.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so that a Celery worker started by the tests sees the test data;
    # one per test process, so two test runs on one checkout never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(VAR_DIR / "staticfiles"))
# plotly.js for interactive charts, served from the installed plotly package (no CDN).
STATICFILES_DIRS = [BASE_DIR / "static", ("vendor/plotly", Path(plotly.__file__).parent / "package_data")]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Security: secure by default when DEBUG is off; TLS is usually terminated by a reverse proxy.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Preloading is an opt-in that is hard to undo for a whole domain: the operator decides.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^health/$"]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "workflows.api.errors.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "workflows.api.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Trading workflows API",
    "DESCRIPTION": "Build, version and run AI-assisted trading workflows.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI from the installed sidecar package: no CDN at run time.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "workflows.models.RunStatus",
        "StepStatusEnum": "workflows.models.StepStatus",
        "PromptKindEnum": "strategies.models.PromptKind",
        "AiKindEnum": "strategies.models.AiKind",
        "OrderStatusEnum": "brokers.models.OrderStatus",
        "ApprovalStatusEnum": "workflows.models.ApprovalStatus",
    },
}

# Celery. Broker: Redis in production; kombu's filesystem transport (a folder) by default.
REDIS_URL = secret("REDIS_URL", default="")
CELERY_BROKER_URL = secret("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
_broker_dir = Path(env.str("CELERY_FILESYSTEM_BROKER_DIR", default=str(VAR_DIR / "broker")))
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_DEFAULT_QUEUE = "default"
# Run state lives in our tables; a lost message is found by the sweeper, so tasks are
# acknowledged on receipt and never redelivered behind the engine's back.
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connection around every task unless this is set;
# a new PostgreSQL connection per step costs more than the step's own work. Connection
# lifetime is left to Django (CONN_MAX_AGE, health checks), see trading_site/celery.py.
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-steps": {
        "task": "workflows.tasks.sweep_steps",
        "schedule": env.float("ENGINE_SWEEP_INTERVAL_S", default=30.0),
    },
    # Pending approvals past their time become rejections, and their runs go on.
    "expire-approvals": {"task": "workflows.tasks.expire_approvals", "schedule": 60.0},
    # Paper orders are filled against bars that arrived since; broker order states are synced.
    "sync-orders": {
        "task": "brokers.tasks.sync_orders",
        "schedule": env.float("ORDERS_SYNC_INTERVAL_S", default=60.0),
    },
}

# Engine (docs/architecture.md, "What happens when...").
# A queued step waiting this long while its queue holds fewer messages than it has steps waiting
# is sent again (its message was lost); after ENGINE_QUEUED_STALE_S it is sent again whatever
# the queue says. A second message is harmless: the step's claim is a compare-and-set.
ENGINE_QUEUED_LOST_S = env.int("ENGINE_QUEUED_LOST_S", default=30)
ENGINE_QUEUED_STALE_S = env.int("ENGINE_QUEUED_STALE_S", default=600)
# A running step's worker writes a sign of life every ENGINE_HEARTBEAT_S; after
# ENGINE_HEARTBEAT_LOST_S without one, the sweeper declares that worker dead and runs the step again.
ENGINE_HEARTBEAT_S = env.float("ENGINE_HEARTBEAT_S", default=10.0)
ENGINE_HEARTBEAT_LOST_S = env.int("ENGINE_HEARTBEAT_LOST_S", default=45)
# Grace added to a step's hard time limit before the sweeper declares its worker dead.
ENGINE_RUNNING_GRACE_S = env.int("ENGINE_RUNNING_GRACE_S", default=30)

# Live run page (server-sent events, workflows/live/stream.py): seconds between two looks at a run's rows,
# seconds of quiet before a keep-alive, and how long one stream stays open (the browser resumes;
# an open stream holds a web thread and a database connection).
LIVE_POLL_INTERVAL_S = env.float("LIVE_POLL_INTERVAL_S", default=0.5)
LIVE_HEARTBEAT_S = env.float("LIVE_HEARTBEAT_S", default=15.0)
LIVE_STREAM_MAX_S = env.float("LIVE_STREAM_MAX_S", default=120.0)
# Task queue page: seconds to wait for workers to answer (+1 s on the filesystem broker), and
# Flower's address for its link (empty: no link).
QUEUE_INSPECT_TIMEOUT_S = env.float("QUEUE_INSPECT_TIMEOUT_S", default=1.0)
FLOWER_URL = env.str("FLOWER_URL", default="")
# Extra modules declaring step types (plugins; the test suite's own test step types).
EXTRA_STEP_MODULES = env.list("EXTRA_STEP_MODULES", default=[])

# Artifacts (bars, charts): a local folder by default, or MinIO (any S3-compatible store).
ARTIFACT_STORE = env.str("ARTIFACT_STORE", default="filesystem")  # filesystem or minio
ARTIFACTS_DIR = Path(env.str("ARTIFACTS_DIR", default=str(VAR_DIR / "artifacts")))
MINIO_ENDPOINT = env.str("MINIO_ENDPOINT", default="127.0.0.1:9000")
# Host:port browsers use to reach MinIO; presigned URLs are signed for it.
MINIO_PUBLIC_ENDPOINT = env.str("MINIO_PUBLIC_ENDPOINT", default="") or MINIO_ENDPOINT
MINIO_ACCESS_KEY = env.str("MINIO_ACCESS_KEY", default="")
MINIO_SECRET_KEY = secret("MINIO_SECRET_KEY", default="")
MINIO_BUCKET = env.str("MINIO_BUCKET", default="artifacts")
MINIO_SECURE = env.bool("MINIO_SECURE", default=False)
MINIO_REGION = env.str("MINIO_REGION", default="us-east-1")
# Seconds a presigned artifact URL stays valid.
ARTIFACT_URL_TTL_S = env.int("ARTIFACT_URL_TTL_S", default=900)

# Chart rendering: the OS Chromium (never a downloaded one). Empty: found on PATH.
BROWSER_PATH = env.str("BROWSER_PATH", default="")

# Market data: a registered source, "bundled" (the real bars in brokers/data/market, see its SOURCES.md)
# or "ibkr" (brokers/adapters/); checked at start-up (brokers/apps.py).
MARKET_DATA_SOURCE = env.str("MARKET_DATA_SOURCE", default="bundled")
# Largest CSV of bars a user may upload, in megabytes.
MARKET_UPLOAD_MAX_MB = env.int("MARKET_UPLOAD_MAX_MB", default=20)
MARKET_DATA_DIR = Path(env.str("MARKET_DATA_DIR", default=str(BASE_DIR / "brokers" / "data" / "market")))
# Strategy schedules' trading-day check knows the NYSE holidays by rule (strategies/schedules/calendar.py);
# days the exchange closes beyond the rules (a national day of mourning, say), as YYYY-MM-DD, comma separated.
MARKET_EXTRA_HOLIDAYS = env.list("MARKET_EXTRA_HOLIDAYS", default=[])

# Interactive Brokers (used from the market-data and broker issues on).
IBKR_HOST = env.str("IBKR_HOST", default="127.0.0.1")
# IB Gateway's own ports: 4002 paper, 4001 live (the compose file's gateway image relays
# paper on 4004 and live on 4003).
IBKR_PORT = env.int("IBKR_PORT", default=4002)
IBKR_CLIENT_ID = env.int("IBKR_CLIENT_ID", default=1)
# Seconds to wait for one IBKR request (connect, qualify, historical data) before giving up.
IBKR_REQUEST_TIMEOUT_S = env.int("IBKR_REQUEST_TIMEOUT_S", default=30)
# Seconds fetched bars are reused before IBKR is asked again for the same request.
IBKR_BAR_CACHE_S = env.int("IBKR_BAR_CACHE_S", default=600)
# paper or live: the kind of IBKR account orders may go to, checked against the connected account
# and port before anything is sent. The paper broker is always paper.
TRADING_MODE = env.str("TRADING_MODE", default="paper")
if TRADING_MODE not in ("paper", "live"):
    raise environ.ImproperlyConfigured(f"TRADING_MODE must be paper or live, not {TRADING_MODE!r}")
# Initial value of the global trading switch (then set on the Orders page or in the admin): orders
# may go to IBKR at all. The paper broker simulates and needs no switch.
TRADING_ENABLED = env.bool("TRADING_ENABLED", default=False)
# The IBKR account orders go to when the login manages several; empty: the only one.
IBKR_ACCOUNT = env.str("IBKR_ACCOUNT", default="")
# Where broker.place_order sends orders unless a node says otherwise: a registered broker (paper or
# ibkr; brokers/adapters/). Checked against the registry at start-up (brokers/apps.py).
BROKER = env.str("BROKER", default="paper")
# Initial trading limits (then edited with the switches): most one order may be worth, most symbols
# held at once, and the realised loss of a day after which no new order is sent.
RISK_MAX_NOTIONAL = env.float("RISK_MAX_NOTIONAL", default=25_000.0)
RISK_MAX_OPEN_POSITIONS = env.int("RISK_MAX_OPEN_POSITIONS", default=5)
RISK_DAILY_LOSS_LIMIT = env.float("RISK_DAILY_LOSS_LIMIT", default=1_000.0)
# Paper broker: starting cash, commission per share with a minimum per fill, and the slippage of
# stop-loss fills in basis points (limit orders fill at their price or better).
PAPER_STARTING_CASH = env.float("PAPER_STARTING_CASH", default=100_000.0)
PAPER_COMMISSION_PER_SHARE = env.float("PAPER_COMMISSION_PER_SHARE", default=0.005)
PAPER_COMMISSION_MIN = env.float("PAPER_COMMISSION_MIN", default=1.0)
PAPER_SLIPPAGE_BPS = env.float("PAPER_SLIPPAGE_BPS", default=5.0)

# AI analysis (strategies/ai): any OpenAI-compatible endpoint. With no LLM_BASE_URL, AI steps
# use the offline rule-based analyst, labelled as such on the run page.
LLM_BASE_URL = env.str("LLM_BASE_URL", default="")
LLM_MODEL = env.str("LLM_MODEL", default="gpt-4o-mini")
# One or more keys, comma separated; the client moves to the next key on 401 and 429.
LLM_API_KEYS = [k.strip() for k in (secret("LLM_API_KEYS", default="") or "").split(",") if k.strip()]
# Seconds for one HTTP request to the model, and how many times a failed request is retried
# (timeouts, 429, 5xx). The SDK's own retries are off, so these never multiply.
LLM_TIMEOUT_S = env.float("LLM_TIMEOUT_S", default=60.0)
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=2)
# auto (JSON schema, falling back to JSON extracted from the text when the server refuses it),
# json_schema, or prompt (JSON asked for in the prompt, extracted strictly).
LLM_STRUCTURED_OUTPUT = env.str("LLM_STRUCTURED_OUTPUT", default="auto")
LLM_MAX_OUTPUT_TOKENS = env.int("LLM_MAX_OUTPUT_TOKENS", default=1500)
# USD per million tokens, per model: {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}.
# A model without a price is recorded at cost 0 and says so in the step log.
LLM_PRICES = env.json("LLM_PRICES", default={})

# Notifications (workflows/notify/services.py, docs/notifications.md). Channels by name, as JSON:
# {"desk": {"kind": "discord", "url_file": "/run/secrets/desk"}, ...}; kinds discord, slack,
# telegram (token or token_file, chat_id), webhook. The whole JSON may also be a file
# (NOTIFY_CHANNELS_FILE). URLs and tokens never reach the database, logs, outputs or pages:
# steps and strategies hold channel names only.
try:
    NOTIFY_CHANNELS = json.loads(secret("NOTIFY_CHANNELS", default="") or "{}")
except json.JSONDecodeError as exc:
    # Position only: the text holds the channels' URLs.
    raise environ.ImproperlyConfigured(
        f"NOTIFY_CHANNELS is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    ) from None
# Channel that hears of every failed run and every kill-switch change; empty: none.
NOTIFY_ALERTS_CHANNEL = env.str("NOTIFY_ALERTS_CHANNEL", default="")
# Seconds per HTTP request to a channel (one retry on a timeout, 429 or 5xx).
NOTIFY_TIMEOUT_S = env.float("NOTIFY_TIMEOUT_S", default=10.0)
# This site's public address (https://trading.example.com), for links in notifications (the run,
# and the chart for Slack, which takes no image upload). Empty: messages carry no links.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="")
# Wiring, not configuration: what is called (with run_id=) when a run succeeds or fails, in a
# Celery task after commit. workflows imports no domain app, so the strategies' hook is named here.
RUN_FINISHED_HOOKS = ["strategies.notify.services.notify_run_finished"]
# Wiring too: what is called (with run_id=) right after a run is cancelled; each returns a line for
# the run's error or None. The trading gate cancels what the run's orders have not filled.
RUN_CANCELLED_HOOKS = ["brokers.orders.services.orders_cancel_for_run"]
# Task modules outside an app's tasks.py: the alert tasks (failed runs, kill switch).
CELERY_IMPORTS = ["workflows.notify.alerts"]

# Cache (IBKR bars): Redis when REDIS_URL is set, else a folder.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(VAR_DIR / "cache")}
}

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # urllib3 logs each request's path at DEBUG: webhook URLs and bot tokens are in paths
        # (rule 6), so it stays at INFO whatever LOG_LEVEL is.
        "urllib3": {"level": "INFO"},
    },
}
