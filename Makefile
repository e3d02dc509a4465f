# Two commands on a fresh machine:
#   make demo   sets up .venv and trains the mnist-fast preset, printing its test accuracy
#   make test   sets up .venv (with the test extras) and runs the test suite
#   make fuzz   runs the fuzz suite (tests/fuzz) with ten times the inputs
#   make docs   builds the documentation site into site/ (strict: a warning or broken link fails)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The datasets shipped beside the repository; override with CNNLAB_DATA=/path or --data-dir.
CNNLAB_DATA ?= $(abspath ../shared/datasets)
export CNNLAB_DATA

.PHONY: demo test test-slow fuzz docs venv dev clean

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

# The fuzz suite with the "long" Hypothesis profile: 10x the inputs of `make test`, random seeds.
# The count of inputs tried goes to benchmarks/results/fuzz-<stamp>.json.
fuzz: dev
	CNNLAB_FUZZ_PROFILE=long CNNLAB_FUZZ_RESULTS=benchmarks/results $(BIN)/python -m pytest -n 2 tests/fuzz --durations=10

docs: dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) runs .pytest_cache site
