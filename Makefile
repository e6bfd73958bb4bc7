# The two commands of the README: `make up` runs the whole system locally, `make test` runs the suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

COMET := .run/comet/bin/twistd

.PHONY: up down test install lint bench clean comet chromium

$(BIN)/cpcs: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	# compile the calibration's numba kernels once (cached beside their module; seconds, not at every start)
	$(BIN)/python -c "from services.calibration.work import warm_up; warm_up()"
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

# Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium; it never downloads one).
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
	  { echo "the browser tests need Debian's chromium package: apt-get install chromium"; exit 1; }

test: install lint $(COMET) chromium
	$(BIN)/python -m tests.support.ensure_broker
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/pytest -q -p no:cacheprovider

bench: install
	$(BIN)/python bench/uploads.py

clean:
	rm -rf .run
