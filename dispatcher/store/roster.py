"""Postgres for the roster: grids, agents and tokens.

Mixed into :class:`~dispatcher.store.store.Store`.

Grids carry their boundary as GeoJSON (WGS84) in a jsonb column.  An import replaces the whole
set as a new generation in one transaction: grids missing from the file are retired, never
deleted, so every order keeps the grid it was routed to.  Every change of the grid set adds a
generation row; server processes reload their in-memory :class:`geo.GridSet` when the newest
generation differs from theirs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg
import shapely.geometry

import geo
from dispatcher import auth
from dispatcher.core.roster import Agent, Grid, Principal, TokenKind
from dispatcher.exceptions import UnknownGridError
from dispatcher.store.pg import agent_from_row, ms, translated


def _geo_grid(row: asyncpg.Record) -> geo.Grid:
    geometry = None
    if row["geometry"] is not None:
        geometry = shapely.geometry.shape(json.loads(row["geometry"]))
    return geo.Grid(
        code=row["code"],
        name=row["name"],
        level=geo.parse_level(row["level"]) or "grid",
        parent=row["parent"],
        geometry=geometry,
        aliases=tuple(row["aliases"]),
    )


def _geometry_json(grid: geo.Grid) -> str | None:
    if grid.geometry is None:
        return None
    return json.dumps(shapely.geometry.mapping(grid.geometry))


class RosterStore:
    """Grids and their generations, agents, tokens.  Mixed into Store; uses ``self.pool``."""

    pool: asyncpg.Pool

    async def grid_generation(self) -> int:
        with translated():
            value = await self.pool.fetchval(
                "SELECT coalesce(max(generation), 0) FROM grid_generations"
            )
        return int(value)

    async def grid_set(self) -> geo.GridSet:
        """The live grids (not retired) as a routing set."""
        with translated():
            rows = await self.pool.fetch(
                "SELECT code, name, level, parent, aliases, geometry FROM grids"
                " WHERE retired_at IS NULL ORDER BY code"
            )
        return geo.GridSet(_geo_grid(r) for r in rows)

    async def import_grids(self, grids: geo.GridSet, source: str) -> dict[str, Any]:
        """Replace the live grid set with ``grids`` (validated) as a new generation."""
        with translated():
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute("LOCK TABLE grid_generations IN EXCLUSIVE MODE")
                generation = 1 + await conn.fetchval(
                    "SELECT coalesce(max(generation), 0) FROM grid_generations"
                )
                await conn.executemany(
                    "INSERT INTO grids (code, name, level, parent, aliases, geometry,"
                    " neighbours, generation) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)"
                    " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,"
                    " level = EXCLUDED.level, parent = EXCLUDED.parent,"
                    " aliases = EXCLUDED.aliases, geometry = EXCLUDED.geometry,"
                    " neighbours = EXCLUDED.neighbours, generation = EXCLUDED.generation,"
                    " retired_at = NULL, updated_at = now()",
                    [
                        (
                            g.code,
                            g.name,
                            g.level,
                            g.parent,
                            list(g.aliases),
                            _geometry_json(g),
                            sorted(grids.neighbours(g.code)),
                            generation,
                        )
                        for g in grids
                    ],
                )
                retired = await conn.fetchval(
                    "WITH r AS (UPDATE grids SET retired_at = now() WHERE generation < $1"
                    " AND retired_at IS NULL RETURNING 1) SELECT count(*) FROM r",
                    generation,
                )
                await conn.execute(
                    "INSERT INTO grid_generations (generation, source, grids) VALUES ($1, $2, $3)",
                    generation,
                    source,
                    len(grids),
                )
        return {
            "generation": generation,
            "grids": len(grids),
            "routing_grids": len(grids.leaves),
            "retired": retired,
            "levels": {level: len(grids.at_level(level)) for level in grids.levels},
        }

    async def put_grid(self, grid: geo.Grid, neighbours: Sequence[str]) -> tuple[Grid, bool]:
        """Create or update one grid (a new generation).  Returns (grid, created)."""
        with translated():
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute("LOCK TABLE grid_generations IN EXCLUSIVE MODE")
                generation = 1 + await conn.fetchval(
                    "SELECT coalesce(max(generation), 0) FROM grid_generations"
                )
                row = await conn.fetchrow(
                    "INSERT INTO grids (code, name, level, parent, aliases, geometry, neighbours,"
                    " generation) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)"
                    " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,"
                    " level = EXCLUDED.level, parent = EXCLUDED.parent,"
                    " aliases = EXCLUDED.aliases, geometry = EXCLUDED.geometry,"
                    " neighbours = EXCLUDED.neighbours, retired_at = NULL, updated_at = now()"
                    " RETURNING code, name, level, parent, (xmax = 0) AS created",
                    grid.code,
                    grid.name,
                    grid.level,
                    grid.parent,
                    list(grid.aliases),
                    _geometry_json(grid),
                    list(neighbours),
                    generation,
                )
                await conn.execute(
                    "INSERT INTO grid_generations (generation, source, grids) VALUES ($1, $2, 1)",
                    generation,
                    f"grid {grid.code}",
                )
        assert row is not None
        return Grid(row["code"], row["name"], row["level"], row["parent"]), row["created"]

    async def import_agents(self, rows: Sequence[geo.AgentRow]) -> list[dict[str, Any]]:
        """Create every agent of a roster file, all or nothing.  Returns them with tokens.

        Raises UnknownGridError or StoreConflictError (a phone already registered).
        """
        created: list[dict[str, Any]] = []
        with translated():
            async with self.pool.acquire() as conn, conn.transaction():
                wanted = sorted({g for r in rows for g in r.grids})
                known = {
                    r["code"]
                    for r in await conn.fetch(
                        "SELECT code FROM grids WHERE code = ANY($1::text[])", wanted
                    )
                }
                missing = [g for g in wanted if g not in known]
                if missing:
                    raise UnknownGridError(missing)
                for row in rows:
                    token = auth.new_token(TokenKind.AGENT)
                    rec = await conn.fetchrow(
                        "INSERT INTO agents (name, phone, grids) VALUES ($1, $2, $3)"
                        " RETURNING id, name, phone, grids, active",
                        row.name,
                        row.phone,
                        list(row.grids),
                    )
                    assert rec is not None
                    await conn.execute(
                        "INSERT INTO tokens (digest, kind, name, agent_id)"
                        " VALUES ($1, 'agent', $2, $3)",
                        auth.digest(token),
                        row.name,
                        rec["id"],
                    )
                    agent: Agent = agent_from_row(rec)
                    created.append({**agent.to_wire(), "token": token})
        return created

    # --- grids and agents ----------------------------------------------------------------

    async def list_grids(self) -> list[Grid]:
        with translated():
            rows = await self.pool.fetch(
                "SELECT code, name, level, parent FROM grids WHERE retired_at IS NULL ORDER BY code"
            )
        return [Grid(r["code"], r["name"], r["level"], r["parent"]) for r in rows]

    async def grid_codes(self) -> set[str]:
        with translated():
            rows = await self.pool.fetch("SELECT code FROM grids WHERE retired_at IS NULL")
        return {r["code"] for r in rows}

    async def create_agent(
        self, name: str, phone: str, grids: Sequence[str], token_digest: bytes
    ) -> Agent:
        """Create an agent and its token together.  Raises UnknownGridError, StoreConflictError."""
        with translated():
            async with self.pool.acquire() as conn, conn.transaction():
                known = {
                    r["code"]
                    for r in await conn.fetch(
                        "SELECT code FROM grids WHERE code = ANY($1::text[])", list(grids)
                    )
                }
                missing = [g for g in grids if g not in known]
                if missing:
                    raise UnknownGridError(missing)
                row = await conn.fetchrow(
                    "INSERT INTO agents (name, phone, grids) VALUES ($1, $2, $3)"
                    " RETURNING id, name, phone, grids, active",
                    name,
                    phone,
                    list(grids),
                )
                assert row is not None
                await conn.execute(
                    "INSERT INTO tokens (digest, kind, name, agent_id)"
                    " VALUES ($1, 'agent', $2, $3)",
                    token_digest,
                    name,
                    row["id"],
                )
        return agent_from_row(row)

    async def list_agents(self) -> list[Agent]:
        with translated():
            rows = await self.pool.fetch(
                "SELECT id, name, phone, grids, active FROM agents ORDER BY id"
            )
        return [agent_from_row(r) for r in rows]

    # --- tokens ----------------------------------------------------------------------------

    async def add_token(self, digest: bytes, kind: TokenKind, name: str) -> int | None:
        """Store a token digest (admin or intake); its id.  Adding the same digest again is a
        no-op (None)."""
        with translated():
            token_id: int | None = await self.pool.fetchval(
                "INSERT INTO tokens (digest, kind, name) VALUES ($1, $2, $3)"
                " ON CONFLICT (digest) DO NOTHING RETURNING id",
                digest,
                kind.value,
                name,
            )
        return token_id

    async def revoke_token(self, token_id: int) -> dict[str, Any] | None:
        """Revoke a token (idempotent): its kind, agent and order, or None if there is none."""
        with translated():
            row = await self.pool.fetchrow(
                "UPDATE tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1"
                " RETURNING id, kind, agent_id, order_id, revoked_at",
                token_id,
            )
        if row is None:
            return None
        return {
            "id": row["id"],
            "kind": row["kind"],
            "agent_id": row["agent_id"],
            "order_id": row["order_id"],
            "revoked_at": ms(row["revoked_at"]),
        }

    async def set_agent_active(self, agent_id: int, active: bool) -> Agent | None:
        """Deactivate (its tokens stop working) or reactivate an agent; None if unknown."""
        with translated():
            row = await self.pool.fetchrow(
                "UPDATE agents SET active = $2 WHERE id = $1"
                " RETURNING id, name, phone, grids, active",
                agent_id,
                active,
            )
        return None if row is None else agent_from_row(row)

    async def has_token_of_kind(self, kind: TokenKind) -> bool:
        with translated():
            return bool(
                await self.pool.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM tokens WHERE kind = $1 AND revoked_at IS NULL)",
                    kind.value,
                )
            )

    async def list_tokens(self) -> list[dict[str, Any]]:
        """Token metadata (never the tokens themselves) for operators."""
        with translated():
            rows = await self.pool.fetch(
                "SELECT id, kind, name, agent_id, created_at, revoked_at FROM tokens"
                " WHERE kind IN ('admin', 'intake', 'agent') ORDER BY created_at, id"
            )
        return [
            {
                "id": r["id"],
                "kind": r["kind"],
                "agent_id": r["agent_id"],
                "name": r["name"],
                "created_at": ms(r["created_at"]),
                "revoked_at": ms(r["revoked_at"]),
            }
            for r in rows
        ]

    async def principal(
        self, digest: bytes, tracking_ttl: float = 30 * 86400.0
    ) -> Principal | None:
        """Who holds the token with this digest, or None (unknown, revoked, inactive agent,
        or a tracking token ``tracking_ttl`` seconds after its order closed)."""
        with translated():
            row = await self.pool.fetchrow(
                "SELECT t.kind, t.name, t.order_id, t.id AS token_id, a.id, a.name AS agent_name,"
                " a.phone,"
                " a.grids, a.active FROM tokens t LEFT JOIN agents a ON a.id = t.agent_id"
                " LEFT JOIN orders o ON o.id = t.order_id"
                " WHERE t.digest = $1 AND t.revoked_at IS NULL"
                # A tracking token lapses `tracking_ttl` seconds after its order closed.
                " AND NOT coalesce(o.status IN ('closed', 'cancelled')"
                "          AND o.updated_at < now() - make_interval(secs => $2), false)",
                digest,
                tracking_ttl,
            )
        if row is None:
            return None
        agent = None
        if row["id"] is not None:
            if not row["active"]:
                return None
            agent = Agent(row["id"], row["agent_name"], row["phone"], tuple(row["grids"]))
        return Principal(
            TokenKind(row["kind"]), row["name"], agent, row["order_id"], row["token_id"]
        )

    async def get_agent(self, agent_id: int) -> Agent | None:
        with translated():
            row = await self.pool.fetchrow(
                "SELECT id, name, phone, grids, active FROM agents WHERE id = $1", agent_id
            )
        return None if row is None else agent_from_row(row)
