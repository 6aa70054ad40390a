# The two commands a newcomer needs: `make run` and `make test`. `make help` lists the rest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install run test test-quick lint check format bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned dependencies
	@true

run: $(STAMP) ## migrate, seed demo data and serve all three systems on http://127.0.0.1:8000
	$(BIN)/shopkeeper migrate
	$(BIN)/shopkeeper seed --if-empty
	$(BIN)/shopkeeper serve

test: $(STAMP) ## run the whole suite (PYTEST_ARGS="tests/logs -x" runs a part)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-quick: $(STAMP) ## the suite without the slow group (real processes, browsers, topologies)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, ruff format --check, mypy --strict, import contracts
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

check: lint test ## lint, then the whole suite: what to run before a pull request

format: $(STAMP) ## format and auto-fix
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP) ## load scenarios (see bench/RESULTS.md)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean: ## remove .venv, var/ and caches
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
