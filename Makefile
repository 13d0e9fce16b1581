# The two commands of the README:
#   make run    set up, then run the default (quick) suite on CPU: tables, figures and results/quick/report.html
#   make test   set up, then run the linters and the whole test suite
SUITE ?= quick
CORES ?= 2
VENV := .venv/bin

.PHONY: setup setup-test run report test lint bench clean-smoke

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

run: setup
	$(VENV)/snakemake --cores $(CORES) --config suite=$(SUITE)

# Snakemake's own report of the same tables and figures (the suite's report.html is built by `run`)
report: setup
	$(VENV)/snakemake --cores $(CORES) --config suite=$(SUITE) --report results/$(SUITE)/snakemake-report.html

lint: setup-test
	$(VENV)/ruff check .
	$(VENV)/snakemake --lint

test: setup-test lint
	bash scripts/run-tests.sh

bench: setup
	$(VENV)/python benchmarks/neuron_bench.py
