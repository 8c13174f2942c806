PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

EXPERIMENTS := spam_shared_ip mitigations mx_outages retry_policies greylisting capacity

.PHONY: demo test bench lint clean experiments golden

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mailnet run experiments/scenarios/baseline.toml --out results/demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n auto -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_baseline.py
	$(BIN)/python benchmarks/bench_sweep.py

experiments: $(STAMP)
	for e in $(EXPERIMENTS); do \
	  rm -rf results/$$e && \
	  $(BIN)/mailnet sweep experiments/sweeps/$$e.toml --out results/$$e && \
	  $(BIN)/mailnet report results/$$e || exit 1; \
	done

golden: $(STAMP)
	$(BIN)/python tests/test_golden.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) results/demo .pytest_cache
