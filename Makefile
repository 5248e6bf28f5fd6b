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

test: install
	$(BIN)/python -m pytest -q

# The two tiers of `make test`: unit tests and doctests (under a minute),
# then recipe runs and the other slow checks.
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: install
	$(BIN)/python -m pytest -q -m slow

demo: install
	$(BIN)/speechbrain-kd demo

lint: install
	$(BIN)/ruff check speechbrain_kd recipes tests benchmarks
	$(BIN)/yamllint -c .yamllint hparams

clean:
	rm -rf $(VENV) results *.egg-info
