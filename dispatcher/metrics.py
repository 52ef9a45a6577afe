"""Prometheus metrics: what operators watch in production (``GET /metrics``).

Each server process keeps its own registry and is scraped on its own (one series per process,
told apart by the scrape target), so no multiprocess mode or shared files are needed.  Label
sets are bounded: claim results are a fixed enum, and connected agents by grid are exported
for at most ``MAX_GRID_LABELS`` grids (the rest summed under ``grid="_other"``).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterator, Mapping, Sized

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

MAX_GRID_LABELS = 200
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0, 60.0)
GC_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _Connected(Collector):
    """Connected agents by grid, read from the hub at scrape time."""

    def __init__(self, by_grid: Callable[[], Mapping[str, Sized]], total: Callable[[], int]):
        self.by_grid = by_grid
        self.total = total

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "bangban_connected_agents",
            "Agent connections by grid (an agent counts in each of its grids)",
            labels=["grid"],
        )
        sizes = sorted(((len(v), k) for k, v in self.by_grid().items()), reverse=True)
        for size, grid in sizes[:MAX_GRID_LABELS]:
            family.add_metric([grid], size)
        rest = sum(size for size, _ in sizes[MAX_GRID_LABELS:])
        if rest:
            family.add_metric(["_other"], rest)
        yield family
        yield GaugeMetricFamily("bangban_connections", "Agent connections", value=self.total())


class Metrics:
    """The metrics of one server process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.offers = Counter("bangban_offers_sent", "Offer frames queued to agents", registry=r)
        self.withdrawals = Counter(
            "bangban_withdrawn_sent", "Withdrawn frames queued to agents", registry=r
        )
        self.claims = Counter("bangban_claims", "Claim answers by result", ["result"], registry=r)
        self.claim_seconds = Histogram(
            "bangban_claim_seconds",
            "Claim received to answer decided",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.fanout_seconds = Histogram(
            "bangban_fanout_seconds",
            "Order change committed to its frames queued in this process",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.widen_lateness = Histogram(
            "bangban_widen_lateness_seconds",
            "How long after its deadline a rung was taken",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.orders_filed = Counter("bangban_orders_filed", "Orders filed", registry=r)
        self.claims_rate_limited = Counter(
            "bangban_claims_rate_limited", "Claims refused: the agent's rate limit", registry=r
        )
        self.filings_rate_limited = Counter(
            "bangban_filings_rate_limited", "Filings refused: the token's rate limit", registry=r
        )
        self.orders_capped = Counter(
            "bangban_orders_capped",
            "Orders escalated at filing: their grid had BANGBAN_GRID_OPEN_CAP open",
            registry=r,
        )
        self.workflow = Counter(
            "bangban_workflow_events",
            "Workflow changes recorded after the grab, by trail event kind (a fixed set)",
            ["kind"],
            registry=r,
        )
        self.redis_errors = Counter(
            "bangban_redis_errors", "Operations that failed because Redis did", registry=r
        )
        self.postgres_errors = Counter(
            "bangban_postgres_errors", "Operations that failed because Postgres did", registry=r
        )
        self.redis_behind = Counter(
            "bangban_redis_behind",
            "Claims Redis answered not_offered while Postgres had the order open to the agent",
            registry=r,
        )
        self.pubsub_reconnects = Counter(
            "bangban_pubsub_reconnects",
            "Times the pub/sub listener had to resubscribe",
            registry=r,
        )
        self.dropped_slow = Counter(
            "bangban_slow_connections_dropped", "Connections closed for not reading", registry=r
        )
        self.reconcile_rows = Counter(
            "bangban_reconcile_rows",
            "Order rows the reconciler read from Postgres, by pass (full, periodic)",
            ["pass"],
            registry=r,
        )
        self.sms = Counter(
            "bangban_sms",
            "Texts this process handed to the gateway, by kind (fixed set) and outcome"
            " (sent, retry, failed, skipped)",
            ["kind", "outcome"],
            registry=r,
        )
        self.loop_lag = Gauge(
            "bangban_event_loop_lag_seconds",
            "How late a 0.5 s timer fired, last sample",
            registry=r,
        )
        self.gc_pause = Histogram(
            "bangban_gc_pause_seconds",
            "Garbage collector passes (they stop the event loop), by generation",
            ["generation"],
            buckets=GC_BUCKETS,
            registry=r,
        )
        self._gc_started = 0.0

    def watch_hub(
        self, by_grid: Callable[[], Mapping[str, Sized]], total: Callable[[], int]
    ) -> None:
        self.registry.register(_Connected(by_grid, total))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            pause = time.perf_counter() - self._gc_started
            self.gc_pause.labels(str(info["generation"])).observe(pause)

    def watch_gc(self) -> None:
        """Time every collector pass until :meth:`unwatch_gc`."""
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def unwatch_gc(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    async def sample_loop_lag(self, interval: float = 0.5) -> None:
        """Forever: measure how late the event loop runs a timer (a busy loop delays offers)."""
        while True:
            start = time.perf_counter()
            await asyncio.sleep(interval)
            self.loop_lag.set(max(0.0, time.perf_counter() - start - interval))
