"""One frozen settings object, read from the environment once at start-up and passed down.

Nothing else in the server reads ``os.environ``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from dispatcher.core import sms
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
    log_file: Path | None = None
    """``BANGBAN_LOG_FILE``: also append the server's log lines to this file (unset: the
    terminal only).  Embedded servers log to ``<data_dir>/redis/redis.log`` and
    ``<data_dir>/pg/log`` whatever this is."""
    claim_memory: float = 86400.0
    """``BANGBAN_CLAIM_MEMORY``: seconds a closed order stays in Redis after its last change,
    with the claim answers remembered for repeats of a request (an open order keeps them)."""
    send_queue: int = 1024
    """``BANGBAN_SEND_QUEUE``: frames queued for one slow connection before it is dropped."""
    pg_pool_size: int = 10
    """``BANGBAN_PG_POOL``: Postgres connections per process."""
    # --- hardening (issue 10) ---------------------------------------------------------------
    send_queue_bytes: int = 4 * 1024 * 1024
    """``BANGBAN_SEND_QUEUE_BYTES``: bytes queued for one slow connection before it is dropped."""
    send_timeout: float = 10.0
    """``BANGBAN_SEND_TIMEOUT``: seconds one websocket write may stay blocked (the client does
    not read) before the connection is dropped with 1013."""
    filing_rate: int = 600
    """``BANGBAN_FILING_RATE``: orders one intake token may file per minute, across every
    process (``0``: no limit); past it ``429 rate_limited`` with ``Retry-After``."""
    grid_open_cap: int = 1000
    """``BANGBAN_GRID_OPEN_CAP``: open (offered, widened) orders one grid may have; an order
    filed past it goes straight to the operators (``escalated``) instead of flooding the
    agents (``0``: no cap)."""
    tracking_ttl: float = 30 * 86400.0
    """``BANGBAN_TRACKING_TTL``: seconds after its order closed (or was cancelled) that a
    tracking token stops working."""
    claim_rate: int = 120
    """``BANGBAN_CLAIM_RATE``: claims one agent may make per minute on one process (``0``: no
    limit); past it the claim is refused ``rate_limited``, counted in
    ``bangban_claims_rate_limited_total``."""
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
    ws_ping_interval: float = 20.0
    """``BANGBAN_WS_PING_INTERVAL``: seconds between a websocket's keepalive pings (0: none)."""
    gc_freeze_interval: float = 1.0
    """``BANGBAN_GC_FREEZE_INTERVAL``: seconds between rounds that collect what is new and
    freeze the survivors, so that the collector stops re-scanning long-lived connections
    (``0``: leave CPython's collector as it is).  See :mod:`dispatcher.live.gc_policy`."""
    gc_full_every: float = 21600.0
    """``BANGBAN_GC_FULL_EVERY``: seconds between full collections that include frozen objects
    (one pause of about 0.15 ms per connection held; ``0``: never)."""
    followup_share: Decimal = Decimal("0.1")
    """``BANGBAN_FOLLOWUP_SHARE``: share of a month's closed orders drawn for follow-up calls
    (回访), 0.001..1; at least one order per agent who closed any is drawn regardless."""
    inactive_days: int = 30
    """``BANGBAN_INACTIVE_DAYS``: an agent with nothing handled for this many days is listed
    as inactive (the seed's list for dismissal)."""
    fast_claim_ms: int = 300
    """``BANGBAN_FAST_CLAIM_MS``: a claim this soon after its offer reached the connection is
    flagged ``too_fast`` (faster than a person reads and taps)."""
    regular_cv: float = 0.1
    """``BANGBAN_REGULAR_CV``: reaction times with a coefficient of variation below this are
    flagged ``machine_regular`` ..."""
    regular_min_claims: int = 10
    """``BANGBAN_REGULAR_MIN_CLAIMS``: ... over at least this many timed claims."""
    min_reaction_ms: int = 0
    """``BANGBAN_MIN_REACTION_MS``: claims faster than this are ignored and answered
    ``too_fast`` (``0``: the rule is off; the flags are reported either way)."""
    fairplay_flush: float = 1.0
    """``BANGBAN_FAIRPLAY_FLUSH``: seconds between writes of offer deliveries and claim
    timings to Postgres."""

    # --- SMS (issue 13; docs/SMS.md) -------------------------------------------------
    sms_url: str | None = None
    """``BANGBAN_SMS_URL``: the gateway texts are POSTed to (unset: texts go to the log and the
    operators' console, ``GET /v1/admin/sms/messages``)."""
    sms_secret: str | None = None
    """``BANGBAN_SMS_SECRET``: HMAC key signing texts out and checking texts and receipts in."""
    sms_offers: str = "offline"
    """``BANGBAN_SMS_OFFERS``: text offers to agents not connected (``offline``), to every agent
    (``all``) or to none (``off``)."""
    sms_agent_daily: int = 30
    """``BANGBAN_SMS_AGENT_DAILY``: offer texts one agent gets per local day at most."""
    sms_daily: int = 10000
    """``BANGBAN_SMS_DAILY``: offer texts sent per local day at most, in all."""
    sms_quiet: str = ""
    """``BANGBAN_SMS_QUIET``: local quiet hours for texts, e.g. ``22:00-07:00`` (unset: none)."""
    sms_quiet_mode: str = "defer"
    """``BANGBAN_SMS_QUIET_MODE``: ``defer`` (send when the quiet hours end, if the order is
    still open) or ``skip`` (not sent; noted in the delivery log)."""
    sms_utc_offset: float = 8.0
    """``BANGBAN_SMS_UTC_OFFSET``: hours from UTC of the local day (caps, quiet hours, dates)."""
    sms_widen_grids: int = 10
    """``BANGBAN_SMS_WIDEN_GRIDS``: a widening to all grids texts the offline agents of at most
    this many grids nearest the order's (rings of neighbours); ``0``: every agent."""
    sms_applicant: str = "accepted,materials,replied,rate"
    """``BANGBAN_SMS_APPLICANT``: the applicant's texts that are on (any of accepted, materials,
    replied, rate; empty: none)."""
    public_url: str = "http://127.0.0.1:8000"
    """``BANGBAN_PUBLIC_URL``: where people open the apps; links in texts start here."""
    sms_max_attempts: int = 6
    """``BANGBAN_SMS_MAX_ATTEMPTS``: tries of one text (5xx, 429, timeouts) before ``failed``."""
    sms_retry_base: float = 2.0
    """``BANGBAN_SMS_RETRY_BASE``: seconds before the first retry; doubles each time, jittered."""
    sms_timeout: float = 5.0
    """``BANGBAN_SMS_TIMEOUT``: seconds to wait for the gateway's answer to one text."""
    sms_interval: float = 0.5
    """``BANGBAN_SMS_INTERVAL``: how often each process looks for texts to expand and send."""
    presence_ttl: float = 15.0
    """``BANGBAN_PRESENCE_TTL``: seconds a process's list of connected agents outlives it."""

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
        self._check_sms()
        if self.namespace is not None and not _NAMESPACE.fullmatch(self.namespace):
            raise ConfigError(
                "BANGBAN_NAMESPACE must be 1..64 characters of letters, digits and . _ - @"
            )
        if not 0 < self.widen_after <= 7 * 86400:
            raise ConfigError("BANGBAN_WIDEN_AFTER must be > 0 and at most 7 days (seconds)")
        if not 0 < self.sweep_interval <= 1:
            raise ConfigError("BANGBAN_SWEEP_INTERVAL must be > 0 and at most 1 second")
        if self.send_queue < 16 or self.send_queue_bytes < 64 * 1024:
            raise ConfigError("BANGBAN_SEND_QUEUE must be ≥ 16, BANGBAN_SEND_QUEUE_BYTES ≥ 65536")
        if self.filing_rate < 0 or self.grid_open_cap < 0 or self.claim_rate < 0:
            raise ConfigError(
                "BANGBAN_FILING_RATE, BANGBAN_GRID_OPEN_CAP and BANGBAN_CLAIM_RATE must be ≥ 0"
            )
        if not 0 < self.tracking_ttl <= 3650 * 86400:
            raise ConfigError("BANGBAN_TRACKING_TTL must be > 0 and at most ten years (seconds)")
        if not 0 < self.send_timeout <= 3600:
            raise ConfigError("BANGBAN_SEND_TIMEOUT must be > 0 and at most 3600 seconds")
        if self.ws_ping_interval != 0 and not 1 <= self.ws_ping_interval <= 3600:
            raise ConfigError("BANGBAN_WS_PING_INTERVAL must be 0 (no pings) or 1..3600 seconds")
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

        share = self.followup_share
        if not Decimal("0.001") <= share <= 1 or share != share.quantize(Decimal("0.0001")):
            raise ConfigError("BANGBAN_FOLLOWUP_SHARE must be 0.001..1, at most four places")
        if not 1 <= self.inactive_days <= 3650:
            raise ConfigError("BANGBAN_INACTIVE_DAYS must be 1..3650")
        if not 0 <= self.fast_claim_ms <= 60_000 or not 0 <= self.min_reaction_ms <= 60_000:
            raise ConfigError("BANGBAN_FAST_CLAIM_MS and BANGBAN_MIN_REACTION_MS must be 0..60000")
        if not 0 <= self.regular_cv <= 1 or not 2 <= self.regular_min_claims <= 10_000:
            raise ConfigError(
                "BANGBAN_REGULAR_CV must be 0..1, BANGBAN_REGULAR_MIN_CLAIMS 2..10000"
            )
        if not 0.05 <= self.fairplay_flush <= 60:
            raise ConfigError("BANGBAN_FAIRPLAY_FLUSH must be 0.05..60 seconds")

    def _check_sms(self) -> None:
        if self.sms_url and not self.sms_secret:
            raise ConfigError("BANGBAN_SMS_URL needs BANGBAN_SMS_SECRET (texts are signed)")
        if self.sms_offers not in ("offline", "all", "off"):
            raise ConfigError("BANGBAN_SMS_OFFERS must be offline, all or off")
        if self.sms_quiet_mode not in ("defer", "skip"):
            raise ConfigError("BANGBAN_SMS_QUIET_MODE must be defer or skip")
        try:
            sms.parse_quiet(self.sms_quiet)
        except ValueError as exc:
            raise ConfigError(f"BANGBAN_SMS_QUIET: {exc}") from None
        unknown = set(self.applicant_texts) - sms.APPLICANT_SWITCHES
        if unknown:
            raise ConfigError(f"BANGBAN_SMS_APPLICANT: unknown {', '.join(sorted(unknown))}")
        if not -14 <= self.sms_utc_offset <= 14:
            raise ConfigError("BANGBAN_SMS_UTC_OFFSET must be -14..14 hours")
        if self.sms_agent_daily < 0 or self.sms_daily < 0 or self.sms_widen_grids < 0:
            raise ConfigError("BANGBAN_SMS_AGENT_DAILY, _DAILY and _WIDEN_GRIDS must be >= 0")
        if not 1 <= self.sms_max_attempts <= 50:
            raise ConfigError("BANGBAN_SMS_MAX_ATTEMPTS must be 1..50")
        if not 0 < self.sms_retry_base <= 3600 or not 0 < self.sms_timeout <= 120:
            raise ConfigError("BANGBAN_SMS_RETRY_BASE / _TIMEOUT out of range")
        if not 0 < self.sms_interval <= 60 or not 1 <= self.presence_ttl <= 600:
            raise ConfigError("BANGBAN_SMS_INTERVAL (0..60] / BANGBAN_PRESENCE_TTL 1..600")

    @property
    def applicant_texts(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.sms_applicant.split(",") if p.strip())

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

        def dec(name: str, default: Decimal) -> Decimal:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = Decimal(raw)
            except InvalidOperation:
                value = Decimal("NaN")
            if not value.is_finite():
                raise ConfigError(f"{name} must be a decimal number, got {raw!r}")
            return value

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
            log_file=Path(env["BANGBAN_LOG_FILE"]) if env.get("BANGBAN_LOG_FILE") else None,
            claim_memory=num("BANGBAN_CLAIM_MEMORY", base.claim_memory),
            send_queue=int(num("BANGBAN_SEND_QUEUE", base.send_queue)),
            pg_pool_size=int(num("BANGBAN_PG_POOL", base.pg_pool_size)),
            send_queue_bytes=int(num("BANGBAN_SEND_QUEUE_BYTES", base.send_queue_bytes)),
            send_timeout=num("BANGBAN_SEND_TIMEOUT", base.send_timeout),
            filing_rate=int(num("BANGBAN_FILING_RATE", base.filing_rate)),
            grid_open_cap=int(num("BANGBAN_GRID_OPEN_CAP", base.grid_open_cap)),
            claim_rate=int(num("BANGBAN_CLAIM_RATE", base.claim_rate)),
            tracking_ttl=num("BANGBAN_TRACKING_TTL", base.tracking_ttl),
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
            ws_ping_interval=num("BANGBAN_WS_PING_INTERVAL", base.ws_ping_interval),
            gc_freeze_interval=num("BANGBAN_GC_FREEZE_INTERVAL", base.gc_freeze_interval),
            gc_full_every=num("BANGBAN_GC_FULL_EVERY", base.gc_full_every),
            followup_share=dec("BANGBAN_FOLLOWUP_SHARE", base.followup_share),
            inactive_days=int(num("BANGBAN_INACTIVE_DAYS", base.inactive_days)),
            fast_claim_ms=int(num("BANGBAN_FAST_CLAIM_MS", base.fast_claim_ms)),
            regular_cv=num("BANGBAN_REGULAR_CV", base.regular_cv),
            regular_min_claims=int(num("BANGBAN_REGULAR_MIN_CLAIMS", base.regular_min_claims)),
            min_reaction_ms=int(num("BANGBAN_MIN_REACTION_MS", base.min_reaction_ms)),
            fairplay_flush=num("BANGBAN_FAIRPLAY_FLUSH", base.fairplay_flush),
            sms_url=env.get("BANGBAN_SMS_URL") or None,
            sms_secret=env.get("BANGBAN_SMS_SECRET") or None,
            sms_offers=(env.get("BANGBAN_SMS_OFFERS") or base.sms_offers).strip().lower(),
            sms_agent_daily=int(num("BANGBAN_SMS_AGENT_DAILY", base.sms_agent_daily)),
            sms_daily=int(num("BANGBAN_SMS_DAILY", base.sms_daily)),
            sms_quiet=env.get("BANGBAN_SMS_QUIET", base.sms_quiet),
            sms_quiet_mode=(env.get("BANGBAN_SMS_QUIET_MODE") or base.sms_quiet_mode).lower(),
            sms_utc_offset=num("BANGBAN_SMS_UTC_OFFSET", base.sms_utc_offset),
            sms_widen_grids=int(num("BANGBAN_SMS_WIDEN_GRIDS", base.sms_widen_grids)),
            sms_applicant=env.get("BANGBAN_SMS_APPLICANT", base.sms_applicant),
            public_url=(env.get("BANGBAN_PUBLIC_URL") or base.public_url).rstrip("/"),
            sms_max_attempts=int(num("BANGBAN_SMS_MAX_ATTEMPTS", base.sms_max_attempts)),
            sms_retry_base=num("BANGBAN_SMS_RETRY_BASE", base.sms_retry_base),
            sms_timeout=num("BANGBAN_SMS_TIMEOUT", base.sms_timeout),
            sms_interval=num("BANGBAN_SMS_INTERVAL", base.sms_interval),
            presence_ttl=num("BANGBAN_PRESENCE_TTL", base.presence_ttl),
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
