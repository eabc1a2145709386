# The two commands: `make run` serves the archive, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test lint format bench bench-api bench-indicators bench-search bench-imports clean-venv translations

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.requirements: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.requirements-dev: requirements-dev.txt $(VENV)/.requirements
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# A secret key of this installation's own, written once and kept out of git.
instance/config.py: | $(BIN)/python
	mkdir -p instance
	umask 077; $(BIN)/python -c "import secrets; print('SECRET_KEY = ' + repr(secrets.token_hex(32)))" > $@

run: $(VENV)/.requirements instance/config.py
	$(FLASK) db upgrade
	$(FLASK) demo load --if-empty
	$(FLASK) users ensure-admin
	$(FLASK) run --host $(HOST) --port $(PORT)

# axe-core for the browser tests (tests/test_browser.py), pinned in tests/browser/package-lock.json.
# Without npm the browser tests skip, except in CI (CI set), where that is an error.
AXE := tests/browser/node_modules/axe-core/axe.min.js
$(AXE): tests/browser/package.json tests/browser/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/browser --no-audit --no-fund && touch $@; \
	elif [ -n "$$CI" ]; then \
		echo "npm is needed to install axe-core for the browser tests" >&2; exit 1; \
	else \
		echo "npm not found: the browser tests will be skipped" >&2; \
	fi

# Runs on SQLite, and on PostgreSQL too when TEST_DATABASE_URL is set.
test: $(VENV)/.requirements-dev $(AXE)
	$(BIN)/pytest

lint: $(VENV)/.requirements-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.requirements-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Benchmarks (not part of `make test` or CI): `make bench` runs them all; each prints its table.
bench: bench-api bench-indicators bench-search bench-imports

bench-api: $(VENV)/.requirements-dev
	$(BIN)/python bench/api.py

# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust); BENCH_ARGS="--scale 0.01" for a quick run.
bench-indicators: $(VENV)/.requirements-dev
	$(BIN)/python bench/indicators.py $(BENCH_ARGS)

# Search through the API against raw Whoosh and SQLite FTS5 over 100,000 events (indexing alone
# took 28 minutes on the shared 2-core machine); BENCH_SEARCH_ARGS="--events 5000 --queries 50"
# for a quick run.
bench-search: $(VENV)/.requirements-dev
	$(BIN)/python bench/search.py $(BENCH_SEARCH_ARGS)

# Needs PostgreSQL too; BENCH_IMPORTS_ARGS="--rows 5000 --backend sqlite" for a quick run.
bench-imports: $(VENV)/.requirements-dev
	$(BIN)/python bench/imports.py $(BENCH_IMPORTS_ARGS)

# After changing a page's or a message's text: extract, merge, fill English, compile.
# The compiled catalogs (.mo) are committed, so running the archive needs no build step.
translations: $(VENV)/.requirements
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output -w 100 \
		--project Constancia -o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations --no-fuzzy-matching -w 100 \
		--ignore-obsolete
	$(BIN)/python translations/english.py
	$(BIN)/pybabel compile -d translations --statistics

clean-venv:
	rm -rf $(VENV)
