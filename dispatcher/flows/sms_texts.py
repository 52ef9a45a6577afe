"""From triggers to texts: who gets an SMS for an offer or a step of an order, and what it says.

A trigger was written with the change that caused it (:mod:`dispatcher.store.orders`).  Here,
in one transaction per batch (:meth:`~dispatcher.store.store.Store.expanding`), each trigger
becomes its texts, and is marked done:

* ``offer`` (filed, widened, released): one text per agent *newly* reached by this rung (of
  ``grids`` but not of ``prev_grids``; a widening to all grids reaches the agents of the
  ``BANGBAN_SMS_WIDEN_GRIDS`` grids nearest the order's), except agents who released it and,
  by default, agents connected right now (presence in Redis), within the daily caps, held
  until the quiet hours end or skipped with a note.  An order no longer open gets no texts.
* applicant steps (accepted, materials missing, replied): the applicant's texts that are
  switched on, to the phone on the order; "please rate" carries a fresh tracking link.

Expansion runs in one process at a time (an advisory lock), so the caps count exactly.
"""

from __future__ import annotations

import logging

from dispatcher import auth
from dispatcher.context import Context
from dispatcher.core import sms
from dispatcher.core.orders import Order
from dispatcher.core.roster import TokenKind
from dispatcher.flows import presence
from dispatcher.store.outbox import Expansion

log = logging.getLogger("bangban.sms")


def offset_minutes(ctx: Context) -> int:
    return round(ctx.settings.sms_utc_offset * 60)


def what(order: Order) -> str:
    """The order in a few words: its catalogue item, else the start of its text."""
    if order.item_name:
        return order.item_name
    text = (order.text or order.item or "代办").strip().replace("\n", " ")
    return text if len(text) <= 16 else text[:15] + "…"


def where(ctx: Context, code: str) -> str:
    """The grid as an agent reads it: its parent's name and its own (``双田镇双田社区``)."""
    grid = ctx.geo.get(code)
    if grid is None:
        return code
    above = ctx.geo.ancestors(code)
    return (above[0].name if above else "") + grid.name


def agent_link(ctx: Context, order_id: int) -> str:
    return f"{ctx.settings.public_url}/app/#o={order_id}"


async def expand(ctx: Context, limit: int = 50) -> int:
    """Expand one batch of pending triggers.  Returns how many triggers were expanded.
    Raises StoreUnavailableError (nothing recorded; the triggers stay pending)."""
    async with ctx.store.expanding(limit) as batch:
        if batch is None or not batch.triggers:
            return 0
        found = await batch.orders([trigger.order_id for trigger in batch.triggers])
        audience = await _audience(ctx, batch, found)
        for trigger in batch.triggers:
            row = found.get(trigger.order_id)
            if row is None:
                continue
            order, code, phone = row
            if trigger.kind == "offer":
                await _offers(ctx, batch, trigger, order, code or str(order.id), audience)
            else:
                _applicant(ctx, batch, trigger, order, phone)
        return len(batch.triggers)


def _wants_texts(ctx: Context, trigger: sms.Trigger, order: Order) -> bool:
    """An offer trigger whose order is still open in the offering that caused it."""
    if ctx.settings.sms_offers == "off" or not order.is_open:
        return False
    # Released and offered afresh since: that offering has triggers of its own.
    return trigger.offered_at is None or order.offered_at == trigger.offered_at


async def _audience(
    ctx: Context, batch: Expansion, found: dict[int, tuple[Order, str | None, str | None]]
) -> dict[int, list[int]]:
    """For the batch's offer triggers at once, trigger id -> the agents its rung newly reaches
    who may get a text, by id (before the caps): one query for the union of their grids and
    one presence call for them all, instead of a query and a call per trigger.  Triggers that
    get no texts (:func:`_wants_texts`) are not in it."""
    rungs: list[tuple[sms.Trigger, Order, list[str] | None]] = []
    for trigger in batch.triggers:
        row = found.get(trigger.order_id)
        if trigger.kind == "offer" and row is not None and _wants_texts(ctx, trigger, row[0]):
            rungs.append((trigger, row[0], _reach(ctx, trigger, row[0])))
    if not rungs:
        return {}
    every = any(grids is None for _, _, grids in rungs)
    union = None if every else sorted({code for _, _, grids in rungs for code in grids or ()})
    # Ids and grids first: when widened, a rung reaches every agent of the county, and most
    # have the app open (they get no text), so only those left are read in full.
    roster = await batch.reachable(union)
    reached: dict[int, list[int]] = {}
    for trigger, order, grids in rungs:
        wanted = None if grids is None else set(grids)
        before = set(trigger.prev_grids)
        reached[trigger.id] = [
            agent_id
            for agent_id, agent_grids in roster
            if (wanted is None or not wanted.isdisjoint(agent_grids))
            and agent_id not in order.excluded
            and not before.intersection(agent_grids)
        ]
    candidates = sorted({a for ids in reached.values() for a in ids})
    online: set[int] = set()
    if candidates and ctx.settings.sms_offers == "offline":
        # Redis down: presence unknown.  Raising keeps the triggers pending until it answers
        # (texting everyone instead could flood the agents who have the app open).
        online = await presence.connected(ctx, candidates)
    return {t: [a for a in ids if a not in online] for t, ids in reached.items()}


