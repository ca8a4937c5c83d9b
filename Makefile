# The two commands of the README: `make run` and `make test`. Both install what they need first.
.PHONY: run test install install-test lint bench-sip clean

VENV := .venv
BIN := $(VENV)/bin

run: install
	$(BIN)/hotline serve

test: install-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -ra

install:
	bash scripts/install.sh

install-test:
	bash scripts/install.sh --test

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench-sip: install-test
	$(BIN)/python -m bench.sip_load --calls 100 200 400

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
