# astroreg: `make demo` runs the main job on built-in mock surveys, `make test` runs the tests.
# Both create a local virtual environment in .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.astroreg-installed
TORCH_PIN := torch==2.13.0

.PHONY: demo test bench clean install

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: a looser requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH_PIN)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/astroreg demo

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/bench_images.py
	$(PY) benchmarks/bench_simulate.py

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
