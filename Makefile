# The front door, for people and CI alike.  Needs only Python 3.11+ and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
SCENARIO ?= contention
USERS ?= 200
DURATION ?= 30s
SMS_PORT ?= 8025

.PHONY: run test lint format bench capacity loadtest chaos clean help browser

help:
	@echo "make run       set up, start embedded Redis+Postgres (unless REDIS_URL/DATABASE_URL), seed a demo, serve on $(HOST):$(PORT)"
	@echo "               (one server per data folder .bangban; its logs: .bangban/redis/redis.log, .bangban/pg/log)"
	@echo "make test      set up and run the whole test suite (installs chromium + fonts-noto-cjk for the browser tests when root)"
	@echo "make lint      ruff format --check, ruff check, mypy --strict"
	@echo "make format    ruff format and ruff check --fix (rewrites files)"
	@echo "make chaos     faults under load against two server processes (CHAOS_WINDOW=6 s, CHAOS_RUNS=3)"
	@echo "make bench     fan-out / contention / throughput benchmark, us and a bare same-stack server"
	@echo "               (writes loadtest/results/bench.json; BENCH_ARGS='--processes 1,2,4' for more)"
	@echo "make capacity  agents one machine holds at p99 offer <= 100 ms; memory per connection"
	@echo "               (CAPACITY_ARGS='--steps 20000,50000 --processes 3' for more than one server process)"
	@echo "make loadtest  locust scenario SCENARIO=$(SCENARIO) USERS=$(USERS) DURATION=$(DURATION) on a server of its own, then the consistency check"
	@echo "make clean     delete .venv and .bangban (the demo's data, tokens and embedded servers' files)"
	@echo "make browser   install Debian's chromium and a CJK font for the browser tests (as root; make test does it)"
	@echo "make help      this list"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint,loadtest,h3]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/bangban serve --demo --host $(HOST) --port $(PORT) --sms-port $(SMS_PORT)

# Two workers (tests/conftest.py: pytest_xdist_auto_num_workers; one with REDIS_URL or
# DATABASE_URL set); worksteal, so that the few long tests do not leave a worker idle at the end.
test: $(STAMP) browser
	$(BIN)/python -m pytest -n auto --dist worksteal

# The browser tests (tests/test_browser_*.py) drive Debian's Chromium and need a CJK font.
# Installed here when missing and running as root (as CI does); otherwise a message, and those
# tests fail saying the same.  The server itself never needs them, so `run` does not depend
# on this.
BROWSER_PKGS := chromium fonts-noto-cjk
browser:
	@if [ -x /usr/bin/chromium ] && fc-list :lang=zh 2>/dev/null | grep -q CJK; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(BROWSER_PKGS) for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PKGS); \
	else \
		echo "browser tests need $(BROWSER_PKGS): sudo apt-get install -y $(BROWSER_PKGS) (or run make test as root)"; \
	fi

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
	$(BIN)/python -m loadtest.bench $(BENCH_ARGS)

capacity: $(STAMP)
	$(BIN)/python -m loadtest.bench.capacity $(CAPACITY_ARGS)

loadtest: $(STAMP)
	$(BIN)/python -m loadtest.locust $(SCENARIO) --users $(USERS) --duration $(DURATION)


clean:
	@# As root the embedded cluster lives in a folder made for it; .bangban/pg links to it.
	if [ -L .bangban/pg ]; then rm -rf "$$(readlink -f .bangban/pg)"; fi
	rm -rf $(VENV) .bangban
