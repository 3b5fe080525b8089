# Every target creates .venv and installs what it needs when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
PYTEST_ARGS ?=

.PHONY: demo test lab bench venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

venv: $(STAMP)

# Runs the quickstart notebook in a real kernel against a fresh store, then prints
# the runs it stored and the order in which its cells ran.
demo: $(STAMP)
	@store=$$(mktemp -d)/.mlops; \
	$(BIN)/jupyter-mlops execute example_notebooks/01_quickstart.ipynb --store "$$store"

# pytest exits 5 when it collects nothing; that is a failure of ours, not a pass.
test: $(STAMP)
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is misconfigured"; exit 1; fi; \
	exit $$rc

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=example_notebooks

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python bench/tracking.py

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
