# make demo: one command on a fresh machine, on the embedded emulator, no credentials.
# make test: every test (lint and types included).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest emulator clean chromium bench

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m yart_jupyter.demo notebooks/quickstart.ipynb

lint: $(STAMP)
	$(PY) -m ruff check yart_jupyter tests bench

typecheck: $(STAMP)
	$(PY) -m mypy

# The browser test drives Debian's chromium (Playwright cannot download its own browser here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

pytest: $(STAMP) chromium
	$(PY) -m pytest -q

test: lint typecheck pytest

# Benchmarks print one table (and write bench/results.md), then the full soak (1,000 generations
# through 10% faults); about twelve minutes.
bench: $(STAMP)
	$(PY) bench/run.py
	YART_SOAK=1000 $(PY) -m pytest -q -p no:cacheprovider tests/test_faults.py -k soak

emulator: $(STAMP)
	$(PY) -m yart_jupyter.emulator --port 8765

clean:
	rm -rf $(VENV) demo-output test-artifacts .pytest_cache .mypy_cache .ruff_cache
