# The two commands: `make run` (paper pipeline once on the embedded sample data) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test e2e lint bench chaos install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/joe run --once

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy src

# `make test`: lint, types and every test but the end-to-end suite; `make e2e`: that suite (whole runs
# of `joe` against the simulators, the daemon, the chaos smoke subset). CI runs both.
test: lint
	$(BIN)/pytest -n 2 --dist loadfile -q -m "not e2e"

e2e: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadfile -q -m e2e

# The chaos suite (issue 13): SEEDS=A:B scenarios (default the full thousand), WORKERS processes.
# A failing seed prints the one-line command that replays it alone.
# The scenarios' data folders go to tmpfs where there is one (an fsync there costs nothing; the audit
# log's crash-safety is proven by its own tests on a real disk); a failing scenario's folder is kept.
SEEDS ?= 0:1000
WORKERS ?= 8
CHAOS_TMP ?= $(shell mktemp -d $$(test -d /dev/shm && echo /dev/shm || echo /tmp)/joe-chaos.XXXXXX)
chaos: $(STAMP)
	$(BIN)/pytest tests/chaos/test_chaos.py -q -n $(WORKERS) --dist load --chaos-seeds $(SEEDS) \
		--basetemp=$(CHAOS_TMP)

bench: $(STAMP)
	@set -e; for f in bench/[!_]*.py; do echo "== $$f"; $(BIN)/python $$f; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
