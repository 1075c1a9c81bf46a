# The contractor portal: `make run` for the demo, `make test` for the checks.
# GNU make. Everything runs from the virtualenv in .venv, created on first use
# with the newest Python >= 3.12 found on the machine (override: PYTHON=...).

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
VPY := $(VENV)/bin/python
# Stamps: pip runs again only when a requirements file changes.
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev

PYTHON ?=
ADDR ?= 127.0.0.1:8000
PYTEST_ARGS ?=
BENCH_ARGS ?=

# Prints "major minor micro<TAB>path" for a usable interpreter (>= 3.12, with
# venv and ensurepip, which Debian ships separately), nothing otherwise.
PY_PROBE := import sys, venv, ensurepip; sys.version_info >= (3, 12) and print(*sys.version_info[:3], sep=" ", end="\t" + sys.executable + "\n")

# The newest usable Python among python3.x on PATH and pyenv's versions.
# pyenv's shims for versions that are installed but not selected exit with an
# error, so every candidate is run, not just looked up.
define find_python
candidates="python3.14 python3.13 python3.12 python3"; \
pyenv_root=$$(pyenv root 2>/dev/null || true); \
for dir in $${pyenv_root:+$$pyenv_root/versions/3.1[2-9]*} $$HOME/.pyenv/versions/3.1[2-9]*; do \
  candidates="$$candidates $$dir/bin/python3"; \
done; \
for candidate in $$candidates; do \
  "$$candidate" -c '$(PY_PROBE)' 2>/dev/null || true; \
done | sort -t ' ' -k1,1n -k2,2n -k3,3n | tail -n 1 | cut -f 2
endef

.PHONY: help
help:
	@echo "make run     start the portal (web + Celery worker with beat) on http://$(ADDR)/;"
	@echo "             the first run installs the requirements and loads the demo data (1 to 2 min)"
	@echo "make test    lint, migrations check and pytest (PYTEST_ARGS=... passed to pytest)"
	@echo "make lint    ruff, the import layers (import-linter) and types (mypy)"
	@echo "make format  ruff format and safe fixes"
	@echo "make bench   run every bench/*.py (BENCH_ARGS=--quick for a smoke run)"
	@echo "make clean   remove var/ (database, broker, files) and .venv"

$(VPY):
	@python="$(PYTHON)"; \
	if [ -z "$$python" ]; then python=$$($(find_python)); fi; \
	if [ -z "$$python" ]; then \
	  echo "error: no Python >= 3.12 (with venv) found: tried python3.14/3.13/3.12/python3 on PATH" >&2; \
	  echo "       and pyenv's versions. Install one, or run: make PYTHON=/path/to/python3.12 ..." >&2; \
	  exit 1; \
	fi; \
	if [ -z "$$("$$python" -c '$(PY_PROBE)' 2>/dev/null)" ]; then \
	  echo "error: PYTHON=$$python is not a Python >= 3.12 with the venv module." >&2; exit 1; \
	fi; \
	echo "Creating $(VENV) with $$python ($$("$$python" --version))"; \
	"$$python" -m venv $(VENV)

# An existing .venv is kept as it is; one made with an older Python is refused.
define check_venv
@if [ -z "$$($(VPY) -c '$(PY_PROBE)' 2>/dev/null)" ]; then \
  echo "error: $(VENV) does not run Python >= 3.12; remove it (make clean) and try again." >&2; exit 1; \
fi
endef

$(RUNTIME_STAMP): requirements.txt | $(VPY)
	$(check_venv)
	@echo "Installing the requirements in $(VENV) (a minute the first time)..."
	@$(VPY) -m pip install --quiet --disable-pip-version-check --no-input -r requirements.txt
	@touch $@

# requirements-dev.txt includes requirements.txt, so this stamp covers both.
$(DEV_STAMP): requirements.txt requirements-dev.txt | $(VPY)
	$(check_venv)
	$(VPY) -m pip install --disable-pip-version-check --no-input -r requirements-dev.txt
	@touch $@ $(RUNTIME_STAMP)

# bin/run-dev does the rest (migrations, demo data, sandbox, web server and
# worker) quietly, and ends with the demo logins and the address.
.PHONY: run
run: $(RUNTIME_STAMP)
	@ADDR=$(ADDR) VENV=$(VENV) exec bin/run-dev

.PHONY: test
test: lint
	DEBUG=1 $(VPY) manage.py makemigrations --check --dry-run
	@rm -rf var/test/broker  # tasks the tests queued on the file-system broker
	$(VPY) -m pytest $(PYTEST_ARGS)

# The layers (import-linter's contracts in pyproject.toml) and the types of the
# services and pure modules (mypy with django-stubs) are checked with the style.
.PHONY: lint
lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	DEBUG=1 $(VENV)/bin/mypy

.PHONY: format
format: $(DEV_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Benchmarks are scripts that print figures; files starting with "_" are
# their helpers. They run from the top folder, so `import portal` works.
.PHONY: bench
bench: $(DEV_STAMP)
	@shopt -s nullglob; scripts=(); \
	for script in bench/*.py; do [[ $$(basename $$script) == _* ]] || scripts+=("$$script"); done; \
	if [ $${#scripts[@]} -eq 0 ]; then echo "no benchmarks yet"; exit 0; fi; \
	for script in "$${scripts[@]}"; do \
	  echo "== $$script"; \
	  PYTHONPATH=$(CURDIR) DJANGO_SETTINGS_MODULE=portal.settings $(VPY) $$script $(BENCH_ARGS) || exit 1; \
	done

.PHONY: clean
clean:
	rm -rf var $(VENV)
