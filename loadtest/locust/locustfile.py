"""Locust scenarios for Bangban's claim contention path.

Two kinds of user: :class:`AgentUser` holds one agent's websocket (MessagePack frames of
:mod:`dispatcher.live.wire`), grabs offers with a probability after a think time, and reconnects
when dropped; :class:`IntakeUser` files orders through ``POST /v1/orders`` at a fixed rate.
``--scenario`` picks the layout and the behaviour (:mod:`loadtest.locust.scenarios`):
``contention``, ``county`` or ``reconnect-storm``.

When the test starts, the grids, one agent per agent user and an intake token are created
through the admin API (``--admin-token``); grid codes carry a per-run prefix, so a run does not
see an earlier run's orders (except widened ones, which every grid is offered: against a shared
server, expect a snapshot of those on connect).  Every ``won`` answer is appended to
``--won-log`` (JSON lines), which :mod:`loadtest.locust.consistency` checks against Redis and
Postgres afterwards.

Headless, against a running server::

    BANGBAN_ADMIN_TOKEN=... locust -f loadtest/locust/locustfile.py \\
        --headless -u 200 -r 100 -t 30s \\
        --host http://127.0.0.1:8000 \\
        --scenario contention --won-log won.jsonl --csv out/locust --html out/report.html

or let ``python -m loadtest.locust contention --users 200 --duration 30s`` start a server, run
this, and check consistency.  One locust process only (no ``--master``/``--worker``): the
roster is made by the process that runs the users.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import gevent
import gevent.event
from locust import HttpUser, User, events, task
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC
from locust.user.wait_time import constant_throughput

from loadtest.locust._agent import AgentSession, Reporter, WonLog
from loadtest.locust._roster import Roster, RosterError
from loadtest.locust.scenarios import SCENARIOS, Behaviour, Plan, Scenario, parse_range, plan

log = logging.getLogger("bangban.loadtest")

DEFAULT_WON_LOG = "loadtest/results/won.jsonl"
ANSWER_WAIT = 2.0
"""Seconds the stop waits for claim answers in flight (a dropped agent is back within 1 s)."""


@events.init_command_line_parser.add_listener
def _options(parser: LocustArgumentParser) -> None:
    # On the parser itself, not a group: only its own arguments reach locust's web UI (and
    # groups refuse `is_secret`).  An empty value means the scenario's own.
    parser.add_argument(
        "--scenario", choices=sorted(SCENARIOS), default="contention", help="what to run"
    )
    parser.add_argument(
        "--admin-token",
        default="",
        is_secret=True,
        env_var="BANGBAN_ADMIN_TOKEN",
        help="admin token of the server (default: BANGBAN_ADMIN_TOKEN); makes the roster",
    )
    parser.add_argument(
        "--won-log", default=DEFAULT_WON_LOG, help="JSON lines file of every won answer"
    )
    parser.add_argument("--order-rate", default="", help="orders filed per second, in total")
    parser.add_argument("--intake-users", type=int, default=1, help="users filing orders")
    parser.add_argument("--grab-probability", default="", help="chance an agent grabs an offer")
    parser.add_argument("--think-ms", default="", help="think time before grabbing: MIN-MAX ms")
    parser.add_argument("--wave-interval", default="", help="seconds between reconnect waves")
    parser.add_argument("--wave-fraction", default="", help="share of agents dropped per wave")
    parser.add_argument(
        "--grid-prefix",
        default="auto",
        help="prefix of this run's grid codes ('auto': random per run; 'none': no prefix)",
    )


@dataclass
class LoadRun:
    """Everything one test run shares between its users."""

    scenario: Scenario
    behaviour: Behaviour
    order_rate: float
    plan: Plan
    roster: Roster
    won_log: WonLog
    won_file: IO[str]
    started: float  # monotonic; reconnect waves count from here
    quiet: gevent.event.Event = field(default_factory=gevent.event.Event)
    sessions: list[AgentSession] = field(default_factory=list)
    failed: str = ""


_runs: weakref.WeakKeyDictionary[Environment, LoadRun] = weakref.WeakKeyDictionary()


def _option(env: Environment, name: str, default: Any) -> Any:
    options = env.parsed_options
    value = getattr(options, name, None) if options is not None else None
    return default if value in (None, "") else value


def _settings(env: Environment) -> tuple[Scenario, Behaviour, float]:
    """The scenario with the command line's overrides.  Raises ValueError."""
    scenario = SCENARIOS[_option(env, "scenario", "contention")]
    b = scenario.behaviour
    think = _option(env, "think_ms", "")
    behaviour = Behaviour(
        grab_probability=float(_option(env, "grab_probability", b.grab_probability)),
        think_ms=parse_range(think) if think else b.think_ms,
        wave_interval_s=float(_option(env, "wave_interval", b.wave_interval_s)),
        wave_fraction=float(_option(env, "wave_fraction", b.wave_fraction)),
        reconnect_ms=b.reconnect_ms,
    )
    rate = float(_option(env, "order_rate", scenario.order_rate))
    if rate <= 0:
        raise ValueError("--order-rate must be positive")
    return scenario, behaviour, rate


@events.init.add_listener
def _init(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner | WorkerRunner):
        raise SystemExit("loadtest/locust/locustfile.py runs in one process: no --master/--worker")
    try:
        _settings(environment)  # fail at start-up on a bad option
    except ValueError as exc:
        raise SystemExit(f"bad option: {exc}") from None
    IntakeUser.fixed_count = max(int(_option(environment, "intake_users", 1)), 0)


