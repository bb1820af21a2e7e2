# make demo: one command on a fresh machine, on the embedded emulator, no credentials.
# make test: every test (lint, types and the documentation build included).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The demo needs only the package and a notebook runner; the test venv has everything.
DEMO_STAMP := $(VENV)/.demo-installed
STAMP := $(VENV)/.installed
# uv installs the venvs: it downloads in parallel and links files from its cache, where pip copies
# every file of about 880 MB (a fresh test venv here: 19 s against 59 s), and byte-compiles them on
# every core. Without .pyc files in the venv and with PYTHONDONTWRITEBYTECODE set, as on these
# machines, every process of the suite compiled what it imported, every time (60 s more CPU a run).
UV := $(VENV)/bin/uv
UV_INSTALL := $(UV) pip install --quiet
# (UV_COMPILE_BYTECODE: for .ci/each-python's installs too)
export UV_COMPILE_BYTECODE := 1
# make's commands run with PYTHONDONTWRITEBYTECODE unset, so Python caches the package's own modules
# too, and pytest the test files it rewrites (2.5 s of CPU per process): the unit tier takes 91 s of
# CPU once they are written, against 107 s with the variable set.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test lint typecheck pytest suite browser pythons venvs docs reference emulator clean chromium bench screenshots

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(UV): | $(VENV)/bin/python
	$(PY) -m pip install --quiet 'uv>=0.5'

$(DEMO_STAMP): pyproject.toml | $(UV)
	$(UV_INSTALL) --python $(PY) -e '.[notebook]'
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml | $(UV)
	$(UV_INSTALL) --python $(PY) -e '.[test,docs]'
	touch $(STAMP) $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(PY) -m yart_jupyter.notebook.demo notebooks/quickstart.ipynb

lint: $(STAMP)
	$(PY) -m ruff check yart_jupyter tests bench docs

typecheck: $(STAMP)
	$(PY) -m mypy

# The browser test drives Debian's chromium (Playwright cannot download its own browser here); the
# provenance tests read our image metadata back with exiftool, a real-world reader; the team store's
# tests start throwaway clusters of Debian's PostgreSQL.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v exiftool >/dev/null 2>&1 || { \
		echo "installing Debian's exiftool for the provenance tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libimage-exiftool-perl >/dev/null; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "installing Debian's PostgreSQL for the team store's tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

# The whole suite on the default interpreter: everything but the browser spread over 4 workers (the
# tests mostly wait), then the browser tests, which drive one JupyterLab each.
pytest: suite browser

suite: $(STAMP) chromium
	$(PY) -m pytest -q -n 4 -m "not browser"

browser: $(STAMP) chromium
	$(PY) -m pytest -q -m browser

# The documentation site, strict: a broken link or a missing page fails the build.
# The quickstart as the demo renders it is a page of the site: made when the notebook or the code is newer.
demo-output/quickstart.html: notebooks/quickstart.ipynb $(wildcard yart_jupyter/*.py yart_jupyter/*/*.py) $(DEMO_STAMP)
	$(PY) -m yart_jupyter.notebook.demo notebooks/quickstart.ipynb

docs: $(STAMP) demo-output/quickstart.html
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site  # not --quiet: it hides the warnings strict mode counts

# The docs' pictures (docs/images): the browser test that shoots every output the pages describe, in
# JupyterLab's light and dark themes, against the embedded emulator. Run it when an output changes.
screenshots: $(STAMP) chromium
	YART_SCREENSHOTS=docs/images $(PY) -m pytest -q -p no:cacheprovider tests/test_browser.py -k docs_pictures

# Rewrite README's option table from the magic's parsers (a test fails while it is stale).
reference: $(STAMP)
	$(PY) -m yart_jupyter.notebook.magics README.md

# The suite on every other supported Python the machine has, each in its own venv (.venv-3.X).
pythons: $(STAMP)
	bash .ci/each-python

# Only the other Pythons' venvs (installed while the default interpreter's tests run).
venvs: $(STAMP)
	bash .ci/each-python --install

# The default interpreter's suite (it mostly waits on loopback) and its browser tests (on a real UI)
# run side by side while the other Pythons' venvs are made; then those Pythons' runs and the docs
# build (which runs the demo) overlap.
test: lint typecheck
	$(MAKE) -j3 --output-sync=target suite browser venvs
	$(MAKE) -j2 --output-sync=target pythons docs

# Benchmarks print one table (and write bench/results.md), the burst and cold-start rows three
# times (30 samples each move a lot between runs), then the full soak (1,000 generations through
# 10% faults); about half an hour.
bench: $(STAMP)
	$(PY) bench/run.py --runs 3
	YART_SOAK=1000 $(PY) -m pytest -q -p no:cacheprovider tests/test_faults.py -k soak

emulator: $(STAMP)
	$(PY) -m yart_jupyter.emulator --port 8765

clean:
	rm -rf $(VENV) .venv-3.* demo-output test-artifacts site .pytest_cache .mypy_cache .ruff_cache
