# The two commands of the README: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format frontend types bench clean

$(STAMP): requirements.txt requirements-dev.txt
	@# A venv without pip (python3-venv was missing when it was made) is made again.
	@test -x $(BIN)/pip || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); } || { \
		echo "Cannot create a virtual environment: install python3-venv (sudo apt-get install python3-venv)"; \
		rm -rf $(VENV); exit 1; }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $@

# A local .env from the example, once, with a fresh secret key.
.env:
	sed "s|^SECRET_KEY=$$|SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')|" .env.example > .env

frontend:
	@if [ -f frontend/package.json ]; then cd frontend && npm ci --no-audit --no-fund && npm run build; fi

# The graph's JSON Schema from its pydantic models (workflows/graph.py), then the editor's
# TypeScript types from that schema; both are committed, and tests fail when they are stale.
types: $(STAMP)
	DEBUG=true $(BIN)/python manage.py graph_schema
	cd frontend && { test -d node_modules || npm ci --no-audit --no-fund; } && npm run gen:types

# Web server + Celery worker + Celery Beat in the foreground on the embedded defaults. Ctrl-C stops all.
run: $(STAMP) .env frontend
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py bootstrap
	$(BIN)/honcho start -f Procfile

# Lint, format check and every test: the editor's vitest suite, then pytest (the editor's browser
# tests drive the OS Chromium). Uses PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set.
test: $(STAMP) frontend
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	cd frontend && npm test
	DEBUG=true $(BIN)/python -m pytest

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	DEBUG=false SECRET_KEY=bench-only $(BIN)/python bench/engine.py

clean:
	rm -rf var/broker var/artifacts var/staticfiles