def _prefix(env: Environment) -> str:
    value = str(_option(env, "grid_prefix", "auto"))
    if value == "auto":
        return f"lt{secrets.token_hex(3)}-"
    return "" if value == "none" else value


@events.test_start.add_listener
def _test_start(environment: Environment, **_: Any) -> None:
    scenario, behaviour, rate = _settings(environment)
    runner = environment.runner
    users = runner.target_user_count if runner is not None else 0
    agents = max((users or 0) - IntakeUser.fixed_count, 1)
    layout = plan(scenario, agents, _prefix(environment))
    path = Path(_option(environment, "won_log", DEFAULT_WON_LOG))
    path.parent.mkdir(parents=True, exist_ok=True)
    won_file = path.open("w", encoding="utf-8")
    roster = Roster(environment.host or "", _option(environment, "admin_token", ""), layout)
    run = LoadRun(
        scenario,
        behaviour,
        rate,
        layout,
        roster,
        WonLog(won_file),
        won_file,
        time.monotonic(),
    )
    _runs[environment] = run
    log.info(
        "scenario %s: %s; order rate %.1f/s; grab probability %.2f; think %s ms",
        scenario.name,
        scenario.summary,
        rate,
        behaviour.grab_probability,
        "-".join(map(str, behaviour.think_ms)),
    )
    try:
        if not environment.host:
            raise RosterError("no --host given")
        roster.setup(agents)
    except RosterError as exc:
        run.failed = str(exc)
        log.error("roster setup failed: %s", exc)
        environment.process_exit_code = 2
        if runner is not None:
            gevent.spawn(runner.quit)
    run.started = time.monotonic()


@events.test_stopping.add_listener
def _test_stopping(environment: Environment, **_: Any) -> None:
    # Before locust kills the users: stop claiming and let the answers in flight arrive, so
    # the won log has every win (a claim cut off here would be "claimed but not seen").
    run = _runs.get(environment)
    if run is None:
        return
    run.quiet.set()
    deadline = time.monotonic() + ANSWER_WAIT
    while any(s.pending for s in run.sessions) and time.monotonic() < deadline:
        gevent.sleep(0.05)


@events.test_stop.add_listener
def _test_stop(environment: Environment, **_: Any) -> None:
    run = _runs.pop(environment, None)
    if run is None:
        return
    run.won_file.close()
    run.roster.close()
    log.info("won answers logged: %d", run.won_log.count)


@events.quitting.add_listener
def _final_csv(environment: Environment, **_: Any) -> None:
    # Locust rewrites its CSV files every CSV_STATS_INTERVAL_SEC, not at exit: one more turn
    # of its writer makes them hold the final figures, as the summary and the HTML report do.
    if getattr(environment.parsed_options, "csv_prefix", None):
        gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.25)


def _run_of(user: User) -> LoadRun | None:
    """The user's run, or None when its setup failed (the runner is quitting then)."""
    run = _runs.get(user.environment)
    return None if run is None or run.failed else run


class AgentUser(User):
    """One agent on its websocket: grabs offers, reconnects when dropped."""

    weight = 1

    def wait_time(self) -> float:
        return 0  # supervise() sleeps until something is due

    session: AgentSession | None = None

    def on_start(self) -> None:
        # A user that cannot start stops in its task: StopUser from on_start is logged as an
        # error with a traceback per user.
        run = _run_of(self)
        if run is None:
            return
        try:
            agent = run.roster.take_agent()
        except RosterError as exc:
            Reporter(self.environment.events).fail("agent setup", str(exc))
            return
        self.session = AgentSession(
            url=self.host or "",
            token=agent.token,
            agent_id=agent.id,
            index=agent.index,
            behaviour=run.behaviour,
            reporter=Reporter(self.environment.events),
            won_log=run.won_log,
            waves_from=run.started,
            quiet=run.quiet,
        )
        run.sessions.append(self.session)
        self.session.connect()

    @task
    def supervise(self) -> None:
        if self.session is None:
            raise StopUser()
        self.session.supervise()

    def on_stop(self) -> None:
        if self.session is not None:
            self.session.close()
            run = _runs.get(self.environment)
            if run is not None and self.session in run.sessions:
                run.sessions.remove(self.session)


class IntakeUser(HttpUser):
    """A platform front end filing orders at ``--order-rate`` (shared by ``--intake-users``)."""

    fixed_count = 1
    load: LoadRun | None = None  # not `run`: that is User's own method
    pace: Callable[[User], float] = constant_throughput(1)

    def on_start(self) -> None:
        self.load = _run_of(self)
        self.rng = random.Random()
        self.filed = 0
        if self.load is not None:
            self.pace = constant_throughput(self.load.order_rate / max(self.fixed_count, 1))
            self.client.headers["Authorization"] = f"Bearer {self.load.roster.intake_token}"

    def wait_time(self) -> float:
        return self.pace(self)

    @task
    def file_order(self) -> None:
        if self.load is None:
            raise StopUser()
        if self.load.quiet.is_set():
            return  # the test is stopping
        self.filed += 1
        body = {
            "grid": self.load.plan.order_grid(self.rng),
            "text": f"压测工单 {self.filed}",
            "applicant": {"name": "压测申请人", "phone": "13700000000"},
        }
        with self.client.post(
            "/v1/orders", json=body, name="POST /v1/orders", catch_response=True
        ) as response:
            if response.status_code != 201:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
