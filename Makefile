# Every target installs what it needs into .venv/ from the pinned requirement files.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint demo bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

test: lint
	$(PY) -m pytest

demo: $(STAMP)
	$(PY) demo/demo.py

bench: $(STAMP)
	$(PY) bench/run_bench.py

lint: $(STAMP)
	$(PY) -m ruff check scripts tests bench demo
	$(VENV)/bin/vermin --target=3.9- --violations --no-tips --eval-annotations scripts

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
