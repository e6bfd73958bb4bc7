# The two commands of the README: `make up` runs the whole system locally, `make test` runs the suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: up down test install bench clean

$(BIN)/cpcs: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(BIN)/cpcs

install: $(BIN)/cpcs

up: install
	$(BIN)/cpcs up

down: install
	$(BIN)/cpcs down

test: install
	$(BIN)/python -m tests.support.ensure_broker
	$(BIN)/pytest -q -p no:cacheprovider

bench: install
	$(BIN)/python bench/uploads.py

clean:
	rm -rf .run
