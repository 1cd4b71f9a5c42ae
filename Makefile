# Two set-up commands: `make run` and `make test`. Both create .venv and install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-slow lint bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# make run PROCESSES=N: N worker processes (streamq run --processes; default 1)
PROCESSES ?= 1
run: $(STAMP)
	$(BIN)/streamq run --processes $(PROCESSES)

# The quick suite (under ten minutes on two cores); the long crash and load scenarios
# (`slow` marker) run in `make test-slow`, which CI runs after it.
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/streamq bench

clean:
	rm -rf $(VENV) .streamq .pytest_cache .mypy_cache .ruff_cache
