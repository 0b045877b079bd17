# The two commands a new user runs: `make demo` and `make test`. Both install what
# they need first (idempotent; the stamp file skips pip when pyproject.toml is unchanged).
PYTHON ?= python3
export PYTHONPATH := $(CURDIR)
export RAY_DEDUP_LOGS := 0
STAMP := .deps.stamp
PYTEST := $(PYTHON) -m pytest

.PHONY: deps demo test test-unit test-integration test-e2e bench bench-smoke bench-autoscale bench-simulator dashboards lint typecheck clean

$(STAMP): pyproject.toml scripts/install_deps.sh
	bash scripts/install_deps.sh
	touch $(STAMP)

deps: $(STAMP)

demo: deps
	$(PYTHON) scripts/demo.py

test: deps
	$(PYTEST) tests/unit -m unit -q
	$(PYTEST) tests/integration -m integration -q
	$(PYTEST) tests/e2e -m e2e -q

test-unit: deps
	$(PYTEST) tests/unit -m unit -q

test-integration: deps
	$(PYTEST) tests/integration -m integration -q

test-e2e: deps
	$(PYTEST) tests/e2e -m e2e -q

bench: deps
	$(PYTHON) -m bench.http_bench

bench-smoke: deps
	$(PYTHON) -m bench.http_bench --smoke

bench-autoscale: deps
	$(PYTHON) -m bench.autoscale_bench

bench-simulator: deps
	$(PYTHON) -m bench.simulator_check

dashboards: deps
	$(PYTHON) -m dashboards.build

lint: deps
	$(PYTHON) -m ruff check serve_core embedded_cluster loadgen chaos tune dashboards tests bench examples scripts compose
	$(PYTHON) -c 'import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())'  # pyproject's [tool.importlinter]

typecheck: deps
	$(PYTHON) -m mypy serve_core embedded_cluster loadgen chaos tune dashboards

clean:
	rm -f $(STAMP)
