# The two commands: `make run` serves the archive, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test lint format bench clean-venv

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

# Runs on SQLite, and on PostgreSQL too when TEST_DATABASE_URL is set.
test: $(VENV)/.requirements-dev
	$(BIN)/pytest

lint: $(VENV)/.requirements-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.requirements-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.requirements-dev
	$(BIN)/python bench/api.py

clean-venv:
	rm -rf $(VENV)
