# Quick start:  make run   (set up, then execute every notebook: PROFILE=default by default, CHAPTERS="2 3" to select)
#               make test  (set up, then unit tests + every notebook under nbval in the smoke profile)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= default
CHAPTERS ?=
PYTEST_WORKERS ?= 2
# Tests run PYTEST_WORKERS processes side by side: one math thread each avoids oversubscribing the cores.
TEST_ENV := HANDSON_PROFILE=smoke OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

.PHONY: setup run test unit nbval notebooks lab lint check-notebooks clean

setup: $(VENV)/.installed .ci/.system-packages

# The virtual environment is rebuilt only when requirements.txt changes.
$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -c "import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()['purelib'], 'handson-repo.pth').write_text('$(CURDIR)\n')"
	touch $@

# System packages (real Fashion-MNIST, real speech, redis-server, espeak-ng, cmake): installed when run as root with
# apt; otherwise the notebooks use the offline subsets committed in data/ (see data/README.md).
.ci/.system-packages: .ci/system-packages.sh
	bash .ci/system-packages.sh
	touch $@

run: setup
	$(PY) -m handson.runner --profile $(PROFILE) $(CHAPTERS)

test: setup
	$(TEST_ENV) $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile tests \
	  --nbval --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg --nbval-cell-timeout 600 \
	  $(if $(CHAPTERS),$(foreach c,$(CHAPTERS),$(wildcard chapter0$(c)_*)),chapter*/)

unit: setup
	$(TEST_ENV) $(PY) -m pytest -n $(PYTEST_WORKERS) tests

nbval: setup
	$(TEST_ENV) $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --nbval --nbval-current-env \
	  --nbval-sanitize-with tests/sanitize.cfg $(if $(CHAPTERS),$(foreach c,$(CHAPTERS),$(wildcard chapter0$(c)_*)),chapter*/)

# Maintainers: re-execute the committed notebooks in place in the default profile.
notebooks: setup
	$(PY) -m handson.runner --in-place --profile default $(CHAPTERS)

lab: setup
	$(VENV)/bin/jupyter lab

lint: setup
	$(VENV)/bin/ruff check handson tests chapter*/

check-notebooks:
	$(PYTHON) ../shared/tools/check_notebooks.py

clean:
	rm -rf artifacts
