"""The sender loop: every process expands triggers into texts and sends what is due.

Each round (every ``BANGBAN_SMS_INTERVAL``, at once again while there is work) it

1. expands pending triggers into texts (:mod:`dispatcher.flows.sms_texts`);
2. claims due texts with ``FOR UPDATE SKIP LOCKED`` and a lease
   (:meth:`~dispatcher.store.store.Store.claim_due`), sends them to the gateway concurrently
   with no transaction open, and records each answer: a 2xx is ``sent``; a 5xx, 408, 429,
   timeout or connection error is retried after an exponential, jittered backoff
   (``BANGBAN_SMS_RETRY_BASE``) until
   ``BANGBAN_SMS_MAX_ATTEMPTS``, then ``failed``; another 4xx is ``failed`` at once.  An offer
   whose order is no longer open is ``skipped``, not sent.

So a text goes to the gateway once per id in normal operation (it is leased to one process
while in flight, and a clean stop finishes the batch in flight before it ends), and at least
once across a crash, with the same id (a dead process's lease lapses and another process
claims the text again).  Delivery
reports (``POST /v1/sms/receipts``) then mark texts ``delivered`` or ``failed``.

Two gateways, both real: :class:`HttpGateway` posts to ``BANGBAN_SMS_URL`` (the contract in
docs/PROTOCOL.md); :class:`LogGateway`, when no URL is set, writes each text to the log
(tokens redacted) and leaves it in the outbox for the operators' console.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from dispatcher.context import Context
from dispatcher.core import sms
from dispatcher.exceptions import RedisUnavailableError, StoreUnavailableError
from dispatcher.flows import sms_texts

log = logging.getLogger("bangban.sms")

BATCH = 20


@dataclass(frozen=True, slots=True)
class Answer:
    """What the gateway said: accepted, worth retrying, or refused for good."""

    ok: bool
    retry: bool = False
    error: str = ""


class Gateway(Protocol):
    async def send(self, message: sms.Queued) -> Answer: ...

    async def aclose(self) -> None: ...


class HttpGateway:
    """``POST`` each text as signed JSON to the gateway (docs/PROTOCOL.md)."""

    def __init__(
        self, url: str, secret: str, *, timeout: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.url = url
        self.secret = secret
        self.http = httpx.AsyncClient(timeout=timeout)
        self.clock = clock

    async def send(self, message: sms.Queued) -> Answer:
        body = json.dumps(message.payload(), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            sms.SIGNATURE_HEADER: sms.sign(self.secret, body),
            sms.TIMESTAMP_HEADER: str(int(self.clock())),
        }
        try:
            r = await self.http.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Answer(False, retry=True, error="timeout")
        except httpx.HTTPError as exc:
            return Answer(False, retry=True, error=f"{type(exc).__name__}: {exc}"[:200])
        if 200 <= r.status_code < 300:
            return Answer(True)
        retry = r.status_code >= 500 or r.status_code in (408, 429)
        return Answer(False, retry=retry, error=f"HTTP {r.status_code}: {r.text[:200]}")

    async def aclose(self) -> None:
        await self.http.aclose()


class LogGateway:
    """No gateway configured: each text goes to the log (tokens redacted) and stays in the
    outbox, where ``GET /v1/admin/sms/messages`` shows it (the console's phone)."""

    async def send(self, message: sms.Queued) -> Answer:
        log.info(
            "sms (no gateway) id=%s to=%s kind=%s order_id=%s text=%s",
            message.id,
            message.to,
            message.kind,
            message.order_id,
            sms.redacted(message.text),
        )
        return Answer(True)

    async def aclose(self) -> None:
        return None


def gateway_for(ctx: Context) -> Gateway:
    s = ctx.settings
    if s.sms_url and s.sms_secret:
        return HttpGateway(s.sms_url, s.sms_secret, timeout=s.sms_timeout)
    return LogGateway()


def lease_ms(ctx: Context) -> int:
    """How long a claimed batch is the claimer's: well past the gateway's timeout (the batch
    is sent concurrently), so only a dead or stalled process loses it."""
    return round((2 * ctx.settings.sms_timeout + 2) * 1000)


async def send_due(ctx: Context, gateway: Gateway, rng: random.Random | None = None) -> int:
    """Send one batch of due texts; returns how many were claimed.  Raises
    StoreUnavailableError (a text in flight is sent again after its lease, with the same id)."""
    jitter = (rng or random.Random()).random
    due = await ctx.store.claim_due(ctx.clock(), lease_ms(ctx), BATCH)
    if not due:
        return 0
    live = [m for m in due if m.kind != sms.Kind.OFFER or m.order_open]
    for m in due:
        if m.kind == sms.Kind.OFFER and not m.order_open:
            await ctx.store.mark_skipped(m.id, "order no longer open")
            ctx.metrics.sms.labels(m.kind, "skipped").inc()
    # Concurrently, except that texts to one phone go one after the other, in the order they
    # were made (the result before "please rate").
    by_phone: dict[str, list[sms.Queued]] = {}
    for m in live:
        by_phone.setdefault(m.to, []).append(m)

    async def in_turn(texts: list[sms.Queued]) -> list[tuple[sms.Queued, Answer]]:
        return [(m, await gateway.send(m)) for m in texts]

    turns = await asyncio.gather(*(in_turn(texts) for texts in by_phone.values()))
    at = ctx.clock()
    for m, answer in (pair for turn in turns for pair in turn):
        outcome = "sent" if answer.ok else "retry" if answer.retry else "failed"
        if answer.retry and m.attempts >= ctx.settings.sms_max_attempts:
            outcome = "failed"
        ctx.metrics.sms.labels(m.kind, outcome).inc()
        if answer.ok:
            await ctx.store.mark_sent(m.id, at)
        elif outcome == "retry":
            wait = sms.backoff_ms(m.attempts, ctx.settings.sms_retry_base, jitter)
            await ctx.store.mark_retry(m.id, at + wait, answer.error)
            log.warning(
                "sms retry id=%s attempt=%d in_ms=%d error=%s", m.id, m.attempts, wait, answer.error
            )
        else:
            await ctx.store.mark_failed(m.id, answer.error)
            log.warning("sms failed id=%s attempts=%d error=%s", m.id, m.attempts, answer.error)
    return len(due)


async def _round(ctx: Context, gateway: Gateway) -> int:
    expanded = await sms_texts.expand(ctx)
    sent = await send_due(ctx, gateway)
    return expanded + sent


async def run(ctx: Context, gateway: Gateway | None = None) -> None:
    """Expand and send forever (owned by the app's lifespan).  A cancel lets the round in
    flight finish first (bounded by the gateway timeout): its texts are then recorded as sent
    instead of being sent again by another process."""
    own = gateway is None
    gw = gateway or gateway_for(ctx)
    try:
        while True:
            work = asyncio.ensure_future(_guarded(ctx, gw))
            try:
                busy = await asyncio.shield(work)
            except asyncio.CancelledError:
                while not work.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.shield(work)
                raise
            if not busy:
                await asyncio.sleep(ctx.settings.sms_interval)
    finally:
        if own:
            await gw.aclose()


async def _guarded(ctx: Context, gateway: Gateway) -> int:
    try:
        return await _round(ctx, gateway)
    except (StoreUnavailableError, RedisUnavailableError) as exc:
        log.warning("sms round failed (retrying) error=%s", exc)
        return 0
    except Exception:  # a bug in one round must not stop texting for good in this process
        log.exception("sms round failed unexpectedly")
        return 0
