"""The run's roster, made through the admin API: grids, one agent per agent user, an intake token.

Used from locust's ``test_start`` hook (gevent: ``requests`` cooperates once locust has
monkey-patched the standard library).  Agents the hook prepared are handed out in order by
:meth:`Roster.take_agent`; a user beyond those (a web-UI run that adds users) gets an agent
made on the spot, in the same layout.
"""

from __future__ import annotations

import collections
import itertools
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import gevent.pool
import requests
from requests.adapters import HTTPAdapter

from loadtest.locust.scenarios import GridSpec, Plan

log = logging.getLogger("bangban.loadtest")

CONCURRENCY = 20
"""Admin requests in flight while setting up (the admin API is not what is being measured)."""


T = TypeVar("T")
R = TypeVar("R")


def agent_name(plan: Plan, index: int) -> str:
    """A load-test agent's name: the run's prefix names everything a run makes."""
    return f"{plan.prefix}压测代办员{index}"


def intake_token_name(plan: Plan) -> str:
    return f"{plan.prefix}loadtest {plan.scenario.name}"


class RosterError(Exception):
    """The admin API refused or failed a setup request."""


@dataclass(frozen=True, slots=True)
class Agent:
    index: int
    id: int
    token: str
    grid: str


class Roster:
    """Grids, agents and an intake token for one run on the server at ``host``."""

    def __init__(self, host: str, admin_token: str, plan: Plan, *, timeout: float = 15) -> None:
        self.host = host.rstrip("/")
        self.plan = plan
        self.timeout = timeout
        self.intake_token = ""
        self._http = requests.Session()
        self._http.headers["Authorization"] = f"Bearer {admin_token}"
        adapter = HTTPAdapter(pool_maxsize=CONCURRENCY)
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)
        self._ready: collections.deque[Agent] = collections.deque()
        self._next_index = itertools.count()
        self._grids: set[str] = set()
        # Phones are unique per server: a per-run stem plus the agent's index.
        self._phone_stem = f"17{random.randrange(100_000):05d}"

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            r = self._http.post(self.host + path, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RosterError(f"POST {path}: {exc}") from exc
        if r.status_code not in (200, 201):
            raise RosterError(f"POST {path}: HTTP {r.status_code} {r.text[:300]}")
        out: dict[str, Any] = r.json()
        return out

    def setup(self, agents: int) -> None:
        """Create the plan's grids and an intake token, and prepare ``agents`` agents.

        Raises :class:`RosterError`; whatever was created before stays (grids are upserts).
        """
        # One request alone first: a wrong token or host fails here, once.
        self.intake_token = self._post(
            "/v1/admin/tokens", {"kind": "intake", "name": intake_token_name(self.plan)}
        )["token"]
        _each(self._make_grid, self.plan.grids)
        indexes = [next(self._next_index) for _ in range(agents)]
        made = sorted(_each(self._make_agent, indexes), key=lambda a: a.index)
        self._ready.extend(made)
        log.info(
            "roster ready scenario=%s grids=%d agents=%d order_grids=%d",
            self.plan.scenario.name,
            len(self.plan.grids),
            len(made),
            len(self.plan.order_grids),
        )

    def _make_grid(self, spec: GridSpec) -> None:
        self._post("/v1/admin/grids", {"code": spec.code, "name": spec.name, "level": spec.level})
        self._grids.add(spec.code)

    def _make_agent(self, index: int) -> Agent:
        spec = self.plan.agent_grid(index)
        if spec.code not in self._grids:
            self._make_grid(spec)  # an agent beyond the plan, in a grid the plan did not need
        grid = spec.code
        body = {"name": agent_name(self.plan, index), "phone": f"{self._phone_stem}{index:04d}"}
        for _attempt in range(3):
            try:
                made = self._post("/v1/admin/agents", {**body, "grids": [grid]})
                return Agent(index, int(made["id"]), str(made["token"]), grid)
            except RosterError as exc:
                if "duplicate_phone" not in str(exc):
                    raise
                # An earlier run on this server drew the same stem: draw another number.
                body["phone"] = f"16{random.randrange(10**9):09d}"
        raise RosterError(f"no free phone number for agent {index}")

    def take_agent(self) -> Agent:
        """The next prepared agent, or a new one.  Raises :class:`RosterError`."""
        if self._ready:
            return self._ready.popleft()
        return self._make_agent(next(self._next_index))


def _each(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``fn`` over ``items``, CONCURRENCY at a time.  Raises the first :class:`RosterError`
    once all have run (so gevent does not print a traceback per failed greenlet)."""
    errors: list[RosterError] = []

    def attempt(item: T) -> R | None:
        try:
            return fn(item)
        except RosterError as exc:
            errors.append(exc)
            return None

    done = list(gevent.pool.Pool(CONCURRENCY).imap_unordered(attempt, items))
    if errors:
        raise errors[0]
    return [r for r in done if r is not None]
