# The two commands a new user needs: `make demo` (install, start the local stack, run Bend's
# main job end to end) and `make test` (install, start the stack, run every test).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install demo test test-unit up down status lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

up: install
	$(BIN)/bend dev up

down:
	$(BIN)/bend dev down

status:
	$(BIN)/bend dev status

demo: up
	$(BIN)/bend demo

lint: install
	$(BIN)/lint-imports

test: up lint
	$(BIN)/pytest -q -p no:cacheprovider

test-unit: install
	$(BIN)/pytest -q -m "not integration"

bench: up
	$(BIN)/python -m bench.roundtrip

clean: down
	rm -rf .bend
