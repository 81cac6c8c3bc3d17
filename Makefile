# `make demo` runs the default experiment, `make test` runs the test suite.
# Both create .venv on first use and install lrtrain with the pinned versions of constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint format bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	# fastai, a reference of the find-lr tests, without its declared dependencies: they pull a
	# torchvision built for CUDA torch that cannot load with the CPU torch (constraints.txt says more)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -c constraints.txt \
		fastai fastcore fastdownload fastprogress fasttransform plum-dispatch beartype \
		python-fasthtml itsdangerous python-multipart
	# An editable install leaves lrtrain's own modules uncompiled; compiling them once saves
	# every command ~0.3 s of start-up (read even where PYTHONDONTWRITEBYTECODE is set).
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m compileall -q src/lrtrain
	# The fused statistics kernel (the fast extra) compiled once into numba's cache, ~15 s,
	# so that no run or test pays it
	$(BIN)/python -c "from lrtrain.data import fused; fused.warm()"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lrtrain fit

# Every core: the suite is mostly whole processes (CLI runs, torchrun) that wait on imports.
# Bytecode is written (whatever the environment says): each worker then loads pytest's
# rewritten test modules instead of rewriting them, ~2 s of CPU per worker and rerun.
test: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n auto

# The edit loop: without the genuinely slow tests (marked slow: torchrun, kill tests, benchmarks)
test-fast: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n auto -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

clean:
	rm -rf runs build dist .pytest_cache .ruff_cache .mypy_cache .hypothesis .import_linter_cache src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,bench]'
	$(BIN)/python -m benchmarks
