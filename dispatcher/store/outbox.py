"""Postgres for texts: the triggers left by changes, the outbox, inbound texts, receipts.

Mixed into :class:`dispatcher.store.store.Store`.  The outbox is durable: a trigger is written
in the same statement as the change that causes it (:mod:`dispatcher.store.orders`), expanded
into texts by :meth:`OutboxStore.expanding` (one transaction: the texts in, the trigger done),
and each text is claimed for sending by :meth:`OutboxStore.claim_due` (``FOR UPDATE SKIP
LOCKED`` in a short transaction) with a lease that outlasts the gateway's timeout.  Of several
processes, only one holds a text while its lease runs; if it dies mid-send, the lease lapses
and another process sends the text again, with the same id.  No transaction stays open while
the gateway is called.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg

from dispatcher.core.orders import Order
from dispatcher.core.roster import Agent
from dispatcher.core.sms import Kind, Outgoing, Queued, Status, Trigger
from dispatcher.store.pg import ORDER_COLS, agent_from_row, dt, ms, order_from_row, translated

_EXPAND_LOCK = 0x62620013  # one expander at a time across processes: the caps count exactly
_OPEN = ("offered", "widened")


def _message_row(m: Outgoing) -> tuple[Any, ...]:
    return (
        m.dedupe,
        m.kind.value,
        m.to,
        m.text,
        m.order_id,
        m.agent_id,
        m.step,
        m.status.value,
        m.note,
        dt(m.created_at),
        dt(m.next_at),
    )


_INSERT = (
    "INSERT INTO sms_outbox (dedupe, kind, to_phone, text, order_id, agent_id, step, status,"
    " note, created_at, next_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    " ON CONFLICT (dedupe) DO NOTHING"
)


class Expansion:
    """One transaction of the expander: locked triggers in, texts out.  Use only inside
    :meth:`OutboxStore.expanding`."""

    def __init__(self, conn: asyncpg.Connection[asyncpg.Record], triggers: list[Trigger]):
        self.conn = conn
        self.triggers = triggers
        self.messages: list[Outgoing] = []
        self.tokens: list[tuple[bytes, int]] = []

    async def orders(
        self, order_ids: Sequence[int]
    ) -> dict[int, tuple[Order, str | None, str | None]]:
        """The batch's orders in one query: order id -> (order, short code, applicant
        phone), for those that exist."""
        rows = await self.conn.fetch(
            f"SELECT {ORDER_COLS}, short_code, applicant_phone FROM orders"
            " WHERE id = ANY($1::bigint[])",
            sorted(set(order_ids)),
        )
        return {r["id"]: (order_from_row(r), r["short_code"], r["applicant_phone"]) for r in rows}

    async def reachable(self, grids: Sequence[str] | None) -> list[tuple[int, list[str]]]:
        """(id, grids) of the active agents of any of ``grids`` (None: all), by id."""
        rows = await self.conn.fetch(
            "SELECT id, grids FROM agents WHERE active"
            " AND ($1::text[] IS NULL OR grids && $1::text[]) ORDER BY id",
            None if grids is None else list(grids),
        )
        return [(r["id"], r["grids"]) for r in rows]

    async def agents_by_id(self, ids: Sequence[int]) -> list[Agent]:
        """The active agents among ``ids``, by id."""
        rows = await self.conn.fetch(
            "SELECT id, name, phone, grids, active FROM agents"
            " WHERE active AND id = ANY($1::bigint[]) ORDER BY id",
            list(ids),
        )
        return [agent_from_row(r) for r in rows]

    async def offers_since(self, since: int) -> tuple[dict[int, int], int]:
        """Offer texts made since ``since`` and not skipped, this batch's included: (per
        agent, in all)."""
        rows = await self.conn.fetch(
            "SELECT agent_id, count(*) AS n FROM sms_outbox WHERE kind = 'offer'"
            " AND created_at >= $1 AND status <> 'skipped' GROUP BY agent_id",
            dt(since),
        )
        per: dict[int, int] = {r["agent_id"]: r["n"] for r in rows}
        for m in self.messages:  # this batch's texts, not inserted yet, count too
            if m.kind is Kind.OFFER and m.status is not Status.SKIPPED and m.created_at >= since:
                per[m.agent_id or 0] = per.get(m.agent_id or 0, 0) + 1
        return per, sum(per.values())

    def add(self, messages: Sequence[Outgoing]) -> None:
        self.messages.extend(messages)

    def add_tracking_token(self, digest: bytes, order_id: int) -> None:
        """A tracking token for a link in a text (stored with the texts, as a digest)."""
        self.tokens.append((digest, order_id))


class OutboxStore:
    """Triggers, outbox, inbound texts.  Mixed into Store; uses ``self.pool``."""

    pool: asyncpg.Pool

    @contextlib.asynccontextmanager
    async def expanding(self, limit: int = 50) -> AsyncIterator[Expansion | None]:
        """The pending triggers (oldest first), locked, in a transaction; None when another
        process is expanding right now.  On a clean exit the texts added are inserted (a text
        whose ``dedupe`` exists is left out) and the triggers marked done, together."""
        with translated():
            async with self.pool.acquire() as conn, conn.transaction():
                if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _EXPAND_LOCK):
                    yield None
                    return
                # No row locks: the advisory lock already keeps other expanders out, and a
                # transaction that only reads gets no xid until its writes at the end, so it
                # does not hold back the reconciler's watermark (dispatcher.store.changes).
                rows = await conn.fetch(
                    "SELECT id, order_id, kind, step, offered_at, grids, prev_grids, details, at"
                    " FROM sms_triggers WHERE done_at IS NULL ORDER BY id LIMIT $1",
                    limit,
                )
                triggers = [
                    Trigger(
                        id=r["id"],
                        order_id=r["order_id"],
                        kind=r["kind"],
                        step=r["step"],
                        offered_at=ms(r["offered_at"]),
                        grids=None if r["grids"] is None else tuple(r["grids"]),
                        prev_grids=tuple(r["prev_grids"]),
                        details=json.loads(r["details"]),
                        at=ms(r["at"]) or 0,
                    )
                    for r in rows
                ]
                batch = Expansion(conn, triggers)
                yield batch
                if batch.tokens:
                    await conn.executemany(
                        "INSERT INTO tokens (digest, kind, order_id) VALUES ($1, 'tracking', $2)",
                        batch.tokens,
                    )
                if batch.messages:
                    await conn.executemany(_INSERT, [_message_row(m) for m in batch.messages])
                if triggers:
                    await conn.execute(
                        "UPDATE sms_triggers SET done_at = now() WHERE id = ANY ($1::bigint[])",
                        [t.id for t in triggers],
                    )

    async def claim_due(self, now: int, lease_ms: int, limit: int = 20) -> list[Queued]:
        """Claim the texts due at ``now`` for sending: queued ones past ``next_at`` and
        ``sending`` ones whose lease lapsed (their sender died mid-send).  Each is claimed by
        one caller only (``FOR UPDATE SKIP LOCKED``, committed at once), leased until ``now +
        lease_ms`` and its attempt counted.  Record each one's fate with :meth:`mark_sent`,
        :meth:`mark_retry`, :meth:`mark_failed` or :meth:`mark_skipped`."""
        with translated():
            rows = await self.pool.fetch(
                "WITH c AS (SELECT id FROM sms_outbox"
                "  WHERE (status = 'queued' AND next_at <= $1)"
                "     OR (status = 'sending' AND lease_until <= $1)"
                "  ORDER BY next_at, seq LIMIT $2 FOR UPDATE SKIP LOCKED),"
                " u AS (UPDATE sms_outbox m SET status = 'sending', lease_until = $3,"
                "  attempts = m.attempts + 1 FROM c WHERE m.id = c.id"
                "  RETURNING m.id, m.kind, m.to_phone, m.text, m.order_id, m.attempts,"
                "  m.next_at, m.seq)"
                " SELECT u.id::text AS id, u.kind, u.to_phone, u.text, u.order_id, u.attempts,"
                " coalesce(o.status = ANY ($4::text[]), false) AS order_open"
                " FROM u LEFT JOIN orders o ON o.id = u.order_id ORDER BY u.next_at, u.seq",
                dt(now),
                limit,
                dt(now + lease_ms),
                list(_OPEN),
            )
        return [
            Queued(
                id=r["id"],
                kind=r["kind"],
                to=r["to_phone"],
                text=r["text"],
                order_id=r["order_id"],
                attempts=r["attempts"],
                order_open=r["order_open"],
            )
            for r in rows
        ]

    async def mark_sent(self, message_id: str, at: int) -> None:
        """The gateway took it (a delivery report may have come first: it stays)."""
        with translated():
            await self.pool.execute(
                "UPDATE sms_outbox SET sent_at = $2, error = NULL, lease_until = NULL,"
                " status = CASE WHEN status = 'sending' THEN 'sent' ELSE status END"
                " WHERE id = $1::uuid",
                message_id,
                dt(at),
            )

    async def mark_retry(self, message_id: str, at: int, error: str) -> None:
        with translated():
            await self.pool.execute(
                "UPDATE sms_outbox SET status = 'queued', next_at = $2, error = $3,"
                " lease_until = NULL WHERE id = $1::uuid AND status = 'sending'",
                message_id,
                dt(at),
                error[:500],
            )

    async def mark_failed(self, message_id: str, error: str) -> None:
        with translated():
            await self.pool.execute(
                "UPDATE sms_outbox SET status = 'failed', error = $2, lease_until = NULL"
                " WHERE id = $1::uuid AND status = 'sending'",
                message_id,
                error[:500],
            )

    async def mark_skipped(self, message_id: str, note: str) -> None:
        with translated():
            await self.pool.execute(
                "UPDATE sms_outbox SET status = 'skipped', note = $2, lease_until = NULL,"
                " attempts = attempts - 1 WHERE id = $1::uuid AND status = 'sending'",
                message_id,
                note,
            )

    async def add_texts(self, messages: Sequence[Outgoing]) -> None:
        """Put texts in the outbox (those whose ``dedupe`` exists are left out)."""
        with translated():
            await self.pool.executemany(_INSERT, [_message_row(m) for m in messages])

    async def apply_receipt(
        self, message_id: str, status: Status, error: str | None, at: int
    ) -> str:
        """A delivery report: ``applied``, ``unchanged`` (already so: a repeat) or ``unknown``."""
        try:
            uuid.UUID(message_id)
        except ValueError:
            return "unknown"
        with translated():
            row = await self.pool.fetchrow(
                "WITH u AS (UPDATE sms_outbox SET status = $2,"
                " delivered_at = CASE WHEN $2 = 'delivered' THEN $4 ELSE delivered_at END,"
                " error = CASE WHEN $2 = 'failed' THEN $3 ELSE error END"
                " WHERE id = $1::uuid AND status IN ('sending', 'sent', 'failed') AND status <> $2"
                " RETURNING 1) SELECT (SELECT count(*) FROM u) AS applied,"
                " (SELECT status FROM sms_outbox WHERE id = $1::uuid) AS was",
                message_id,
                status.value,
                error,
                dt(at),
            )
        assert row is not None
        if row["applied"]:
            return "applied"
        return "unknown" if row["was"] is None else "unchanged"

    # --- inbound -----------------------------------------------------------------------------

    async def begin_inbound(
        self, inbound_id: str, sender: str, text: str, received_at: int | None
    ) -> str | None:
        """Remember an inbound text.  Returns its result if it was handled before (a repeat:
        answer that, text nothing), else None (handle it, then :meth:`finish_inbound`)."""
        with translated():
            row = await self.pool.fetchrow(
                "WITH i AS (INSERT INTO sms_inbound (id, from_phone, text, received_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING RETURNING 1)"
                " SELECT result FROM sms_inbound WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM i)",
                inbound_id,
                sender,
                text,
                None if received_at is None else dt(received_at),
            )
        return None if row is None else row["result"]

    async def finish_inbound(
        self,
        inbound_id: str,
        result: str,
        *,
        agent_id: int | None,
        order_id: int | None,
        reply: Outgoing | None,
    ) -> None:
        """Record how an inbound text was handled and queue its reply, together."""
        with translated():
            async with self.pool.acquire() as conn, conn.transaction():
                if reply is not None:
                    await conn.execute(_INSERT, *_message_row(reply))
                await conn.execute(
                    "UPDATE sms_inbound SET result = $2, agent_id = $3, order_id = $4,"
                    " handled_at = now() WHERE id = $1",
                    inbound_id,
                    result,
                    agent_id,
                    order_id,
                )

    async def agent_by_phone(self, candidates: Sequence[str]) -> Agent | None:
        with translated():
            row = await self.pool.fetchrow(
                "SELECT id, name, phone, grids, active FROM agents"
                " WHERE phone = ANY ($1::text[]) AND active ORDER BY id LIMIT 1",
                list(candidates),
            )
        return None if row is None else agent_from_row(row)

    async def order_by_code(self, code: str) -> int | None:
        """The order whose live short code is ``code``."""
        with translated():
            value = await self.pool.fetchval(
                "SELECT id FROM orders WHERE short_code = $1"
                " AND status NOT IN ('closed', 'cancelled')",
                code,
            )
        return None if value is None else int(value)

    async def was_texted(self, order_id: int, agent_id: int) -> bool:
        """Did ``agent_id`` get (or is it getting) an offer text for ``order_id``?"""
        with translated():
            value = await self.pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM sms_outbox WHERE order_id = $1 AND agent_id = $2"
                " AND kind = 'offer' AND status IN ('sending', 'sent', 'delivered'))",
                order_id,
                agent_id,
            )
        return bool(value)

    async def short_code(self, order_id: int) -> str | None:
        with translated():
            value = await self.pool.fetchval(
                "SELECT short_code FROM orders WHERE id = $1", order_id
            )
        return None if value is None else str(value)

    # --- operators' views --------------------------------------------------------------------

    async def texts(
        self, *, order_id: int | None = None, to: str | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` texts, oldest first: of one order (the delivery log) or to one
        phone (the console phone), with the agent's name where there is one."""
        with translated():
            rows = await self.pool.fetch(
                "SELECT m.id::text AS id, m.kind, m.to_phone, m.text, m.order_id, m.agent_id,"
                " a.name AS agent_name, m.step, m.status, m.note, m.attempts, m.created_at,"
                " m.next_at, m.sent_at, m.delivered_at, m.error"
                " FROM sms_outbox m LEFT JOIN agents a ON a.id = m.agent_id"
                " WHERE ($1::bigint IS NULL OR m.order_id = $1)"
                " AND ($2::text IS NULL OR m.to_phone = $2)"
                " ORDER BY m.created_at DESC, m.seq DESC LIMIT $3",
                order_id,
                to,
                limit,
            )
        return [
            {
                "id": r["id"],
                "kind": r["kind"],
                "to": r["to_phone"],
                "text": r["text"],
                "order_id": r["order_id"],
                "agent_id": r["agent_id"],
                "agent_name": r["agent_name"],
                "step": r["step"],
                "status": r["status"],
                "note": r["note"],
                "attempts": r["attempts"],
                "created_at": ms(r["created_at"]),
                "next_at": ms(r["next_at"]),
                "sent_at": ms(r["sent_at"]),
                "delivered_at": ms(r["delivered_at"]),
                "error": r["error"],
            }
            for r in reversed(rows)
        ]
