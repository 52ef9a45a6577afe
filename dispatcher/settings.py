"""One frozen settings object, read from the environment once at start-up and passed down.

Nothing else in the server reads ``os.environ``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from dispatcher.core.orders import Schedule, default_schedule, parse_schedule
from dispatcher.exceptions import ConfigError


@dataclass(frozen=True, slots=True)
class Settings:
    """Server settings.  Build with :meth:`from_env`; tests use :func:`dataclasses.replace`."""

    redis_url: str | None = None
    """``REDIS_URL``; when ``None`` the CLI starts an embedded Redis under ``data_dir``."""
    database_url: str | None = None
    """``DATABASE_URL``; when ``None`` the CLI starts an embedded Postgres under ``data_dir``."""
    admin_token: str | None = None
    """``BANGBAN_ADMIN_TOKEN``; when ``None`` one is generated on first start and printed."""
    widen_after: float = 600.0
    """``BANGBAN_WIDEN_AFTER``: seconds after filing before an unclaimed order goes to all grids."""
    sweep_interval: float = 0.25
    """``BANGBAN_SWEEP_INTERVAL``: how often each process sweeps for due widenings (≤ 1 s)."""
    reconcile_interval: float = 5.0
    """``BANGBAN_RECONCILE_INTERVAL``: how often Redis is checked against Postgres."""
    data_dir: Path = field(default_factory=lambda: Path(".bangban"))
    """``BANGBAN_DATA_DIR``: where embedded servers keep their data."""
    log_level: str = "info"
    """``BANGBAN_LOG_LEVEL``."""
    claim_memory: float = 86400.0
    """``BANGBAN_CLAIM_MEMORY``: seconds a claim answer is remembered for repeats of its request."""
    send_queue: int = 1024
    """``BANGBAN_SEND_QUEUE``: frames queued for one slow connection before it is dropped."""
    pg_pool_size: int = 10
    """``BANGBAN_PG_POOL``: Postgres connections per process."""
    widen_schedule: str | None = None
    """``BANGBAN_WIDEN_SCHEDULE``: the widening ladder, e.g. ``grid@0,neighbours@300,all@600``.
    Unset: ``grid@0,all@<BANGBAN_WIDEN_AFTER>`` (the seed's rule)."""
    snap_meters: float = 500.0
    """``BANGBAN_SNAP_METERS``: a location this close to a grid but outside all goes to it."""
    metrics_token: str | None = None
    """``BANGBAN_METRICS_TOKEN``: bearer token for ``GET /metrics`` (unset: the admin token)."""
    h3_resolution: int | None = None
    """``BANGBAN_H3_RESOLUTION``: route locations outside every polygon to H3 cells of this
    resolution (grid code ``h3:<cell>``), for pilots without surveyed boundaries."""
    escalate_after: float = 86400.0
    """``BANGBAN_ESCALATE_AFTER``: seconds after filing (or a release) before an order nobody
    claimed escalates to the operators (status ``escalated``)."""
    close_after: float = 7 * 86400.0
    """``BANGBAN_CLOSE_AFTER``: seconds after the reply before an unrated order closes."""
    max_held: int = 5
    """``BANGBAN_MAX_HELD``: open orders (claimed, accepted, awaiting materials) one agent may
    hold at once; a further claim gets ``limit_reached``."""
    catalog_path: Path | None = None
    """``BANGBAN_CATALOG``: the catalogue file seeded on start (unset: the demo catalogue)."""
    calendar_path: Path | None = None
    """``BANGBAN_CALENDAR``: the working-day calendar (unset: the one shipped)."""
    ws_deflate: bool = False
    """``BANGBAN_WS_DEFLATE``: accept permessage-deflate on websockets.  Off by default:
    frames are a few hundred bytes, and a compressing connection keeps zlib state of tens of
    KiB (browsers ask for it; they work uncompressed when the server declines)."""
    gc_freeze_interval: float = 1.0
    """``BANGBAN_GC_FREEZE_INTERVAL``: seconds between rounds that collect what is new and
    freeze the survivors, so that the collector stops re-scanning long-lived connections
    (``0``: leave CPython's collector as it is).  See :mod:`dispatcher.live.gc_policy`."""
    gc_full_every: float = 21600.0
    """``BANGBAN_GC_FULL_EVERY``: seconds between full collections that include frozen objects
    (one pause of about 0.15 ms per connection held; ``0``: never)."""

    strict: bool = False
    """``BANGBAN_STRICT``: refuse to start when a start-up check warns (Redis without
    persistence, or with a ``maxmemory-policy`` that evicts)."""
    namespace: str | None = None
    """``BANGBAN_NAMESPACE``: put into every Redis key and channel name of this deployment, so
    that deployments sharing one Redis (pub/sub ignores the database number) never hear each
    other.  Every process of one deployment must use the same.  Unset: derived from the
    Postgres database name and the Redis database number (:func:`default_namespace`)."""

    @property
    def key_namespace(self) -> str:
        """The namespace in use: :attr:`namespace`, else derived from the two URLs."""
        if self.namespace is not None:
            return self.namespace
        return default_namespace(self.redis_url, self.database_url)

    @property
    def schedule(self) -> Schedule:
        if self.widen_schedule is None:
            return default_schedule(self.widen_after)
        return parse_schedule(self.widen_schedule)

    def __post_init__(self) -> None:
        if self.namespace is not None and not _NAMESPACE.fullmatch(self.namespace):
            raise ConfigError(
                "BANGBAN_NAMESPACE must be 1..64 characters of letters, digits and . _ - @"
            )
        if not 0 < self.widen_after <= 7 * 86400:
            raise ConfigError("BANGBAN_WIDEN_AFTER must be > 0 and at most 7 days (seconds)")
        if not 0 < self.sweep_interval <= 1:
            raise ConfigError("BANGBAN_SWEEP_INTERVAL must be > 0 and at most 1 second")
        if self.pg_pool_size < 2:
            raise ConfigError("BANGBAN_PG_POOL must be at least 2")
        if self.widen_schedule is not None:
            try:
                parse_schedule(self.widen_schedule)
            except ValueError as exc:
                raise ConfigError(f"BANGBAN_WIDEN_SCHEDULE: {exc}") from None
        if self.h3_resolution is not None and not 0 <= self.h3_resolution <= 15:
            raise ConfigError("BANGBAN_H3_RESOLUTION must be 0..15")
        if not 0 < self.escalate_after <= 365 * 86400:
            raise ConfigError("BANGBAN_ESCALATE_AFTER must be > 0 and at most a year (seconds)")
        if not 0 < self.close_after <= 365 * 86400:
            raise ConfigError("BANGBAN_CLOSE_AFTER must be > 0 and at most a year (seconds)")
        if not 1 <= self.max_held <= 1000:
            raise ConfigError("BANGBAN_MAX_HELD must be 1..1000")
        if not (self.gc_freeze_interval == 0 or 0.1 <= self.gc_freeze_interval <= 3600):
            raise ConfigError("BANGBAN_GC_FREEZE_INTERVAL must be 0 (off) or 0.1..3600 seconds")
        if not (self.gc_full_every == 0 or self.gc_full_every >= self.gc_freeze_interval):
            raise ConfigError(
                "BANGBAN_GC_FULL_EVERY must be 0 (never) or at least BANGBAN_GC_FREEZE_INTERVAL"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``env`` (default ``os.environ``).  Raises :class:`ConfigError`."""
        env = os.environ if env is None else env
        base = cls()

        def num(name: str, default: float) -> float:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                return float(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got {raw!r}") from None

        def flag(name: str, default: bool) -> bool:
            raw = (env.get(name) or "").strip().lower()
            if raw == "":
                return default
            if raw in ("1", "true", "yes", "on"):
                return True
            if raw in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{name} must be true or false, got {raw!r}")

        return replace(
            base,
            redis_url=env.get("REDIS_URL") or None,
            database_url=env.get("DATABASE_URL") or None,
            admin_token=env.get("BANGBAN_ADMIN_TOKEN") or None,
            widen_after=num("BANGBAN_WIDEN_AFTER", base.widen_after),
            sweep_interval=num("BANGBAN_SWEEP_INTERVAL", base.sweep_interval),
            reconcile_interval=num("BANGBAN_RECONCILE_INTERVAL", base.reconcile_interval),
            data_dir=Path(env.get("BANGBAN_DATA_DIR") or base.data_dir),
            log_level=(env.get("BANGBAN_LOG_LEVEL") or base.log_level).lower(),
            claim_memory=num("BANGBAN_CLAIM_MEMORY", base.claim_memory),
            send_queue=int(num("BANGBAN_SEND_QUEUE", base.send_queue)),
            pg_pool_size=int(num("BANGBAN_PG_POOL", base.pg_pool_size)),
            widen_schedule=env.get("BANGBAN_WIDEN_SCHEDULE") or None,
            metrics_token=env.get("BANGBAN_METRICS_TOKEN") or None,
            snap_meters=num("BANGBAN_SNAP_METERS", base.snap_meters),
            h3_resolution=(
                int(num("BANGBAN_H3_RESOLUTION", 0)) if env.get("BANGBAN_H3_RESOLUTION") else None
            ),
            escalate_after=num("BANGBAN_ESCALATE_AFTER", base.escalate_after),
            close_after=num("BANGBAN_CLOSE_AFTER", base.close_after),
            max_held=int(num("BANGBAN_MAX_HELD", base.max_held)),
            catalog_path=Path(env["BANGBAN_CATALOG"]) if env.get("BANGBAN_CATALOG") else None,
            calendar_path=Path(env["BANGBAN_CALENDAR"]) if env.get("BANGBAN_CALENDAR") else None,
            ws_deflate=flag("BANGBAN_WS_DEFLATE", base.ws_deflate),
            gc_freeze_interval=num("BANGBAN_GC_FREEZE_INTERVAL", base.gc_freeze_interval),
            gc_full_every=num("BANGBAN_GC_FULL_EVERY", base.gc_full_every),
            namespace=env.get("BANGBAN_NAMESPACE") or None,
            strict=flag("BANGBAN_STRICT", base.strict),
        )


_NAMESPACE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def default_namespace(redis_url: str | None, database_url: str | None) -> str:
    """``<postgres database>.<redis database>``, e.g. ``bangban.0``.

    Two deployments on one Redis differ in one or the other (sharing both would mean sharing
    keys already), and every process of one deployment derives the same name whatever host
    name it reaches the servers by.  Characters outside the allowed set become ``_``.
    """
    db = "0"
    if redis_url:
        parts = urlsplit(redis_url)
        path = parts.path.strip("/")
        query = parse_qs(parts.query)
        if path.isdigit():
            db = path
        elif query.get("db", [""])[0].isdigit():
            db = query["db"][0]
    name = "bangban"
    if database_url:
        parts = urlsplit(database_url)
        query = parse_qs(parts.query)
        name = parts.path.strip("/") or query.get("dbname", [""])[0] or parts.username or name
    return re.sub(r"[^A-Za-z0-9_.@-]", "_", f"{name}.{db}")[-64:]
