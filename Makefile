# Every target creates .venv and installs what it needs when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
DEMO_STAMP := $(VENV)/.installed-demo
PYTEST_ARGS ?=
# jlpm and jupyter-builder live in the venv (jupyterlab brings them); Node.js is the
# machine's own.
VENV_PATH := PATH="$(CURDIR)/$(BIN):$$PATH"
# jlpm (yarn) fetches from the registry that this machine's npm is set up with.
export YARN_NPM_REGISTRY_SERVER ?= $(shell npm config get registry 2>/dev/null)
# The JupyterLab sidebar: TypeScript in labextension/, built into jupyter_mlops/labextension/.
LABEXT_BUILD := jupyter_mlops/labextension/package.json
LABEXT_SOURCES := $(wildcard labextension/src/*.ts labextension/src/*/*.ts labextension/style/*) \
	labextension/package.json labextension/yarn.lock labextension/tsconfig.json
# The browser tests drive Debian's chromium; nothing downloads a browser of its own.
CHROMIUM := /usr/bin/chromium
LAB_STORE := example_notebooks/.mlops
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: demo test test-frameworks lab bench bench-server venv js chromium clean

$(BIN)/python:
	@echo "Creating the virtual environment $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip

# The first install builds the sidebar (jlpm install and build, through
# hatch-jupyter-builder); the link then makes later rebuilds (make js) live in the venv.
$(STAMP): pyproject.toml | $(BIN)/python
	$(VENV_PATH) $(BIN)/python -m pip install -q -e ".[test]"
	$(VENV_PATH) $(BIN)/jupyter-builder develop --overwrite . >/dev/null
	touch $@

venv: $(STAMP)

# The demo needs the package and its own dependencies only: no test extras, no sidebar build.
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ]; then exit 0; fi; \
	echo "Installing jupyter-mlops and its dependencies into $(VENV) (a minute or two, once)"; \
	SKIP_JUPYTER_BUILDER=1 $(BIN)/python -m pip install -q -e .
	@touch $@

# Rebuild the sidebar when its sources change.
$(LABEXT_BUILD): $(LABEXT_SOURCES) | $(STAMP)
	cd labextension && $(VENV_PATH) jlpm install && $(VENV_PATH) jlpm build
	touch $@

js: $(LABEXT_BUILD)

chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "Installing Debian's chromium for the browser tests"; \
			apt-get update -q >/dev/null && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; \
		else \
			echo "$(CHROMIUM) is missing and installing it needs root: the browser tests" \
			     "will be skipped (and fail under CI)."; \
		fi; \
	fi

# Runs the quickstart notebook in a real kernel against a fresh store, then prints
# the runs it stored and the order in which its cells ran.
demo: $(DEMO_STAMP)
	@store=$$(mktemp -d)/.mlops; \
	$(BIN)/jupyter-mlops execute example_notebooks/01_quickstart.ipynb --store "$$store"

# The suite runs on TEST_WORKERS processes (pytest-xdist, one file per worker at a time),
# then the tests marked `alone` (they measure what processes do to each other, so another
# worker's load would decide them), then the Jupyter server tests alone: pytest-jupyter's
# event loop must own its process.
# TEST_WORKERS=0 runs everything in one process. pytest exits 5 when it collects nothing;
# that is a failure of ours, not a pass.
TEST_WORKERS ?= 2
PARALLEL = $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile,)

# Bytecode is compiled once up front: where PYTHONDONTWRITEBYTECODE is set, every kernel and
# command the tests start would otherwise compile the package's modules again.
test: $(STAMP) $(LABEXT_BUILD) chromium
	@$(BIN)/python -m compileall -q jupyter_mlops >/dev/null
	@$(BIN)/python -m pytest $(PARALLEL) --ignore=tests/server -m "not alone" $(PYTEST_ARGS); rc=$$?; \
	$(BIN)/python -m pytest tests --ignore=tests/server -m alone $(PYTEST_ARGS); rc1=$$?; \
	$(BIN)/python -m pytest tests/server $(PYTEST_ARGS); rc2=$$?; \
	for code in $$rc $$rc1 $$rc2; do \
		if [ $$code -eq 5 ]; then echo "pytest collected no tests: the suite is misconfigured"; exit 1; fi; \
		if [ $$code -ne 0 ]; then exit $$code; fi; \
	done

# PyTorch, Lightning and transformers are not in the test extra (their wheels are large):
# this installs torch's CPU build with them and runs the tests marked `frameworks`.
test-frameworks: $(STAMP)
	$(BIN)/python -m pip install -q "torch==2.13.0" lightning "transformers[torch]"
	$(BIN)/python -m pytest -m frameworks tests $(PYTEST_ARGS)

# JupyterLab with the sidebar on example_notebooks/. Its store is example_notebooks/.mlops
# (the server extension points every kernel there); the first time, the quickstart
# notebook is run into it so the sidebar has runs to show, each leading to its cell.
# Kernels listen on IPC sockets (as jupyter-mlops execute's do), not on TCP ports.
lab: $(STAMP) $(LABEXT_BUILD)
	@if [ ! -d $(LAB_STORE) ]; then \
		echo "Running the quickstart notebook into $(LAB_STORE)"; \
		rm -rf $(LAB_STORE).new; \
		if $(BIN)/jupyter-mlops execute example_notebooks/01_quickstart.ipynb \
				--store $(LAB_STORE).new >/dev/null; then \
			mv $(LAB_STORE).new $(LAB_STORE); \
		else \
			rm -rf $(LAB_STORE).new; echo "The quickstart notebook failed; starting anyway."; \
		fi; \
	fi
	@echo "Starting JupyterLab on example_notebooks/ (store $(LAB_STORE); kernels on private IPC sockets, not TCP)"
	$(BIN)/jupyter lab --notebook-dir=example_notebooks --KernelManager.transport=ipc $(ROOT_FLAG)

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python bench/tracking.py

# The sidebar's runs endpoint over 100,000 runs.
bench-server: $(STAMP)
	$(BIN)/python bench/server.py

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info test-artifacts \
		jupyter_mlops/labextension labextension/lib labextension/tsconfig.tsbuildinfo
