# One venv for everything: Pulumi.yaml points `pulumi up` at the same ./venv.
VENV ?= venv
PY := $(VENV)/bin/python

.PHONY: setup system-packages lint test plan bench generate mutation

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

# node's TypeScript parser, to check the TypeScript example against the package schema
tests/ts/node_modules/.installed: tests/ts/package-lock.json
	command -v npm >/dev/null 2>&1 || bash scripts/system-packages.sh
	npm ci --prefix tests/ts --silent --no-audit --no-fund
	touch $@

setup: $(VENV)/.installed tests/ts/node_modules/.installed

system-packages:
	bash scripts/system-packages.sh

lint: setup system-packages
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy nat natctl testbed tests bench scripts __main__.py
	$(VENV)/bin/mypy provider/__main__.py  # a second __main__.py: checked on its own
	shellcheck nat/instance/nat-bootstrap.sh

test: lint
	$(PY) -m pytest

generate: $(VENV)/.installed
	$(PY) scripts/generate.py

plan: $(VENV)/.installed
	$(PY) -m natctl plan --stack dev

bench: setup system-packages
	$(PY) -m bench

# Mutation testing (not in CI: hours on two cores): mutmut over the pure modules, then the
# hand-made mutations of the bootstrap script; scores to docs/mutation-scores.json
mutation: setup system-packages
	$(PY) scripts/mutation.py
