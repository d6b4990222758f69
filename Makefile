# deepms: `make train` trains the default task on embedded defaults; `make test` runs the tests.
# Both build the virtual environment first when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
SHARED_DATA := $(abspath ../shared/data)
# Resolve data sets from the local mirror when there is one (files are checked against sha256).
ifneq ($(wildcard $(SHARED_DATA)/SHA256SUMS),)
export DEEPMS_DATA_MIRROR ?= $(SHARED_DATA)
endif
MLFLOW_DB ?= sqlite:///$(CURDIR)/mlruns/mlflow.db

.PHONY: setup train test lint format bench ui clean postgres server

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --upgrade pip
	$(VENV)/bin/pip install -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

train: setup  ## train pdeep on CPU with the defaults; extra overrides via ARGS="key=value ..."
	$(PY) train.py $(ARGS)

test: setup
	$(PY) -m pytest -q $(ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests train.py experiments envs
	$(VENV)/bin/ruff format --check src tests train.py experiments envs

format: setup
	$(VENV)/bin/ruff format src tests train.py experiments envs
	$(VENV)/bin/ruff check --fix src tests train.py experiments envs

bench: setup  ## the default study suite (about 50 min, one core); ARGS="<study> ..." or "--list"; see experiments/README.md
	$(PY) experiments/bench.py $(ARGS)

ui: setup  ## MLflow UI on http://127.0.0.1:5000 over the local store
	mkdir -p mlruns/artifacts
	@echo "MLflow 3 opens its GenAI workspace: click 'Model training' (top left) once, or open"
	@echo "http://127.0.0.1:5000/#/experiments/<id>/runs?workflowType=machine_learning"
	$(VENV)/bin/mlflow ui --backend-store-uri $(MLFLOW_DB) \
		--default-artifact-root $(CURDIR)/mlruns/artifacts --host 127.0.0.1 --port 5000

postgres: setup  ## local PostgreSQL on 127.0.0.1:5433, data in .state/postgres (ARGS="stop", "status", "--port N")
	$(PY) -m deepms.tracking.postgres $(or $(ARGS),start)

HOST ?= 127.0.0.1
PORT ?= 5000
server: setup  ## team MLflow server: PostgreSQL backend, artifacts in .state/, on $(HOST):$(PORT)
	$(PY) -m deepms.tracking.postgres start
	$(VENV)/bin/mlflow server --host $(HOST) --port $(PORT) \
		--backend-store-uri postgresql://deepms@127.0.0.1:5433/mlflow \
		--artifacts-destination $(CURDIR)/.state/mlflow-artifacts

clean:
	rm -rf outputs .pytest_cache .ruff_cache

.PHONY: peers
PEER_ENVS ?= pyprophet mokapot biosaur2
peers:  ## peer environments (dia: PyProphet 3, mokapot 0.10; deepiso: Biosaur2) under .venv-peers/
	PYTHON=$(PYTHON) bash envs/setup.sh $(PEER_ENVS)
