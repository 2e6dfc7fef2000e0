# Every target installs what it needs into .venv/ from the pinned requirement files.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test test-py39 lint demo bench audit clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# In parallel (pytest-xdist): a test file runs whole in one worker, so module fixtures and
# the audits at the end of a module see all of it. Six workers keep two cores busy: most
# tests spend their time waiting on a CLI run, a socket or a prompt's duration, not
# computing, and the CLI runs are forked from a fork server that has imported the CLI
# already (tests/cli_forkserver.py). The ten slowest tests are listed.
XDIST := -n 6 --dist loadfile
test: lint
	$(PY) -m pytest $(XDIST) --durations=10

demo: $(STAMP)
	$(PY) tests/demo/demo.py

bench: $(STAMP)
	$(PY) tests/bench/run_bench.py

# The skill security scan users' tools run, on the committed tree (see tests/audit.py).
# The scanner is large, so it has its own virtualenv and stays out of `make test`.
# The scanner needs Python 3.11 or newer: AUDIT_PYTHON=/path/to/python3.11 if python3 is older.
SCANNER := cisco-ai-skill-scanner==2.3.2
AUDIT_PYTHON ?= $(PYTHON)
AUDIT_VENV := .venv-audit

AUDIT_STAMP := $(AUDIT_VENV)/.installed-$(SCANNER)

$(AUDIT_STAMP):
	$(AUDIT_PYTHON) -m venv --clear $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "$(SCANNER)"
	touch $@

audit: $(AUDIT_STAMP)
	$(AUDIT_VENV)/bin/python tests/audit.py --scanner $(AUDIT_VENV)/bin/skill-scanner

lint: $(STAMP)
	$(PY) -m ruff check scripts tests
	$(VENV)/bin/vermin --target=3.9- --violations --no-tips --eval-annotations scripts

# The whole suite on the oldest Python supported, but for the two checks of the docs whose
# tools need a newer Python (openapi-spec-validator 3.10+, skills-ref's agentskills 3.11+).
PY39_SKIPS := --ignore=tests/test_openapi.py -k "not test_agentskills_validate"
# python3.9 on the PATH, else one that pyenv has installed.
PY39 ?= $(shell for p in python3.9 $$(pyenv root 2>/dev/null)/versions/3.9*/bin/python3.9; do \
	"$$p" -c "" 2>/dev/null && { echo "$$p"; break; }; done)
VENV39 := .venv39

$(VENV39)/.installed: requirements.txt requirements-py39.txt
	@test -n "$(PY39)" || { echo "test-py39: no Python 3.9 found (set PY39=/path/to/python3.9)"; exit 2; }
	$(PY39) -m venv $(VENV39)
	$(VENV39)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-py39.txt
	touch $@

test-py39: $(VENV39)/.installed
	$(VENV39)/bin/python -m pytest $(XDIST) $(PY39_SKIPS)

clean:
	rm -rf $(VENV) $(VENV39) $(AUDIT_VENV) .pytest_cache .ruff_cache
