# thuphi — two commands set up everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
THUPHI := $(BIN)/thuphi
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test bench install install-test browser migrate serve clean messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The stamp files make a second `make demo` reuse what is installed.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Browser tests drive Debian's chromium; the provider tests run the providers' JavaScript samples
# in node. Install them when missing and we may (root with apt-get).
browser:
	@for pair in chromium:chromium node:nodejs; do cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 && continue; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's $$pkg for the tests…"; \
	    (apt-get install -y -qq $$pkg >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq $$pkg >/dev/null)); \
	  else echo "$$cmd is missing: install Debian's '$$pkg' package to run the tests" >&2; exit 1; fi; done

# Compiling translations needs GNU gettext's msgfmt; install it like chromium when missing.
messages: $(VENV)/.installed
	@command -v msgfmt >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing GNU gettext to compile the translations…"; \
	    (apt-get install -y -qq gettext >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq gettext >/dev/null)); \
	  else echo "msgfmt is missing: install the 'gettext' package" >&2; exit 1; fi; }
	cd thuphi && ../$(THUPHI) compilemessages --ignore '.venv' >/dev/null

migrate: $(VENV)/.installed messages
	$(THUPHI) migrate --noinput

demo: migrate
	$(THUPHI) demo_data
	@echo ""
	@echo "thuphi chạy tại http://$(HOST):$(PORT)/   (API: http://$(HOST):$(PORT)/api/v1/docs)"
	@# The worker books pending bank notifications; it stops with the server (Ctrl-C).
	$(THUPHI) worker & wpid=$$!; trap 'kill $$wpid 2>/dev/null' EXIT INT TERM; \
	  $(THUPHI) serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test messages browser
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-test
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var
