"""Postgres for oversight: follow-up samples and calls, fair-play records, and the facts of
the oversight reports.

Mixed into :class:`dispatcher.store.store.Store` (uses ``self.pool``).  Refusals are values: a
method answers None or False where the thing is missing or exists already, and never lets an
asyncpg error out (:func:`dispatcher.store.pg.translated`).  Every change that concerns an order
appends its trail event in the same statement.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from dispatcher.core.fairplay import ClaimRow, ClaimTiming
from dispatcher.core.followup import Outcome
from dispatcher.core.ledger import Adjustment
from dispatcher.core.oversight import Activity, OrderFacts
from dispatcher.core.points import Rating
from dispatcher.core.workdays import CHINA
from dispatcher.store.pg import dt, ms, translated

_CLOSES = "('rated', 'closed_unrated')"


def _rating(raw: str | None) -> Rating | None:
    return None if raw is None else Rating(raw)


def _adjustment(r: asyncpg.Record) -> Adjustment:
    return Adjustment(
        r["id"],
        r["agent_id"],
        r["month"],
        Decimal(r["points"]),
        r["reason"],
        r["by_whom"],
        ms(r["at"]) or 0,
    )


CLAIM_TIMING_COLUMNS = (
    "agent_id",
    "order_id",
    "delivered_at",
    "received_at",
    "reaction_ms",
    "outcome",
    "ignored",
)


class OversightStore:
    """Follow-ups, fair play and oversight facts.  Mixed into Store."""

    pool: asyncpg.Pool

    # --- follow-up calls -------------------------------------------------------------------

    async def followup_sample(self, month: str) -> dict[str, Any] | None:
        with translated():
            row = await self.pool.fetchrow(
                "SELECT month, seed, share, candidates, order_ids, by_whom, at"
                " FROM followup_samples WHERE month = $1",
                month,
            )
        if row is None:
            return None
        return {
            "month": row["month"],
            "seed": row["seed"],
            "share": Decimal(row["share"]),
            "candidates": row["candidates"],
            "order_ids": list(row["order_ids"]),
            "by": row["by_whom"],
            "at": ms(row["at"]),
        }

    async def save_followup_sample(
        self,
        month: str,
        seed: int,
        share: Decimal,
        candidates: int,
        order_ids: Sequence[int],
        by: str,
        at: int,
    ) -> bool:
        """Store the month's sample and put a `followup_sampled` event in each sampled order's
        trail, together.  False when the month has a sample already."""
        details = json.dumps({"month": month, "seed": seed}, ensure_ascii=False)
        with translated():
            done = await self.pool.fetchval(
                """
                WITH s AS (
                    INSERT INTO followup_samples (month, seed, share, candidates, order_ids,
                                                  by_whom, at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7)
                    ON CONFLICT (month) DO NOTHING
                    RETURNING month
                ), e AS (
                    INSERT INTO order_events (order_id, at, kind, actor, details)
                    SELECT id, $7, 'followup_sampled', $6, $8::jsonb
                    FROM unnest($5::bigint[]) AS id WHERE EXISTS (SELECT 1 FROM s)
                )
                SELECT month FROM s
                """,
                month,
                seed,
                share,
                candidates,
                list(order_ids),
                by,
                dt(at),
                details,
            )
        return done is not None

    async def sample_month_of(self, order_id: int) -> str | None:
        """The month of the follow-up sample that drew ``order_id``, or None."""
        with translated():
            month: str | None = await self.pool.fetchval(
                "SELECT month FROM followup_samples WHERE $1 = ANY (order_ids)", order_id
            )
        return month

    async def call_list(self, order_ids: Sequence[int]) -> list[dict[str, Any]]:
        """The operators' call list: each sampled order with the applicant's phone, the agent,
        the item, the rating, and the latest call (None before any)."""
        with translated():
            rows = await self.pool.fetch(
                """
                SELECT o.id, o.applicant_name, o.applicant_phone, o.claimed_by, a.name AS agent,
                       o.item, o.item_name, o.text, o.rating, o.grid,
                       fc.reached, fc.satisfied, fc.comment, fc.contradicts, fc.at AS called_at,
                       fc.by_whom AS called_by
                FROM orders o
                LEFT JOIN agents a ON a.id = o.claimed_by
                LEFT JOIN LATERAL (
                    SELECT * FROM followup_calls f WHERE f.order_id = o.id ORDER BY f.id DESC
                    LIMIT 1
                ) fc ON true
                WHERE o.id = ANY ($1::bigint[])
                ORDER BY o.id
                """,
                list(order_ids),
            )
        out = []
        for r in rows:
            call = None
            if r["called_at"] is not None:
                call = {
                    "reached": r["reached"],
                    "satisfied": r["satisfied"],
                    "comment": r["comment"],
                    "contradicts": r["contradicts"],
                    "at": ms(r["called_at"]),
                    "by": r["called_by"],
                }
            out.append(
                {
                    "order_id": r["id"],
                    "applicant_name": r["applicant_name"],
                    "applicant_phone": r["applicant_phone"],
                    "agent_id": r["claimed_by"],
                    "agent_name": r["agent"],
                    "grid": r["grid"],
                    "item": r["item"],
                    "item_name": r["item_name"] or r["text"],
                    "rating": _rating(r["rating"]),
                    "call": call,
                }
            )
        return out

    async def record_call(
        self, order_id: int, month: str, outcome: Outcome, contradicts: bool, by: str, at: int
    ) -> None:
        """Record a follow-up call and its trail event (``followup_called`` when the applicant
        was reached, ``followup_unreached`` when not), together."""
        kind = "followup_called" if outcome.reached else "followup_unreached"
        details = {
            "month": month,
            "reached": outcome.reached,
            "satisfied": outcome.satisfied,
            "comment": outcome.comment,
            "contradicts": contradicts,
        }
        with translated():
            await self.pool.execute(
                """
                WITH c AS (
                    INSERT INTO followup_calls (order_id, month, reached, satisfied, comment,
                                                contradicts, by_whom, at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                    RETURNING order_id
                )
                INSERT INTO order_events (order_id, at, kind, actor, details)
                SELECT order_id, $8, $9, $7, $10::jsonb FROM c
                """,
                order_id,
                month,
                outcome.reached,
                outcome.satisfied,
                outcome.comment,
                contradicts,
                by,
                dt(at),
                kind,
                json.dumps(details, ensure_ascii=False),
            )

    # --- fair play -------------------------------------------------------------------------

    async def record_fairplay(
        self, offers: Mapping[tuple[int, str], int], claims: Sequence[ClaimRow], now: int
    ) -> None:
        """Add offer deliveries (counted on the local day of ``now``) and claim timings."""
        day = _dt.datetime.fromtimestamp(now / 1000, CHINA).date()
        with translated():
            async with self.pool.acquire() as conn, conn.transaction():
                if offers:
                    await conn.executemany(
                        "INSERT INTO offer_deliveries (day, agent_id, grid, offers)"
                        " VALUES ($1, $2, $3, $4) ON CONFLICT (day, agent_id, grid)"
                        " DO UPDATE SET offers = offer_deliveries.offers + EXCLUDED.offers",
                        [(day, a, g, n) for (a, g), n in sorted(offers.items())],
                    )
                if claims:  # by COPY: a contended order leaves a thousand rows at once
                    await conn.copy_records_to_table(
                        "claim_timings",
                        columns=CLAIM_TIMING_COLUMNS,
                        records=[
                            (
                                c.agent_id,
                                c.order_id,
                                None if c.delivered_at is None else dt(c.delivered_at),
                                dt(c.received_at),
                                None
                                if c.delivered_at is None
                                else max(0, c.received_at - c.delivered_at),
                                c.outcome,
                                c.ignored,
                            )
                            for c in claims
                        ],
                    )

    async def offer_counts(
        self, first_day: _dt.date, last_day: _dt.date
    ) -> dict[tuple[int, str], int]:
        """Offers delivered per (agent, grid) over local days ``first_day..last_day``."""
        with translated():
            rows = await self.pool.fetch(
                "SELECT agent_id, grid, sum(offers)::bigint AS n FROM offer_deliveries"
                " WHERE day BETWEEN $1 AND $2 GROUP BY agent_id, grid",
                first_day,
                last_day,
            )
        return {(r["agent_id"], r["grid"]): r["n"] for r in rows}

    async def claim_timings(self, start: int, end: int) -> list[ClaimTiming]:
        """Claims received in ``[start, end)``, each with its order's grid."""
        with translated():
            rows = await self.pool.fetch(
                "SELECT t.agent_id, t.order_id, coalesce(o.grid, '') AS grid, t.delivered_at,"
                " t.received_at, t.outcome, t.ignored FROM claim_timings t"
                " LEFT JOIN orders o ON o.id = t.order_id"
                " WHERE t.received_at >= $1 AND t.received_at < $2 ORDER BY t.id",
                dt(start),
                dt(end),
            )
        return [
            ClaimTiming(
                r["agent_id"],
                r["order_id"],
                r["grid"],
                ms(r["delivered_at"]),
                ms(r["received_at"]) or 0,
                r["outcome"],
                r["ignored"],
            )
            for r in rows
        ]

    # --- oversight -------------------------------------------------------------------------

    async def order_facts(self, start: int, end: int) -> list[OrderFacts]:
        """One :class:`OrderFacts` per order filed in ``[start, end)``."""
        with translated():
            rows = await self.pool.fetch(
                """
                SELECT o.id, o.grid, o.status, o.created_at, o.due_at, o.replied_at, o.rating,
                       (SELECT min(e.at) FROM order_events e
                        WHERE e.order_id = o.id AND e.kind = 'claimed') AS first_claim_at,
                       EXISTS (SELECT 1 FROM order_events e
                               WHERE e.order_id = o.id AND e.kind = 'widened') AS widened,
                       EXISTS (SELECT 1 FROM order_events e
                               WHERE e.order_id = o.id AND e.kind = 'escalated') AS escalated
                FROM orders o WHERE o.created_at >= $1 AND o.created_at < $2 ORDER BY o.id
                """,
                dt(start),
                dt(end),
            )
        return [
            OrderFacts(
                r["id"],
                r["grid"],
                r["status"],
                ms(r["created_at"]) or 0,
                ms(r["first_claim_at"]),
                r["widened"],
                r["escalated"],
                ms(r["due_at"]),
                ms(r["replied_at"]),
                _rating(r["rating"]),
            )
            for r in rows
        ]

    async def agent_activity(self) -> list[Activity]:
        """Every active agent with the time it last claimed, accepted or replied to an order
        it still holds or handled (one pass over orders; no index on the trail's actors)."""
        with translated():
            rows = await self.pool.fetch(
                """
                SELECT a.id, a.name, a.grids, last.at
                FROM agents a
                LEFT JOIN (
                    SELECT claimed_by, max(greatest(claimed_at, accepted_at, replied_at)) AS at
                    FROM orders WHERE claimed_by IS NOT NULL GROUP BY claimed_by
                ) last ON last.claimed_by = a.id
                WHERE a.active ORDER BY a.id
                """
            )
        return [Activity(r["id"], r["name"], tuple(r["grids"]), ms(r["at"])) for r in rows]
