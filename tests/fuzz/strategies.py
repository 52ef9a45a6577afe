"""Generators for fuzzing the edge: hostile strings, JSON values of every shape, request
bodies per endpoint and websocket frames per frame type.

To fuzz a new endpoint, add one line to :data:`ENDPOINTS` (a new frame type: one line to
:data:`FRAMES`); ``tests/fuzz/test_fuzz.py`` runs every entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import msgpack
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from dispatcher.core.lifecycle import Action
from dispatcher.web.order_actions import FIELDS

PROFILE = settings(
    max_examples=30,
    derandomize=True,  # the same cases on every run: CI is deterministic
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""Bounded and fixed: a few seconds per endpoint or frame type."""

HOSTILE = [
    "\ud800",  # a lone surrogate (JSON can carry it: "\ud800")
    "\udfff",
    "\x00",
    "\x07",
    "\x1b[31m",
    "\r",
    "²",  # str.isdigit() but not int()
    "١٢",
    "１",
    "e\u0301",  # not NFC
    "9" * 40,
    "-1",
    "0",
    "",
    " ",
    "x" * 300,
]

chars = st.characters(codec=None, categories=None)  # every code point, surrogates included
hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(chars, max_size=40),
    st.lists(st.sampled_from(HOSTILE), min_size=1, max_size=4).map("".join),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(hostile_text, inner, max_size=5)
    ),
    max_leaves=20,
)


def maps_for(fields: tuple[str, ...]) -> st.SearchStrategy[dict[Any, Any]]:
    """Maps with ``fields`` holding values of every shape (some left out, some extra)."""
    known = st.fixed_dictionaries({}, optional={f: json_values for f in fields})
    extra = st.dictionaries(hostile_text, json_values, max_size=2)
    return st.one_of(st.builds(lambda a, b: {**b, **a}, known, extra), known)


def body_for(fields: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """Bodies for an endpoint taking ``fields``: :func:`maps_for`, or any JSON value at all."""
    return st.one_of(maps_for(fields), json_values)


def raw_body(value: Any) -> bytes:
    """JSON with ``\\uXXXX`` escapes (so lone surrogates cross the wire), NaN allowed."""
    return json.dumps(value, ensure_ascii=True).encode()


path_ids = st.one_of(
    st.sampled_from(HOSTILE), st.integers(min_value=-5, max_value=2**64).map(str), hostile_text
).map(lambda s: quote(s.encode("utf-8", "surrogatepass"), safe="") or "%20")
"""Path segments where an id is expected, percent-encoded as a client would send them."""

query_values = path_ids


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # may hold {order} (the victim order), {id} (a fuzzed path id)
    token: str  # which token of the fixture: admin, intake, holder, other, tracking
    fields: tuple[str, ...] = ()
    query: tuple[str, ...] = ()


ORDER_FIELDS = ("grid", "item", "text", "location", "address", "item_class", "applicant")
ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", "/v1/orders", "intake", ORDER_FIELDS),
    Endpoint("POST", "/v1/orders/{order}/claim", "other", ("request_id",)),
    Endpoint("POST", "/v1/orders/{id}/claim", "other", ("request_id",)),
    Endpoint("GET", "/v1/orders/{id}", "admin"),
    Endpoint("GET", "/v1/orders/{id}/events", "admin"),
    Endpoint("POST", "/v1/orders/{order}/classify", "holder", ("item", "version")),
    *(
        Endpoint("POST", f"/v1/orders/{{order}}/{a.value}", who, (*FIELDS[a], "version"))
        for a, who in (
            (Action.ACCEPT, "holder"),
            (Action.SUPPLY, "holder"),
            (Action.PROGRESS, "holder"),
            (Action.REPLY, "holder"),
            (Action.RELEASE, "other"),
            (Action.CANCEL, "tracking"),
            (Action.RATE, "tracking"),
            (Action.REASSIGN, "admin"),
        )
    ),
    Endpoint("POST", "/v1/orders/{id}/accept", "holder", FIELDS[Action.ACCEPT]),
    Endpoint("POST", "/v1/admin/grids", "admin", ("code", "name", "level", "parent", "aliases")),
    Endpoint("POST", "/v1/admin/agents", "admin", ("name", "phone", "grids")),
    Endpoint("POST", "/v1/admin/tokens", "admin", ("kind", "name")),
    Endpoint(
        "POST",
        "/v1/admin/catalog",
        "admin",
        ("code", "name", "item_class", "days", "materials", "department"),
    ),
    Endpoint("PATCH", "/v1/admin/catalog/{id}", "admin", ("name", "materials")),
    Endpoint(
        "GET",
        "/v1/admin/orders",
        "admin",
        query=("status", "overdue", "agent_id", "after", "limit"),
    ),
    Endpoint("GET", "/v1/catalog/{id}", "intake"),
    Endpoint("POST", "/v1/admin/tokens/{id}/revoke", "intake"),  # wrong token: 403, ids fuzzed
    Endpoint("POST", "/v1/admin/agents/{id}/deactivate", "intake"),
]


# --- websocket frames ----------------------------------------------------------------------

FRAMES: dict[str, tuple[str, ...]] = {
    "claim": ("order_id", "request_id"),
    "ping": ("request_id",),
    "pong": ("request_id",),  # server-only types, sent by a client
    "offer": ("order",),
    "claim_result": ("request_id", "order_id", "result"),
}


def frame_maps(kind: str) -> st.SearchStrategy[Any]:
    fields = FRAMES[kind]
    typed = st.builds(lambda body: {**body, "type": kind}, maps_for(fields))
    return st.one_of(typed, typed.map(lambda m: {**m, "type": _retyped(m)}), body_for(fields))


def _retyped(m: dict[str, Any]) -> Any:
    return m.get("request_id", "claim")  # a type of the wrong shape, or a hostile string


def encoded(frame: Any, as_msgpack: bool) -> bytes | str:
    """The frame as a client could send it: msgpack (binary) where it can be packed, else
    JSON text with escapes (lone surrogates included)."""
    if as_msgpack:
        try:
            packed: bytes = msgpack.packb(frame, use_bin_type=True)
            return packed
        except (TypeError, ValueError, OverflowError, UnicodeEncodeError):
            pass
    return json.dumps(frame, ensure_ascii=True)


raw_frames = st.one_of(st.binary(max_size=64), st.text(max_size=64))
"""Bytes and text that are not frames at all."""
