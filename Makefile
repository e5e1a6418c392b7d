# Two commands for a newcomer: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PERSONALIZE_DATA_DIR ?= $(abspath ../shared/data)
STAMP := $(VENV)/.installed
PLUGINS := plugins/personalize-surprise plugins/personalize-embeddings

.PHONY: setup demo seed test test-fast lint typecheck services dist clean

$(STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip
	# The CPU build of torch that lies on this machine's disk, before
	# sentence-transformers can ask for a multi-gigabyte CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]" $(addprefix -e ,$(PLUGINS))
	touch $@

setup: $(STAMP)

## make demo: set up, migrate, seed the shop from real data, serve on http://127.0.0.1:8000
demo: setup
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_shop --replay-days 14
	$(BIN)/python manage.py runserver 127.0.0.1:8000

## make test: set up, lint, type-check, then the whole suite on SQLite and on PostgreSQL + Redis
## (the machine's servers when they answer, else throwaway ones from pip packages: scripts/services.sh)
test: setup lint typecheck
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python -m pytest
	PYTHON=$(BIN)/python bash scripts/services.sh run \
		env PERSONALIZE_TEST_SERVICES=1 $(BIN)/python -m pytest -m "not slow and not e2e"

test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not e2e" -x -q

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy personalize

## make services: start the machine's own PostgreSQL and Redis if they are installed but down
services:
	bash scripts/services.sh

## make dist: the core and both plugins as wheels in dist/ (pip install --find-links dist "django-personalize[surprise]")
dist:
	rm -rf dist
	$(PYTHON) -m pip wheel --no-deps -w dist . $(addprefix ./,$(PLUGINS))

clean:
	rm -rf $(VENV) var dist
