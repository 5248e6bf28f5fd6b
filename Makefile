# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-fast test-slow demo lint clean

install: $(STAMP)

# Re-installs only when the package metadata or the pins change.
$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

# Two pytest workers (pytest-xdist) with one torch thread per process:
# two processes fill two cores, more threads per process oversubscribe them.
PYTEST := OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2

test: install
	$(PYTEST)

# The two tiers of `make test`: unit tests and doctests (under a minute),
# then recipe runs and the other slow checks.
test-fast: install
	$(PYTEST) -m "not slow"

test-slow: install
	$(PYTEST) -m slow

demo: install
	$(BIN)/speechbrain-kd demo

lint: install
	$(BIN)/ruff check speechbrain_kd recipes tests benchmarks
	$(BIN)/yamllint -c .yamllint hparams

clean:
	rm -rf $(VENV) results *.egg-info
