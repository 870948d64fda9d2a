# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint lock css system-run-deps system-test-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The versions come from the lock files (pip-compile's, from pyproject.toml): the same on
# every machine, in CI and in production (requirements.txt is what a buildpack installs).
$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-test: requirements-test.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

# After changing the dependencies in pyproject.toml: pin them again (both files).
PIN := $(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links
lock: | $(BIN)/python
	$(BIN)/pip install --quiet pip-tools
	$(PIN) --output-file requirements.txt pyproject.toml
	$(PIN) --extra test -c requirements.txt --output-file requirements-test.txt pyproject.toml

run: $(VENV)/.installed system-run-deps
	$(BIN)/python scripts/run_dev.py

# One test process per core (pytest-xdist); the browser tests share one of them.
XDIST := -n auto --dist loadgroup

test: $(VENV)/.installed-test system-test-deps
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

# Everything but the browser and the slow tests: for the edit-test loop.
test-fast: $(VENV)/.installed-test system-test-deps
	$(BIN)/python -m pytest $(XDIST) -m "not browser and not slow" $(PYTEST_ARGS)

# What CI checks besides the tests: lint, formatting, models against migrations, types.
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@dir=$$(mktemp -d); db=sqlite:///$$dir/check.sqlite3; \
	  DATABASE_URL=$$db $(BIN)/flask --app wsgi db upgrade >$$dir/upgrade.log 2>&1 || \
	    { cat $$dir/upgrade.log; rm -rf $$dir; exit 1; }; \
	  DATABASE_URL=$$db $(BIN)/flask --app wsgi db check; status=$$?; rm -rf $$dir; exit $$status
	$(BIN)/mypy

# `make run` starts Debian's redis-server when REDIS_URL is unset; on Debian as root we
# install it.
system-run-deps:
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	  else echo "Please install: redis-server" >&2; exit 1; fi; }

# The tests run a real IMAP server and a real browser, check the alert rules with
# Prometheus's promtool, and scale out behind HAProxy with Redis Sentinel; on Debian as
# root we install them.
system-test-deps:
	@missing=""; \
	command -v dovecot >/dev/null || missing="$$missing dovecot-imapd"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v redis-sentinel >/dev/null || missing="$$missing redis-sentinel"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "Please install:$$missing" >&2; exit 1; fi; \
	fi

# Development only: rebuild the committed stylesheet after changing templates.
css:
	npm ci --no-audit --no-fund
	npm run css

clean:
	rm -rf $(VENV) node_modules
