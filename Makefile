# The two commands of the README: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format frontend bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $@

# A local .env from the example, once, with a fresh secret key.
.env:
	sed "s|^SECRET_KEY=$$|SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')|" .env.example > .env

frontend:
	@if [ -f frontend/package.json ]; then cd frontend && npm ci --no-audit --no-fund && npm run build; fi

# Web server + Celery worker + Celery Beat in the foreground on the embedded defaults. Ctrl-C stops all.
run: $(STAMP) .env frontend
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py bootstrap
	$(BIN)/honcho start -f Procfile

# Lint, format check and every test. Uses PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set.
test: $(STAMP) frontend
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=true $(BIN)/python -m pytest

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	DEBUG=false SECRET_KEY=bench-only $(BIN)/python bench/engine.py

clean:
	rm -rf var/broker var/artifacts var/staticfiles
