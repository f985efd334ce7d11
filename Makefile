# Set-up is these two commands on a machine with Python 3.11+ and pip.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-slow bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/raspc demo

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

test-slow: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m slow

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/run.py --readme

# The 5,000-program fuzz campaign on both cores (needs hypothesis: the test extras).
fuzz: $(VENV)/.installed-test
	$(BIN)/python benchmarks/fuzz.py --programs 5000 --seed 11 --jobs 2 --fast-xla

clean:
	rm -rf $(VENV) build *.egg-info
