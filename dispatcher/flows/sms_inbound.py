"""Texts coming in: an agent claims by replying with an order's short code; delivery reports.

An inbound text is remembered by the gateway's id before anything else.  Its sender is looked
up by phone among active agents, its code among live orders, and the claim goes through
:func:`dispatcher.flows.claims.claim` exactly as a websocket ``claim`` does (request id
``sms:<inbound id>``: a repeat gets the remembered answer, never a second claim).  The reply
text is queued together with the inbound text's result (one transaction), so a repeat of the
same id answers the same and texts nothing more.

Only the code of an order the agent was texted about counts (codes are reused once an order
closes: a late reply must not grab a new order).  Unknown phones get no reply (nobody to help,
and a reply would text strangers); garbage and unknown codes from an agent get a short hint.
``unavailable`` (Redis or Postgres down) is not recorded: the caller answers 503 and the
gateway sends the text again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from dispatcher.context import Context
from dispatcher.core import sms
from dispatcher.core.orders import ClaimOutcome
from dispatcher.exceptions import StoreUnavailableError
from dispatcher.flows import claims
from dispatcher.flows.sms_texts import agent_link

log = logging.getLogger("bangban.sms")


@dataclass(frozen=True, slots=True)
class Inbound:
    id: str
    sender: str
    text: str
    received_at: int | None


@dataclass(frozen=True, slots=True)
class Handled:
    """How an inbound text was handled: ``result`` is a claim outcome (``won``, ``taken``,
    ...) or ``unknown_phone`` / ``unknown_code`` / ``garbage``; ``repeat`` when this id was
    handled before (nothing done again)."""

    result: str
    repeat: bool = False
    order_id: int | None = None


async def handle(ctx: Context, text: Inbound) -> Handled:
    """Handle one inbound text.  Raises StoreUnavailableError / RedisUnavailableError
    (nothing recorded as handled: the gateway should send it again)."""
    before = await ctx.store.begin_inbound(text.id, text.sender, text.text, text.received_at)
    if before is not None:
        return Handled(before, repeat=True)
    agent = await ctx.store.agent_by_phone(sms.phone_candidates(text.sender))
    if agent is None:
        log.info("sms inbound from unknown phone id=%s", text.id)
        await ctx.store.finish_inbound(
            text.id, "unknown_phone", agent_id=None, order_id=None, reply=None
        )
        return Handled("unknown_phone")
    code = sms.parse_reply(text.text)
    order_id = None if code is None else await ctx.store.order_by_code(code)
    if order_id is not None and not await ctx.store.was_texted(order_id, agent.id):
        # Only a code this agent was texted counts: a code is reused once its order closed,
        # and a late reply to an old text must not grab somebody else's new order.
        order_id = None
    if code is None or order_id is None:
        result = "garbage" if code is None else "unknown_code"
        hint = sms.claim_reply_text(result, code or "")
        reply = _reply(ctx, text, agent.id, agent.phone, hint, None)
        await ctx.store.finish_inbound(
            text.id, result, agent_id=agent.id, order_id=None, reply=reply
        )
        return Handled(result)
    outcome = await claims.claim(ctx, agent, order_id, f"sms:{text.id}")
    if outcome is ClaimOutcome.UNAVAILABLE:
        # Not remembered: the gateway's retry tries again (claims never remember it either).
        raise StoreUnavailableError("claim unavailable; send the text again")
    link = agent_link(ctx, order_id)
    answer = sms.claim_reply_text(outcome, code, link)
    reply = _reply(ctx, text, agent.id, agent.phone, answer, order_id)
    await ctx.store.finish_inbound(
        text.id, outcome.value, agent_id=agent.id, order_id=order_id, reply=reply
    )
    log.info(
        "sms claim id=%s agent_id=%s order_id=%s outcome=%s",
        text.id,
        agent.id,
        order_id,
        outcome.value,
    )
    return Handled(outcome.value, order_id=order_id)


def _reply(
    ctx: Context, text: Inbound, agent_id: int, to: str, body: str, order_id: int | None
) -> sms.Outgoing:
    now = ctx.clock()
    return sms.Outgoing(
        dedupe=f"in:{text.id}",
        kind=sms.Kind.CLAIM_REPLY,
        to=to,
        text=body,
        created_at=now,
        next_at=now,  # a reply is awaited: never held for quiet hours nor capped
        order_id=order_id,
        agent_id=agent_id,
    )


async def receipt(ctx: Context, message_id: str, status: sms.Status, error: str | None) -> str:
    """Apply a delivery report: ``applied``, ``unchanged`` (a repeat) or ``unknown``."""
    return await ctx.store.apply_receipt(message_id, status, error, ctx.clock())
