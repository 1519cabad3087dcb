# The two commands a new user needs: `make demo` (install, start the local stack, run Bend's
# main job end to end) and `make test` (install, start the stack, run every test).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install lock browser kustomize demo test test-unit up down status lint bench clean

# Dependencies come from requirements.lock, every file checked against its hash; Bend itself is
# installed on top without resolving anything. After changing pyproject.toml's dependencies,
# `make lock` resolves them again (and deploy/requirements.lock, the image's, without dev tools).
$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

install: $(BIN)/.installed

LOCK_ARGS := --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--no-header --no-annotate

lock: install
	$(BIN)/pip install -q uv
	printf 'setuptools==75.8.0\nwheel==0.45.1\n' | $(BIN)/uv pip compile pyproject.toml - \
		--extra dev $(LOCK_ARGS) -o requirements.lock
	printf 'setuptools==75.8.0\nwheel==0.45.1\n' | $(BIN)/uv pip compile pyproject.toml - \
		$(LOCK_ARGS) -o deploy/requirements.lock

# The web UI's tests drive Debian's Chromium through its chromedriver (never a downloaded
# browser). Installed with apt-get when missing; fails loudly when that is not possible.
BROWSER_PKGS := chromium chromium-driver fonts-dejavu-core

browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "Chromium is missing: run 'sudo apt-get install $(BROWSER_PKGS)' (or 'make browser' as root); the browser tests need /usr/bin/chromium and /usr/bin/chromedriver" >&2; \
		exit 1; \
	fi; \
	echo "installing $(BROWSER_PKGS) with apt-get"; \
	{ apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(BROWSER_PKGS) >/dev/null; } || \
		{ echo "apt-get could not install $(BROWSER_PKGS); the browser tests need them" >&2; exit 1; }; \
	[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] || \
		{ echo "apt-get ran but /usr/bin/chromium or /usr/bin/chromedriver is still missing" >&2; exit 1; }

# tests/unit/deploy renders deploy/k8s with kustomize: kubectl's embedded one, a kustomize on
# PATH, or one built here from the Go module proxy into .bend/bin (about 3 minutes, once).
KUSTOMIZE_VERSION := v5.5.0

kustomize:
	@if command -v kubectl >/dev/null || command -v kustomize >/dev/null || [ -x .bend/bin/kustomize ]; then exit 0; fi; \
	command -v go >/dev/null || { echo "tests/unit/deploy need kustomize: install kubectl, kustomize or Go" >&2; exit 1; }; \
	echo "building kustomize $(KUSTOMIZE_VERSION) into .bend/bin"; \
	GOBIN="$(CURDIR)/.bend/bin" go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

up: install
	$(BIN)/bend dev up

down:
	$(BIN)/bend dev down

status:
	$(BIN)/bend dev status

demo: up
	$(BIN)/bend demo

# ruff (rules in pyproject.toml), mypy strict (modules not yet clean are listed there), and the
# import contracts.
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: up lint browser kustomize
	$(BIN)/pytest -q -p no:cacheprovider

test-unit: install
	$(BIN)/pytest -q -m "not integration"

bench: up
	$(BIN)/python -m bench.roundtrip

clean: down
	rm -rf .bend
