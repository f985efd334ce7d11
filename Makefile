# Set-up is these two commands on a machine with Python 3.11+ and pip.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Every install is pinned by constraints.txt: the versions the suite last passed with.
PIP_INSTALL := $(BIN)/pip install --quiet -c constraints.txt
TEST_EXTRAS := test,transformer-lens,hf,plots,compress,notebook,zoo
# The suites run on every core (pytest-xdist), a test file to a worker: files that share
# a module fixture (a compiled model, the SAELens venv) keep it in one process.
TEST_WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile
# One JAX compilation cache for the test runs: many tests compile the same model's forward
# (in both workers, in several files, and again in test-slow), which the cache compiles
# once. Outside the tree, so that the breaks' copies of it do not copy the cache.
export JAX_COMPILATION_CACHE_DIR ?= $(or $(TMPDIR),/tmp)/rasp-compiler-jax-cache
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS ?= 0
export JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES ?= -1

.PHONY: demo sae-lens-venv test test-slow test-sweep test-outside breaks bench fuzz circuits docs-images mutation clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e '.[$(TEST_EXTRAS)]'
	touch $@ $(VENV)/.installed

# SAELens 6 needs TransformerLens < 4, so it gets a venv of its own, pinned by
# constraints-sae.txt (torch 2.13.0, the CPU build on disk); interp.sae.train_sae_lens uses it.
SAE_VENV := .venvs/sae-lens
$(SAE_VENV)/.installed: constraints-sae.txt
	$(PYTHON) -m venv --clear $(SAE_VENV)
	$(SAE_VENV)/bin/pip install --quiet -c constraints-sae.txt sae-lens
	touch $@

sae-lens-venv: $(SAE_VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/raspc demo

test: $(VENV)/.installed-test
	$(PYTEST)

test-slow: $(VENV)/.installed-test
	$(PYTEST) -m slow

# Every library example under every realism knob (rotate, permute, perturb, soft
# attention) at N = 5 and its default N: about an hour on 2 cores, so not in CI.
test-sweep: $(VENV)/.installed-test
	$(PYTEST) -m sweep

# Outside tools in venvs of their own (auto-circuit with TransformerLens 2; not in CI).
test-outside: $(VENV)/.installed-test
	$(PYTEST) -m outside

# Each of tests/breaks.py's eight breaks applied to a copy of the tree: the suite must
# catch every one (also part of test-slow).
breaks: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m slow tests/test_breaks_are_caught.py

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/run.py --readme

# The 5,000-program fuzz campaign on both cores (needs hypothesis: the test extras).
fuzz: $(VENV)/.installed-test
	$(BIN)/python benchmarks/fuzz.py --programs 5000 --seed 11 --jobs 2 --fast-xla

# The README's pictures, one per plot kind (docs/images/*.png; needs matplotlib: the plots extra).
docs-images: $(VENV)/.installed-test
	$(BIN)/python docs/make_images.py

# Every circuit-discovery baseline on every example, scored against the exact truth;
# then the realism table: each variant of 8 examples (docs/realism.md says how it is sized).
circuits: $(VENV)/.installed-test
	$(BIN)/python benchmarks/circuits.py --readme
	$(BIN)/python benchmarks/circuits.py --readme --pairs 16 \
		--variants plain,rotated,soft,dense,multitask,layernorm,compressed

# Mutation testing (mutmut, one worker) of the modules users rely on; writes docs/mutation.md.
# MODULES=interp/circuits/scoring.py limits it; see docs/mutation.md for how long each takes.
mutation: $(VENV)/.installed-mutation
	$(BIN)/python benchmarks/mutation.py $(MODULES)

$(VENV)/.installed-mutation: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e '.[$(TEST_EXTRAS),mutation]'
	touch $@ $(VENV)/.installed-test $(VENV)/.installed

clean:
	rm -rf $(VENV) $(SAE_VENV) build *.egg-info
