# Two commands do all set-up on a fresh machine:  `make quickstart`  and  `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: install quickstart pretrained test lint browser clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU torch wheel first (a plain `torch` requirement would pull a 5 GB CUDA build).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,onnx]"
	touch $@

install: $(VENV)/.installed

# Headless Chromium for the Space's browser test (Debian package; Playwright drives it).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The main job on the embedded offline default: synthetic data -> fine-tune -> evaluate -> card.
quickstart: install
	HF_HUB_OFFLINE=1 $(PY) -m hf_minerals.cli quickstart

# Rebuild the shipped mineral-pretrained weights (models/mineral-resnet: 20,000 streamed SYNTHETIC scenes,
# ~7 min on one core of a quiet machine); recipes/offline.yaml fine-tunes from them.
pretrained: install
	HF_HUB_OFFLINE=1 $(PY) -m hf_minerals.cli pretrain --output_dir models/mineral-resnet --scenes 20000

lint: install
	$(VENV)/bin/ruff check .

test: install browser
	$(VENV)/bin/ruff check .
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

clean:
	rm -rf outputs .pytest_cache