def _reach(ctx: Context, trigger: sms.Trigger, order: Order) -> list[str] | None:
    """The grids this rung reaches (None: every grid)."""
    if trigger.grids is not None:
        return list(trigger.grids)
    limit = ctx.settings.sms_widen_grids
    if limit == 0:
        return None

    def neighbours(code: str) -> frozenset[str]:
        return ctx.geo.neighbours(code) if code in ctx.geo else frozenset()

    return sms.nearest_grids(order.grid, neighbours, limit)


async def _offers(
    ctx: Context,
    batch: Expansion,
    trigger: sms.Trigger,
    order: Order,
    code: str,
    audience: dict[int, list[int]],
) -> None:
    settings = ctx.settings
    ids = audience.get(trigger.id)
    if not ids:  # (no texts for it: see _wants_texts; or nobody left to text)
        return
    agents = await batch.agents_by_id(ids)
    now = ctx.clock()
    offset = offset_minutes(ctx)
    per_agent, total = await batch.offers_since(sms.day_start(now, offset))
    per_agent = {k: v for k, v in per_agent.items() if k is not None}
    caps = sms.Caps(settings.sms_agent_daily, settings.sms_daily)
    verdicts = sms.admit([a.id for a in agents], per_agent, total, caps)
    quiet = sms.quiet_until(now, sms.parse_quiet(settings.sms_quiet), offset)
    text = sms.offer_text(code, what(order), where(ctx, order.grid), agent_link(ctx, order.id))
    messages = []
    for agent in agents:
        skip = verdicts[agent.id]
        next_at = now
        if skip is None and quiet is not None:
            if settings.sms_quiet_mode == "skip":
                skip = sms.Skip.QUIET
            else:
                next_at = quiet
        messages.append(
            sms.Outgoing(
                dedupe=f"offer:{order.id}:{trigger.offered_at}:{trigger.step}:{agent.id}",
                kind=sms.Kind.OFFER,
                to=agent.phone,
                text=text,
                created_at=now,
                next_at=next_at,
                order_id=order.id,
                agent_id=agent.id,
                step=trigger.step,
                status=sms.Status.SKIPPED if skip is not None else sms.Status.QUEUED,
                note=None if skip is None else skip.value,
            )
        )
    batch.add(messages)
    log.info(
        "offer texts order_id=%s step=%s queued=%d skipped=%d",
        order.id,
        trigger.step,
        sum(m.status is sms.Status.QUEUED for m in messages),
        sum(m.status is sms.Status.SKIPPED for m in messages),
    )


def _applicant(
    ctx: Context, batch: Expansion, trigger: sms.Trigger, order: Order, phone: str | None
) -> None:
    kinds = sms.applicant_kinds(trigger.kind, ctx.settings.applicant_texts, trigger.details)
    if not phone or not kinds:
        return
    now = ctx.clock()
    offset = offset_minutes(ctx)
    quiet = sms.quiet_until(now, sms.parse_quiet(ctx.settings.sms_quiet), offset)
    for kind in kinds:
        link = ""
        if kind is sms.Kind.RATE:
            token = auth.new_token(TokenKind.TRACKING)
            batch.add_tracking_token(auth.digest(token), order.id)
            link = f"{ctx.settings.public_url}/app/#o={order.id}&t={token}"
        text = sms.applicant_text(
            kind, what(order), details=trigger.details, offset_minutes=offset, link=link
        )
        skip = quiet is not None and ctx.settings.sms_quiet_mode == "skip"
        batch.add(
            [
                sms.Outgoing(
                    dedupe=f"t:{trigger.id}:{kind.value}",
                    kind=kind,
                    to=phone,
                    text=text,
                    created_at=now,
                    next_at=quiet if quiet is not None and not skip else now,
                    order_id=order.id,
                    status=sms.Status.SKIPPED if skip else sms.Status.QUEUED,
                    note=sms.Skip.QUIET.value if skip else None,
                )
            ]
        )
