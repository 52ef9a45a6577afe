# The front door, for people and CI alike.  Needs only Python 3.11+ and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
SMS_PORT ?= 8025

.PHONY: run test lint format bench capacity loadtest clean help

help:
	@echo "make run    set up, start embedded Redis+Postgres (unless REDIS_URL/DATABASE_URL), seed a demo, serve on $(HOST):$(PORT)"
	@echo "make test   set up and run the whole test suite"
	@echo "make lint   ruff + mypy"
	@echo "make bench  fan-out / contention / throughput benchmark (writes loadtest/results/bench.json)"
	@echo "make capacity  agents one process holds at p99 offer <= 100 ms; memory per connection"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint,loadtest,h3]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/bangban serve --demo --host $(HOST) --port $(PORT) --sms-port $(SMS_PORT)

test: $(STAMP)
	$(BIN)/python -m pytest

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
