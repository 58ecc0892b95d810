# One command per job. `make test` and `make demo` set up everything on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
REQS   := requirements/runtime.txt requirements/training.txt requirements/dev.txt

# DDS stays on this machine, on a domain of its own per run.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= $(shell $(PYTHON) -c 'import os; print(os.getpid() % 90 + 10)')
export RMW_IMPLEMENTATION ?= rmw_fastrtps_cpp

.PHONY: install test test-unit lint demo train bench bench-quick params clean

install: $(STAMP)

$(STAMP): $(REQS) setup.py training/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -r requirements/runtime.txt -r requirements/training.txt -r requirements/dev.txt
	$(BIN)/pip install --disable-pip-version-check --no-deps -e . -e training
	touch $(STAMP)

test: install
	$(BIN)/ruff check plan_ga_ros training bench test launch scripts
	$(BIN)/python -m pytest -p no:cacheprovider test training/tests

test-unit: install  # the pure tests only (no DDS, no subprocesses): seconds
	$(BIN)/python -m pytest -p no:cacheprovider -m unit test training/tests

lint: install
	$(BIN)/ruff check plan_ga_ros training bench test launch scripts

demo: install
	$(BIN)/plan_ga_demo $(DEMO_ARGS)

train: install
	$(BIN)/plan-ga-train pipeline --config training/configs/robust.yaml --install $(TRAIN_ARGS)

bench: install
	$(BIN)/python bench/run_all.py

bench-quick: install
	$(BIN)/python bench/run_all.py --quick

params: install
	$(BIN)/python scripts/gen_params.py

clean:
	rm -rf $(VENV) build install log .pytest_cache
