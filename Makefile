# The front door, for people and CI alike.  Needs only Python 3.11+ and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format bench capacity loadtest chaos clean help

help:
	@echo "make run    set up, start embedded Redis+Postgres (unless REDIS_URL/DATABASE_URL), seed a demo, serve on $(HOST):$(PORT)"
	@echo "make test   set up and run the whole test suite"
	@echo "make lint   ruff + mypy"
	@echo "make chaos  faults under load against two server processes (CHAOS_WINDOW=6 s, CHAOS_RUNS=3)"
	@echo "make bench  fan-out / contention / throughput benchmark (writes loadtest/results/bench.json)"
	@echo "make capacity  agents one process holds at p99 offer <= 100 ms; memory per connection"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint,loadtest,h3]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/bangban serve --demo --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest

# Two server processes on real Redis and Postgres behind TCP proxies, a bounded load, each fault
# for CHAOS_WINDOW seconds, CHAOS_RUNS times (tests/chaos; a 1 s version runs in `make test`).
CHAOS_WINDOW ?= 6
CHAOS_RUNS ?= 3
chaos: $(STAMP)
	BANGBAN_CHAOS_WINDOW=$(CHAOS_WINDOW) BANGBAN_CHAOS_RUNS=$(CHAOS_RUNS) \
		BANGBAN_CHAOS_OUT=$(or $(CHAOS_OUT),loadtest/results/chaos.jsonl) \
		$(BIN)/python -m pytest tests/chaos -q -s

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m loadtest.bench

capacity: $(STAMP)
	$(BIN)/python -m loadtest.capacity

SCENARIO ?= contention
USERS ?= 200
DURATION ?= 30s
loadtest: $(STAMP)
	$(BIN)/python -m loadtest.run $(SCENARIO) --users $(USERS) --duration $(DURATION)


clean:
	rm -rf $(VENV) .bangban
