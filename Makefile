PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Installs come from uv.lock, the exact versions the project is tested with. uv is taken
# from PATH, or installed from the package index into $(TOOLS) the first time.
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(or $(shell command -v uv 2>/dev/null),$(TOOLS)/bin/uv)
# The same pins for plain pip (make INSTALL=pip ...): a constraints file exported from the lock.
CONSTRAINTS := constraints.txt
EXPORT = $(UV) export --frozen --extra test --extra notebooks --no-hashes --no-emit-project --no-header --quiet
CONSTRAINTS_HEADER := \# The pins of uv.lock for pip, written by make lock (do not edit): pip install -c constraints.txt -e .[test]

EXPERIMENTS := headline spam_shared_ip mitigations mx_outages retry_policies greylisting capacity blocklist_ranges
SENSITIVITY := sensitivity

.PHONY: demo test test-fast lint bench clean experiments golden reproduce lock lock-upgrade check-lock lab compiled

ifeq ($(INSTALL),pip)
$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/pip || $(PY) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[test]'
	touch $(STAMP)
else
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --extra test --python $(PY) --quiet
	touch $(STAMP)
endif

# The model's hot path compiled with mypyc beside its sources (mailnet/compiled.py): built
# when a source has changed since the last build, used only while it matches them.
compiled: $(STAMP)
	$(BIN)/python -c "from mailnet.compiled import main; raise SystemExit(main())"

$(TOOLS)/bin/uv:
	$(PY) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet uv==$(UV_VERSION)

demo: compiled
	$(BIN)/mailnet run experiments/scenarios/baseline.toml --out runs/demo --force

# JupyterLab (the notebooks extra, pinned in uv.lock) into .venv beside the test tools, then
# the notebooks. make test installs without it, and removes it only when the lock changes.
lab: $(STAMP)
ifeq ($(INSTALL),pip)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[test,notebooks]'
else
	$(UV) sync --locked --extra test --extra notebooks --python $(PY) --quiet
endif
	$(BIN)/jupyter lab notebooks/

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint compiled
	$(BIN)/python -m pytest -n auto -q

test-fast: compiled
	$(BIN)/python -m pytest -n auto -q -m "not slow"

# Every benchmark of benchmarks/, one after the other (benchmarks/README.md says what each
# measures). BENCH_QUICK=1 make bench: fewer rounds, for a first look.
bench: compiled
	$(BIN)/python benchmarks/bench_cli.py
	$(BIN)/python benchmarks/bench_baseline.py
	$(BIN)/python benchmarks/bench_sweep.py
	$(BIN)/python benchmarks/bench_scale.py
	$(BIN)/python benchmarks/bench_memory.py
	$(BIN)/python benchmarks/bench_mmc.py
	$(BIN)/python benchmarks/bench_sweep_memory.py

# Each sweep replicates until its file's [precision] targets are met. On a Dask cluster:
# make experiments SWEEP_FLAGS="--scheduler tcp://HOST:8786" (the results are identical).
SWEEP_FLAGS ?=
experiments: compiled
	for e in $(EXPERIMENTS); do \
	  rm -rf results/$$e && \
	  $(BIN)/mailnet sweep experiments/sweeps/$$e.toml --out results/$$e $(SWEEP_FLAGS) && \
	  $(BIN)/mailnet report results/$$e || exit 1; \
	done
	for e in $(SENSITIVITY); do \
	  rm -rf results/$$e && \
	  $(BIN)/mailnet sensitivity experiments/sweeps/$$e.toml --out results/$$e $(SWEEP_FLAGS) || exit 1; \
	done

golden: compiled
	$(BIN)/python tests/test_golden.py

reproduce: compiled
	$(BIN)/python tests/test_reproduce.py

# After editing the dependencies in pyproject.toml: resolve again, keeping every other pin.
lock: | $(UV)
	$(UV) lock
	{ echo "$(CONSTRAINTS_HEADER)"; $(EXPORT); } > $(CONSTRAINTS)

# Move every pin to the newest release pyproject.toml allows; then make test and make reproduce.
lock-upgrade: | $(UV)
	$(UV) lock --upgrade
	{ echo "$(CONSTRAINTS_HEADER)"; $(EXPORT); } > $(CONSTRAINTS)

# Fails when pyproject.toml and uv.lock, or uv.lock and the constraints file, disagree.
check-lock: | $(UV)
	$(UV) lock --check
	{ echo "$(CONSTRAINTS_HEADER)"; $(EXPORT); } | diff -u $(CONSTRAINTS) - \
	  || { echo "$(CONSTRAINTS) is stale: run make lock" >&2; exit 1; }

clean:
	rm -rf $(VENV) $(TOOLS) runs/demo .pytest_cache .mypy_cache build mailnet/_compiled.json
	find mailnet -name '*.so' -delete
