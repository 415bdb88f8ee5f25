# One venv for everything: Pulumi.yaml points `pulumi up` at the same ./venv.
VENV ?= venv
PY := $(VENV)/bin/python

.PHONY: setup system-packages lint test plan bench

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

system-packages:
	bash scripts/system-packages.sh

lint: setup system-packages
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy nat natctl testbed tests bench __main__.py
	shellcheck nat/nat-bootstrap.sh

test: lint
	$(PY) -m pytest

plan: setup
	$(PY) -m natctl plan --stack dev

bench: setup system-packages
	$(PY) -m bench
