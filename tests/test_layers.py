"""The folders are layers, and the imports keep them: read with ``ast``, no import needed.

- ``dispatcher/core`` is the pure rules: it imports only the core, ``dispatcher.exceptions``
  and the standard library's pure modules (no asyncio, sockets, Redis, asyncpg, Starlette...).
- ``dispatcher/web`` is the HTTP edge: it never reaches Redis or asyncpg, nor the Redis board;
  it goes through a flow, the store or the context.
- ``dispatcher/board`` (Redis) and ``dispatcher/store`` (Postgres) know only the core, and
  never each other; the flows combine them; nothing below ``web`` imports ``web``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "dispatcher"
LAYERS = ("core", "board", "store", "flows", "live", "web")

# What a pure module may import from the standard library (and nothing from outside it).
PURE_STDLIB = {
    "base64", "hmac", "struct", "unicodedata",
    "__future__", "abc", "bisect", "collections", "dataclasses", "datetime", "decimal", "enum",
    "functools", "hashlib", "heapq", "itertools", "json", "math", "operator", "pathlib",
    "random", "re", "statistics", "string", "types", "typing", "zoneinfo",
}  # fmt: skip
# Layer -> dispatcher packages/modules it must not import.
FORBIDDEN = {
    "core": {"board", "store", "flows", "live", "web", "runtime", "context", "auth", "cli"},
    "board": {"store", "flows", "live", "web", "runtime", "context"},
    "store": {"board", "flows", "live", "web", "runtime", "context"},
    "flows": {"web", "runtime", "cli"},
    "live": {"web", "runtime", "cli"},
    "web": {"board", "cli"},
}
WEB_FORBIDDEN_LIBRARIES = {"redis", "asyncpg", "hiredis"}


def imports_of(source: str) -> list[str]:
    """Every module an import statement in ``source`` names (``from a import b`` gives
    ``a`` and ``a.b``, since ``b`` may be a module)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{a.name}" for a in node.names]
    return found


def violations(layer: str, source: str) -> list[str]:
    """The imports of a module of ``layer`` that break the layering."""
    bad: list[str] = []
    for name in imports_of(source):
        parts = name.split(".")
        if parts[0] == "dispatcher":
            if len(parts) > 1 and parts[1] in FORBIDDEN[layer]:
                bad.append(name)
            if layer == "core" and len(parts) > 1 and parts[1] not in ("core", "exceptions"):
                bad.append(name)
        elif layer == "core" and parts[0] not in PURE_STDLIB | {"geo"}:  # geo is pure too
            bad.append(name)
        elif layer == "web" and parts[0] in WEB_FORBIDDEN_LIBRARIES:
            bad.append(name)
    return sorted(set(bad))


def modules(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_imports_only_what_it_may(layer: str) -> None:
    assert modules(layer), f"dispatcher/{layer} has no modules"
    broken = {
        str(p.relative_to(ROOT.parent)): v
        for p in modules(layer)
        if (v := violations(layer, p.read_text(encoding="utf-8")))
    }
    assert broken == {}, f"layer {layer} imports across its boundary: {broken}"


@pytest.mark.parametrize(
    ("layer", "line"),
    [
        ("core", "import asyncio"),
        ("core", "import redis.asyncio as aioredis"),
        ("core", "from dispatcher.store.store import Store"),
        ("core", "from dispatcher import context"),
        ("core", "from starlette.requests import Request"),
        ("web", "import asyncpg"),
        ("web", "from redis.asyncio import Redis"),
        ("web", "from dispatcher.board import scripts as rs"),
        ("store", "from dispatcher.board.board import Board"),
        ("flows", "from dispatcher.web.http import answer"),
    ],
)
def test_the_checker_catches_a_forbidden_import(layer: str, line: str) -> None:
    assert violations(layer, line + "\n"), line


def test_the_checker_allows_what_each_layer_needs() -> None:
    assert violations("core", "import json\nfrom dispatcher.exceptions import ConfigError\n") == []
    assert violations("web", "from dispatcher.flows import filing\nimport starlette\n") == []


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT.parent)): n
        for p in sorted(ROOT.rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}


TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("folder", ["core", "geo"])
def test_pure_tests_are_synchronous_and_need_no_services(folder: str) -> None:
    """tests/core and tests/geo are plain function calls: no coroutine, no server fixture."""
    for path in sorted((TESTS / folder).glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert not any(isinstance(n, ast.AsyncFunctionDef) for n in ast.walk(tree)), path
        names = imports_of(path.read_text(encoding="utf-8"))
        assert not [n for n in names if n.startswith(("tests.servers", "asyncpg", "redis"))], path


def test_tests_mirror_the_layers() -> None:
    """Every layer of dispatcher/ has its folder of tests."""
    for layer in LAYERS:
        assert list((TESTS / layer).glob("test_*.py")), f"tests/{layer} has no tests"
