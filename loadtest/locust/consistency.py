"""After a load test: did every claim end the way the protocol promises?

Given the run's won log (JSON lines from the locustfile: ``order_id``, ``agent_id``,
``request_id``, ``at``), Redis and Postgres, :func:`check` verifies:

- at most one winner per order, in the won log and in Postgres (its ``claimed`` events), unless
  the winner released the order first (servers with the after-the-grab lifecycle);
- every ``won`` a client saw is in Postgres: a ``claimed`` event by that agent, and the order
  still names it unless it was released or reassigned since;
- Redis and Postgres agree on ``status``, ``claimed_by`` and ``version`` for every order
  Redis still has (``bb:{o:<id>}``);
- no order is left both unclaimed and unoffered: an open order in Postgres is in Redis with an
  open status, and one that is ``offered`` (not yet widened) is on the widening schedule
  (``w:<id>`` in ``bb:due``; with the widening ladder: while it has a next step), so it will reach
  more grids if nobody in its own claims it.

Run it on a quiet system (after locust has stopped): a claim in flight is briefly in Redis and
not yet in Postgres.  ``settle`` re-reads for that long while anything disagrees.

    python -m loadtest.locust.consistency WON_LOG [--redis-url URL] [--database-url URL]
                                          [--settle S]

reads ``REDIS_URL`` / ``DATABASE_URL`` when the options are not given, prints a verdict with
counts and exits 1 on any violation (2 when it could not check).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from dispatcher.board import scripts as rs
from dispatcher.settings import default_namespace

OPEN = frozenset({"offered", "widened"})

# Kinds of violation, as reported.
TWO_WINNERS_LOG = "two winners in the won log"
TWO_WINNERS_PG = "two winners in postgres"
WON_NOT_IN_PG = "won missing from postgres"
DISAGREE = "redis disagrees with postgres"
NOT_IN_PG = "redis order unknown to postgres"
OPEN_NOT_IN_REDIS = "open order missing from redis"
NOT_SCHEDULED = "offered order not scheduled to widen"
BAD_LOG_LINE = "unreadable won log line"

EXAMPLES = 10
"""Violations of one kind printed by :meth:`Report.verdict` (all are in ``violations``)."""


@dataclass(frozen=True, slots=True)
class Violation:
    kind: str
    order_id: int | None
    detail: str


@dataclass
class Report:
    """What :func:`check` found.  ``ok`` when ``violations`` is empty."""

    wins_logged: int = 0
    orders_won_in_log: int = 0
    orders: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    redis_orders: int = 0
    scheduled: int = 0
    claimed_not_seen: int = 0
    """Claims in Postgres with no ``won`` in the log (an answer cut off, or a claim made by a
    client other than the load test's): not a fault by itself."""
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def kinds(self) -> Counter[str]:
        return Counter(v.kind for v in self.violations)

    def verdict(self) -> str:
        statuses = ", ".join(f"{k} {n}" for k, n in sorted(self.by_status.items())) or "none"
        lines = [
            f"consistency: {'PASS' if self.ok else 'FAIL'}"
            f"  orders={self.orders} ({statuses})"
            f"  wins logged={self.wins_logged} (orders {self.orders_won_in_log})"
            f"  claimed but not seen won={self.claimed_not_seen}"
            f"  redis orders={self.redis_orders}  scheduled to widen={self.scheduled}"
            f"  violations={len(self.violations)}"
        ]
        shown: Counter[str] = Counter()
        for v in self.violations:
            shown[v.kind] += 1
            if shown[v.kind] <= EXAMPLES:
                lines.append(f"  {v.kind}: order {v.order_id}: {v.detail}")
        for kind, count in self.kinds().items():
            if count > EXAMPLES:
                lines.append(f"  {kind}: … {count - EXAMPLES} more")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "wins_logged": self.wins_logged,
            "orders_won_in_log": self.orders_won_in_log,
            "orders": self.orders,
            "by_status": self.by_status,
            "redis_orders": self.redis_orders,
            "scheduled": self.scheduled,
            "claimed_not_seen": self.claimed_not_seen,
            "violations": dict(self.kinds()),
        }


