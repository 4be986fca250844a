# spie — the two commands a newcomer needs are `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
RUN_DB ?= sqlite:///instance/spie.sqlite3
PYTEST_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: install run test lint fmt migrations-check bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "spie needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

## run: install, migrate an SQLite database, load the demo data once, print the logins, serve
run: install
	@mkdir -p instance
	SPIE_ENV=development SPIE_DATABASE_URL=$(RUN_DB) $(BIN)/flask --app wsgi spie db upgrade
	SPIE_ENV=development SPIE_DATABASE_URL=$(RUN_DB) $(BIN)/flask --app wsgi spie demo load --if-empty
	SPIE_ENV=development SPIE_DATABASE_URL=$(RUN_DB) $(BIN)/flask --app wsgi run --host 127.0.0.1 --port 5000

## test: install and run the whole suite (PostgreSQL/Redis if SPIE_TEST_DATABASE_URL/SPIE_TEST_REDIS_URL are set)
test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## migrations-check: upgrade from empty, alembic check, single head, downgrade to base, upgrade again
migrations-check: install
	$(BIN)/python -m spie.cli.migrations_check $(MIGRATIONS_DB)

bench: install
	@cat bench/README.md

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
