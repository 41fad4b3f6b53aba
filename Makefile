# Bến Cát plan 226 monitoring: every task of the project. `make help` lists them.
# Needs only Python >= 3.11, pip and make: the first target that needs the environment creates .venv.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
YEARS  ?=
JOBS   ?= 2
LANG_REPORT ?= vi

export PYDEVD_DISABLE_FILE_VALIDATION := 1

.DEFAULT_GOAL := help
.PHONY: help install reports data clean-data indicators projections batch test test-fast notebooks lab sample template lock bench clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "; printf "Usage: make <target>\n\n"} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e ".[test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (analysis)" >/dev/null
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project (done automatically by the other targets)

reports: data ## Main job: clean the sample data, compute indicators and projections, render reports/
	$(PY) -m analysis batch $(if $(YEARS),--years $(YEARS)) --jobs $(JOBS) --lang $(LANG_REPORT)

data: $(STAMP) ## Clean data/raw/, compute indicators and projections into data/processed/
	$(PY) -m analysis clean
	$(PY) -m analysis indicators
	$(PY) -m analysis projections

clean-data: $(STAMP) ## Only clean the raw workbooks into data/processed/
	$(PY) -m analysis clean

indicators: $(STAMP) ## Only compute the indicators from data/processed/
	$(PY) -m analysis indicators

projections: $(STAMP) ## Only project every indicator series and judge it against the targets
	$(PY) -m analysis projections

batch: $(STAMP) ## Only run and render the report notebooks (YEARS=2024-2026 JOBS=2 LANG_REPORT=vi)
	$(PY) -m analysis batch $(if $(YEARS),--years $(YEARS)) --jobs $(JOBS) --lang $(LANG_REPORT)

test: $(STAMP) ## Run every test: pytest on the package, then nbval on every notebook (after `make data`)
	$(PY) -m pytest tests
	$(MAKE) --no-print-directory data
	$(PY) -m pytest --nbval notebooks --nbval-sanitize-with notebooks/nbval_sanitize.cfg -p no:cacheprovider

notebooks: data ## Re-execute the notebooks in place with their defaults (refreshes the outputs nbval compares)
	for nb in notebooks/*.ipynb; do $(PY) -m jupyter nbconvert --to notebook --execute --inplace "$$nb" || exit 1; done

test-fast: $(STAMP) ## Run the unit tests only (no notebooks, no end-to-end runs)
	$(PY) -m pytest tests -m "not slow"

lab: $(STAMP) ## Open JupyterLab on the project
	$(PY) -m jupyterlab --notebook-dir=.

sample: $(STAMP) ## Regenerate the synthetic sample workbooks in data/raw/ (seeded, reproducible)
	$(PY) -m analysis.sample

template: $(STAMP) ## Rewrite the empty template workbook in data/raw/template/
	$(PY) -m analysis template

lock: ## Re-resolve dependencies and rewrite requirements.lock (needs network to the package index)
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet -e ".[test]"
	.venv-lock/bin/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock
	rm -rf .venv-lock

bench: data ## Run the benchmarks (several minutes; prints their figures; bench_batch renders from data/processed/)
	$(PY) benchmarks/backtest_uis.py
	$(PY) benchmarks/bench_projection.py
	$(PY) benchmarks/bench_batch.py
	$(PY) benchmarks/bench_scale.py --data sample --baseline f26f6a4 --repeats 5
	$(PY) benchmarks/bench_scale.py --data country --baseline f26f6a4

clean: ## Remove generated outputs (data/processed, reports) but keep .venv
	find data/processed -mindepth 1 ! -name README.md -delete
	find reports -mindepth 1 ! -name README.md -delete