def read_won_log(path: Path) -> tuple[list[dict[str, Any]], list[Violation]]:
    """The won log's records, and a violation per line that is not a valid record."""
    records: list[dict[str, Any]] = []
    bad: list[Violation] = []
    if not path.exists():
        return records, [Violation(BAD_LOG_LINE, None, f"{path} does not exist")]
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                int(record["order_id"]), int(record["agent_id"])
            except (ValueError, KeyError, TypeError):
                bad.append(Violation(BAD_LOG_LINE, None, f"line {number}: {line.strip()[:80]!r}"))
                continue
            records.append(record)
    return records, bad


@dataclass(frozen=True, slots=True)
class _Row:
    status: str
    claimed_by: int | None
    version: int
    scheduled: bool
    """Must be on the widening schedule: ``offered`` with a next step still to come."""


# Events that decide who holds an order.  v1 has only `claimed`; later servers let an agent
# release an order (it is offered again and may be won again) and operators reassign it.
_HOLDER_EVENTS = ("claimed", "released", "reassigned", "assigned")


async def _postgres(database_url: str) -> tuple[dict[int, _Row], dict[int, list[tuple[str, str]]]]:
    """Every order, and each order's holder events (kind, actor) in order."""
    conn = await asyncpg.connect(database_url, timeout=30)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            # Servers with the widening ladder stop scheduling an order once it reaches every
            # grid (next_step_at NULL); v1 schedules every `offered` order.
            ladder = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = 'orders'"
                " AND column_name = 'next_step_at')"
            )
            next_step = "next_step_at IS NOT NULL" if ladder else "true"
            rows = await conn.fetch(
                f"SELECT id, status, claimed_by, version, {next_step} AS stepping FROM orders"
            )
            events = await conn.fetch(
                "SELECT order_id, kind, actor FROM order_events WHERE kind = ANY($1::text[])"
                " ORDER BY order_id, id",
                list(_HOLDER_EVENTS),
            )
    finally:
        await conn.close()
    orders = {
        r["id"]: _Row(
            r["status"], r["claimed_by"], r["version"], r["status"] == "offered" and r["stepping"]
        )
        for r in rows
    }
    trail: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for e in events:
        trail[e["order_id"]].append((e["kind"], e["actor"]))
    return orders, trail


async def _redis(redis_url: str, keys: rs.Keys) -> tuple[dict[int, dict[str, str]], set[int]]:
    """Every order hash Redis has (status, claimed_by, version), and the widening schedule."""
    order_key = re.compile("^" + re.escape(keys.prefix) + r"\{o:(\d+)\}$")
    client = aioredis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=30)
    try:
        ids: list[int] = []
        async for key in client.scan_iter(match=keys.prefix + "{o:*", count=1000):
            m = order_key.match(key)
            if m:
                ids.append(int(m.group(1)))
        hashes: dict[int, dict[str, str]] = {}
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            async with client.pipeline(transaction=False) as pipe:
                for oid in chunk:
                    pipe.hmget(keys.order(oid), "status", "claimed_by", "version")
                values = await pipe.execute()
            for oid, (status, claimed_by, version) in zip(chunk, values, strict=True):
                if status is not None:  # expired between SCAN and HMGET
                    hashes[oid] = {
                        "status": status,
                        "claimed_by": claimed_by or "",
                        "version": version or "",
                    }
        members: list[str] = await client.zrange(keys.of(rs.DUE), 0, -1)  # type: ignore[assignment]
        entries = [rs.due_entry(m) for m in members]
        due = {order_id for kind, order_id in entries if kind == rs.WIDEN}
    finally:
        await client.aclose()
    return hashes, due


