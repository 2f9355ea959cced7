# One command to set up and run the main job (make demo), one to set up and run the tests (make test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install web-runtime demo test test-fast wheel-test lint format bench clean

install: $(VENV)/.installed web-runtime

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

# ONNX Runtime Web for in-page inference (pinned + integrity-checked from pixtrans/web/vendor/package-lock.json,
# copied to the git-ignored pixtrans/web/static/ort/); without npm the studio runs models on the server only.
web-runtime: $(VENV)/.installed
	$(BIN)/python -m pixtrans.web.ort_runtime

demo: install
	$(BIN)/pixtrans demo --out demo

test: install
	$(BIN)/python tests/run_isolated.py $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not browser" $(PYTEST_ARGS)

# The built wheel in a fresh venv (torch==2.13.0 + its PyPI dependencies) runs a short demo outside the repository.
wheel-test: install
	PIXTRANS_WHEEL_TEST=1 $(BIN)/python -m pytest -q -s tests/test_packaging.py -k wheel

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: install
	$(BIN)/pixtrans bench unet_256 --size 256x256 --json

clean:
	rm -rf $(VENV) demo runs .pytest_cache
