# Two commands on a fresh machine:
#   make demo   sets up .venv and trains the mnist-fast preset, printing its test accuracy
#   make test   sets up .venv (with the test extras) and runs the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The datasets shipped beside the repository; override with CNNLAB_DATA=/path or --data-dir.
CNNLAB_DATA ?= $(abspath ../shared/datasets)
export CNNLAB_DATA

.PHONY: demo test test-slow venv dev clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# constraints.txt pins torch/torchvision to the builds in the local mirror (a ~75 s install).
$(VENV)/.installed: $(BIN)/activate pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

venv: $(VENV)/.installed
dev: $(VENV)/.installed-dev

demo: venv
	$(BIN)/cnnlab train mnist-fast --out runs/mnist-fast --overwrite

test: dev
	$(BIN)/python -m pytest -n 2 --durations=15

# The tests that train on full real datasets for minutes (deselected by default).
test-slow: dev
	$(BIN)/python -m pytest -m slow --durations=5

clean:
	rm -rf $(VENV) runs .pytest_cache