async def _check_once(
    records: list[dict[str, Any]],
    log_faults: list[Violation],
    redis_url: str,
    database_url: str,
    keys: rs.Keys,
) -> Report:
    orders, trail = await _postgres(database_url)
    hashes, due = await _redis(redis_url, keys)
    report = Report(violations=list(log_faults))
    add = report.violations.append

    # Postgres: a second `claimed` only after the first winner released the order.
    claimed: dict[int, set[int]] = defaultdict(set)  # order -> agents with a claimed event
    moved: set[int] = set()  # orders whose holder changed other than by one claim
    for oid, events in sorted(trail.items()):
        holder: str | None = None
        for kind, actor in events:
            if kind == "claimed":
                if holder is not None:
                    add(
                        Violation(TWO_WINNERS_PG, oid, f"{actor} claimed it while {holder} held it")
                    )
                holder = actor
                agent = actor.removeprefix("agent:")
                if agent.isdigit():
                    claimed[oid].add(int(agent))
            else:
                moved.add(oid)
                holder = None if kind == "released" else actor

    # The won log: one winner per order (unless the first released it), each one recorded.
    winners: dict[int, set[int]] = defaultdict(set)
    for r in records:
        winners[int(r["order_id"])].add(int(r["agent_id"]))
    report.wins_logged = len(records)
    report.orders_won_in_log = len(winners)
    for oid, agents in sorted(winners.items()):
        if len(agents) > 1 and oid not in moved:
            add(Violation(TWO_WINNERS_LOG, oid, f"agents {sorted(agents)} were each told won"))
        row = orders.get(oid)
        for agent in sorted(agents):
            if row is None:
                add(Violation(WON_NOT_IN_PG, oid, f"agent {agent} won an order postgres lacks"))
            elif agent not in claimed[oid] or (oid not in moved and row.claimed_by != agent):
                add(
                    Violation(
                        WON_NOT_IN_PG,
                        oid,
                        f"agent {agent} was told won; postgres has status={row.status}"
                        f" claimed_by={row.claimed_by} claimed events by {sorted(claimed[oid])}",
                    )
                )

    report.orders = len(orders)
    report.by_status = dict(Counter(row.status for row in orders.values()))
    report.claimed_not_seen = sum(
        1 for oid, agents in claimed.items() for agent in agents if agent not in winners[oid]
    )
    report.redis_orders = len(hashes)
    report.scheduled = len(due)

    # Redis against Postgres, for every order Redis has.
    for oid, h in sorted(hashes.items()):
        row = orders.get(oid)
        if row is None:
            add(Violation(NOT_IN_PG, oid, f"redis has {h}"))
            continue
        want = {
            "status": row.status,
            "claimed_by": "" if row.claimed_by is None else str(row.claimed_by),
            "version": str(row.version),
        }
        if h != want:
            add(Violation(DISAGREE, oid, f"redis {h} != postgres {want}"))

    # Open orders: offered somewhere, and on the widening schedule until they widen.
    for oid, row in sorted(orders.items()):
        if row.status not in OPEN:
            continue
        if oid not in hashes:
            add(Violation(OPEN_NOT_IN_REDIS, oid, f"postgres: {row.status}; redis: no key"))
        elif row.scheduled and oid not in due:
            add(Violation(NOT_SCHEDULED, oid, f"not in {keys.of(rs.DUE)} as a widening"))
    return report


async def check(
    won_log_path: str | Path,
    redis_url: str,
    database_url: str,
    *,
    settle: float = 0.0,
    namespace: str | None = None,
) -> Report:
    """Check one run (see the module docstring).  Never raises for a violation: they are in
    the report.  Raises the drivers' errors when Redis or Postgres cannot be read.

    ``settle`` (seconds): while violations remain, read Redis and Postgres again for up to
    this long (for a system that was still finishing claims when the check started).
    ``namespace``: the server's ``BANGBAN_NAMESPACE`` (default: derived as the server does).
    """
    keys = rs.Keys(default_namespace(redis_url, database_url) if namespace is None else namespace)
    records, log_faults = read_won_log(Path(won_log_path))
    deadline = time.monotonic() + settle
    while True:
        report = await _check_once(records, log_faults, redis_url, database_url, keys)
        if report.ok or time.monotonic() >= deadline:
            return report
        await asyncio.sleep(0.25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.locust.consistency", description=__doc__.splitlines()[0]
    )
    parser.add_argument("won_log", type=Path, help="the run's won log (JSON lines)")
    parser.add_argument("--redis-url", help="default: REDIS_URL")
    parser.add_argument("--database-url", help="default: DATABASE_URL")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to re-read (2)")
    parser.add_argument("--json", type=Path, help="also write the counts here")
    args = parser.parse_args(argv)

    from dispatcher.settings import Settings

    env = Settings.from_env()
    redis_url = args.redis_url or env.redis_url
    database_url = args.database_url or env.database_url
    if not redis_url or not database_url:
        parser.error("give --redis-url and --database-url (or set REDIS_URL and DATABASE_URL)")
    try:
        report = asyncio.run(
            check(
                args.won_log,
                redis_url,
                database_url,
                settle=args.settle,
                namespace=env.namespace,
            )
        )
    except (OSError, asyncpg.PostgresError, RedisError) as exc:
        print(f"consistency: could not check: {exc}", file=sys.stderr)
        return 2
    print(report.verdict())
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
