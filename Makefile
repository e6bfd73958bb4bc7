# The two commands of the README: `make up` runs the whole system locally, `make test` runs the suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

COMET := .run/comet/bin/twistd

.PHONY: up down test install lint bench clean comet

$(BIN)/cpcs: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(BIN)/cpcs

install: $(BIN)/cpcs

# The Comet VOEvent broker, in its own virtual environment, for the end-to-end alert-feed test.
$(COMET):
	$(PY) -m venv .run/comet
	.run/comet/bin/pip install --quiet "comet==3.1.0" "twisted==26.10.0"

comet: $(COMET)

up: install
	$(BIN)/cpcs up

down: install
	$(BIN)/cpcs down

# Lint: ruff over the whole tree (rules under [tool.ruff] in pyproject.toml), then mypy, strict, on the
# modules listed under [tool.mypy].
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: install lint $(COMET)
	$(BIN)/python -m tests.support.ensure_broker
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/pytest -q -p no:cacheprovider

bench: install
	$(BIN)/python bench/uploads.py

clean:
	rm -rf .run
