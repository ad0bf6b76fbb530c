# Two commands for a newcomer: `make reproduce` and `make test`.
# Both create .venv when it is missing and install the package once (the stamp
# file is refreshed only when pyproject.toml or constraints.txt change).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.nanoutils-installed
DEVICE ?= auto
# An extra package index for torch, e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu for the CPU build on
# Linux (PyPI's Linux torch is the CUDA build with its multi-GB nvidia-* wheels). Empty: PyPI only.
TORCH_INDEX ?=
PIP_INDEX := $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))

.PHONY: reproduce lint test test-fast smoke bench lab clean package-data

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install $(PIP_INDEX) -c constraints.txt -e '.[dev,notebooks]'
	touch $(STAMP)

reproduce: $(STAMP)  ## run the notebook series with the default profile
	$(BIN)/python -m nanoutils run --profile default --device $(DEVICE)

lint: $(STAMP)  ## ruff (lint and format check, notebooks included) and mypy on nanoutils/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint  ## the lint gate, then unit and physics tests, docstring examples and a smoke run of every notebook
	$(BIN)/python -m pytest

test-fast: $(STAMP)  ## the tests without the slow notebook smoke series
	$(BIN)/python -m pytest -m "not slow"

smoke: $(STAMP)  ## the notebook series with the smoke profile (seconds per notebook)
	$(BIN)/python -m nanoutils run --profile smoke --device $(DEVICE)

bench: $(STAMP)  ## timings recorded in benchmarks/RESULTS.md
	@set -e; for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b; done

lab: $(STAMP)  ## open the notebooks in JupyterLab
	$(BIN)/jupyter lab notebooks/

clean:  ## remove executed notebooks, caches and checkpoints (not .venv)
	rm -rf runs .pytest_cache

package-data:  ## copy data/ions.csv and data/pitzer/parameters.csv into the package (nanoutils/_data/)
	cp data/ions.csv nanoutils/_data/ions.csv
	cp data/pitzer/parameters.csv nanoutils/_data/pitzer/parameters.csv
