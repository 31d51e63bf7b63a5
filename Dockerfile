# syntax=docker/dockerfile:1
# One image for every app process: web (gunicorn), the Celery workers, beat and flower.
# Build: docker build -t trading-workflows .   (docker compose build does the same)

# ---- Stage 1: the editor's front-end (frontend/, Vite) built into static/ ----------------------
# Guarded so that the build also succeeds before frontend/ exists: static/ is then copied as is.
FROM node:20-bookworm-slim AS frontend
WORKDIR /src
COPY . .
RUN mkdir -p static \
    && if [ -f frontend/package.json ]; then \
        cd frontend \
        && if [ -f package-lock.json ]; then npm ci; else npm install; fi \
        && npm run build; \
    fi

# ---- Stage 2: the Python runtime ------------------------------------------------------------------
FROM python:3.11-slim-bookworm

# BROWSER_PATH: kaleido renders chart PNGs with the OS Chromium instead of downloading its own.
# WEB_CONCURRENCY: gunicorn's worker count (gunicorn reads it itself); override per deployment.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BROWSER_PATH=/usr/bin/chromium-headless-shell \
    WEB_CONCURRENCY=3

# Chromium for kaleido, and fonts so chart text renders (--no-install-recommends brings none).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        chromium-headless-shell \
        fonts-liberation \
        fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid so that files on volumes and secrets mounted from the host are predictable.
RUN useradd --create-home --uid 1000 --user-group --shell /usr/sbin/nologin app

WORKDIR /app

# Runtime dependencies only (pinned); test and lint tools stay in requirements-dev.txt.
COPY requirements.txt .
RUN pip install -r requirements.txt

# The code belongs to root and is read-only for the app user; only var/ is writable.
COPY . .
COPY --from=frontend /src/static/ ./static/
RUN mkdir -p var && chown app:app var

USER app

# Static files are collected into the image (WhiteNoise serves them). The key below exists only
# for this build step: settings refuse to load without one when DEBUG is off.
RUN SECRET_KEY=collectstatic-build-only-not-a-secret DEBUG=false python manage.py collectstatic --noinput

EXPOSE 8000

# /health/ needs no login and is exempt from the HTTPS redirect. Django answers 400 to a Host
# outside ALLOWED_HOSTS, so the probe presents the first configured host name.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; h = next((x.strip().lstrip('.') for x in os.environ.get('ALLOWED_HOSTS', '').split(',') if x.strip() not in ('', '*')), 'localhost'); r.urlopen(r.Request('http://127.0.0.1:8000/health/', headers={'Host': h, 'X-Forwarded-Proto': 'https'}), timeout=4)"]

# Threaded workers: a run page's live stream (server-sent events) holds a thread, not a whole worker.
CMD ["gunicorn", "trading_site.wsgi:application", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--threads", "16", "--access-logfile", "-"]
