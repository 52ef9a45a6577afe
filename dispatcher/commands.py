"""The operator commands that need only Postgres: migrate, grids import, agents import.

Each prints a short report and returns the process exit code: 0 done, 1 refused (the file
was at fault: every problem is printed, nothing was changed), 2 Postgres unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import geo
from dispatcher.exceptions import (
    StoreConflictError,
    StoreError,
    StoreUnavailableError,
    UnknownGridError,
)
from dispatcher.store import migrate
from dispatcher.store.store import Store


async def _with_store(dsn: str, work: Callable[[Store], Awaitable[int]]) -> int:
    """Connect, apply pending migrations (saying which), then ``work``."""
    try:
        store = await Store.connect(dsn, attempts=8)
    except StoreUnavailableError as exc:
        print(f"postgres unavailable: {exc}")
        return 2
    try:
        applied = await store.migrate()
        if applied:
            print(f"migrations: applied {len(applied)}: {', '.join(applied)}")
        elif work is _migrate:
            print(f"migrations: up to date ({len(migrate.available())} applied before)")
        return await work(store)
    finally:
        await store.close()


async def _migrate(store: Store) -> int:
    return 0  # _with_store applied them and said so


def _import_grids(path: Path) -> Callable[[Store], Awaitable[int]]:
    async def work(store: Store) -> int:
        try:
            grids = geo.load_grid_file(path)
        except geo.GridImportError as exc:
            print(f"{path}: refused, {len(exc.problems)} problem(s); nothing was changed")
            for p in exc.problems:
                print(f"  feature {p.index} ({p.code or '?'}): {p.problem}: {p.message}")
                if p.repaired is not None:
                    print(f"    repaired geometry offered: {json.dumps(p.repaired)[:200]}")
            return 1
        summary = await store.import_grids(grids, source=f"file {path.name}")
        print(
            f"{path}: generation {summary['generation']}, {summary['grids']} grids"
            f" ({summary['routing_grids']} routing), {summary['retired']} retired,"
            f" levels {summary['levels']}"
        )
        return 0

    return work


def _import_agents(path: Path, tokens_out: Path) -> Callable[[Store], Awaitable[int]]:
    text = path.read_text(encoding="utf-8-sig")

    async def work(store: Store) -> int:
        try:
            rows = geo.parse_agents_csv(text)
        except geo.RosterError as exc:
            print(f"{path}: refused; nothing was changed")
            for p in exc.problems:
                print(f"  line {p.line}: {p.message}")
            return 1
        try:
            created = await store.import_agents(rows)
        except (UnknownGridError, StoreConflictError) as exc:
            print(f"{path}: refused ({exc}); nothing was changed")
            return 1
        _write_tokens(tokens_out, created)
        print(f"{path}: {len(created)} agents created; tokens in {tokens_out}")
        return 0

    return work


def _write_tokens(path: Path, created: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "name", "phone", "grids", "token"])
        for a in created:
            writer.writerow([a["id"], a["name"], a["phone"], ";".join(a["grids"]), a["token"]])
    path.chmod(0o600)


def run(args: argparse.Namespace, dsn: str) -> int:
    work: Callable[[Store], Awaitable[int]]
    if args.command == "migrate":
        work = _migrate

    elif args.command == "grids":
        work = _import_grids(args.file)
    else:
        work = _import_agents(args.file, args.tokens_out)
    try:
        return asyncio.run(_with_store(dsn, work))
    except StoreError as exc:
        print(f"postgres refused: {exc}")
        return 2
