# Two commands from a clean clone: `make demo` (set up, run the main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# The CPU wheel of torch lies in /opt/wheels on these machines; pip's config usually says so,
# but say it here too so a bare environment finds it and never pulls a CUDA build.
FIND_LINKS = $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

.PHONY: setup demo test test-fast lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(FIND_LINKS) \
		-c constraints.txt -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/autosq search --device rpi4 --max-mb 5

lint: setup
	$(BIN)/ruff check autosq tests bench
	$(BIN)/mypy

# The tests run on every CPU (pytest-xdist, -n auto): most wait on subprocesses, servers and
# timings, or train on one thread.
test: lint
	$(BIN)/python -m pytest -q -n auto

# The edit-test loop: everything but the tests marked slow (training, whole searches).
test-fast: setup
	$(BIN)/python -m pytest -q -n auto -m "not slow"

# make bench: list the benchmarks; make bench NAME=x ARGS="...": run bench/x.py (machine facts
# and date first).
bench: setup
	$(BIN)/python bench/run.py "$(NAME)" $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
