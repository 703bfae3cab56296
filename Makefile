# Nova Voice — the two commands a newcomer needs:
#   make run    set everything up and start Nova on this machine
#   make test   set everything up (test tools included) and run the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Apertium's English<->Spanish pair: the translation backend that works offline (DESIGN §4).
APT_RUN_PACKAGES := apertium-eng-spa
# Debian tools the tests use: espeak-ng (synthesised speech) and LibriVox recordings; for the
# clients, chromium (the page), Xvfb with xdotool, xterm, setxkbmap and fonts (voice typing into
# real X windows, the overlay), PulseAudio (system audio through a null sink), tmux (terminal
# subtitles) and tesseract (reading the overlay's screenshot).
APT_TEST_PACKAGES := espeak-ng pocketsphinx-testdata $(APT_RUN_PACKAGES) \
	chromium xvfb xdotool xterm x11-xkb-utils xkb-data x11-utils xfonts-base fonts-dejavu-core \
	pulseaudio pulseaudio-utils tmux tesseract-ocr tesseract-ocr-eng tesseract-ocr-spa

.PHONY: install install-test apt apt-run-deps apt-test-deps run test lint typecheck schemas bench \
	lock clean

# Exact versions, hashes checked: requirements/run.txt (Nova with its offline speech models) and
# requirements/test.txt (also the test tools), both made by `make lock` from pyproject.toml.
RUN_LOCK  := requirements/run.txt
TEST_LOCK := requirements/test.txt
# The tool that writes the locks (only `make lock` needs it).
UV_VERSION := 0.13.9
LOCK_FLAGS := --universal --fork-strategy fewest --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" --quiet

# ensurepip (Debian's python3-venv) is what `python3 -m venv` needs to put pip in the venv; a
# venv made without it is removed again, so the next run does not trip over half a venv.
$(BIN)/pip:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Nova Voice needs Python >= 3.11 (found $$($(PYTHON) --version 2>&1))"; exit 1; }
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || \
		$(MAKE) --no-print-directory apt APT="python3-venv"
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }

# The locked set first, then Nova itself on top without touching it: built with the locked
# setuptools (no build isolation, which would fetch whatever setuptools is newest).
$(VENV)/.installed: $(BIN)/pip $(RUN_LOCK) pyproject.toml
	$(BIN)/pip install --quiet --require-hashes -r $(RUN_LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed $(TEST_LOCK)
	$(BIN)/pip install --quiet --require-hashes -r $(TEST_LOCK)
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

# The real-time suite first (it refreshes the README's table), then the other bench/ scripts.
bench: install-test
	$(BIN)/nova bench --all

# Re-resolve the locks from pyproject.toml: versions already locked are kept unless a changed
# bound excludes them; `make lock UPGRADE=1` takes the newest allowed. The build backend named in
# pyproject's [build-system] is locked too (requirements/build.in, written here).
lock: $(BIN)/pip
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' > requirements/build.in
	$(BIN)/uv pip compile pyproject.toml requirements/build.in --extra models --extra test \
		$(LOCK_FLAGS) $(if $(UPGRADE),--upgrade) -o $(TEST_LOCK)
	$(BIN)/uv pip compile pyproject.toml requirements/build.in --extra models -c $(TEST_LOCK) \
		$(LOCK_FLAGS) -o $(RUN_LOCK)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
