"""The one wire schema: every frame that crosses a websocket, declared once.

The server, :mod:`clients` and :mod:`loadtest` all import this module, so a frame type or a
field is defined in exactly one place.  PROTOCOL.md is the contract; this is its code.

Frames are maps with a ``type``.  On the wire they are MessagePack in binary websocket frames
(the default) or the same maps as JSON in text frames (``?encoding=json``).  The server
accepts either kind of frame from any client.

:func:`decode` turns raw bytes/text into a frame object or raises :class:`FrameError`, which
carries the stable error ``code`` to answer with (and the ``request_id`` of the bad frame when
one could be read).  :func:`encode` turns a frame object into bytes (msgpack) or text (json).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import msgpack

from dispatcher.core.validate import text_problem
from dispatcher.exceptions import FrameError

MAX_FRAME_BYTES = 64 * 1024
"""A frame larger than this closes the connection with 1009 (PROTOCOL.md)."""

MAX_REQUEST_ID_CHARS = 128

Encoding = Literal["msgpack", "json"]

# Claim answers (PROTOCOL.md, `claim_result.result`).
WON = "won"
TAKEN = "taken"
NOT_OFFERED = "not_offered"
UNKNOWN_ORDER = "unknown_order"
LIMIT_REACHED = "limit_reached"
UNAVAILABLE = "unavailable"
PENDING = "pending"  # the final answer follows in another claim_result (docs/PROTOCOL.md)
CLAIM_RESULTS = frozenset(
    {WON, TAKEN, NOT_OFFERED, UNKNOWN_ORDER, LIMIT_REACHED, UNAVAILABLE, PENDING}
)

# `withdrawn.reason`
WITHDRAWN_REASONS = frozenset({"claimed", "cancelled", "expired"})

# Error codes carried by `error` frames (stable: clients may switch on them).
BAD_FRAME = "bad_frame"  # not msgpack/json, or not a map with a string `type`
UNKNOWN_TYPE = "unknown_type"  # a map whose `type` this server does not accept from a client
INVALID_VALUE = "invalid_value"  # a known frame with a missing or wrongly typed field
FORBIDDEN = "forbidden"
RATE_LIMITED = "rate_limited"
TOO_FAST = "too_fast"  # a claim ignored by the minimum-reaction rule (BANGBAN_MIN_REACTION_MS)
INTERNAL = "internal_error"  # handling this one frame failed; the connection stays open


# --- server to agent ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Welcome:
    agent_id: int
    grids: list[str]
    server_time: int
    type: str = field(default="welcome", init=False)


@dataclass(frozen=True, slots=True)
class Offer:
    """An order open to the receiving agent.  ``order`` is the order map of PROTOCOL.md.

    ``at_limit``: the agent holds as many orders as allowed, so claiming this one would get
    ``limit_reached`` (the app greys it out).  Sent only when true.
    """

    order: dict[str, Any]
    at_limit: bool = False
    type: str = field(default="offer", init=False)


@dataclass(frozen=True, slots=True)
class Held:
    """How many orders the agent holds and how many it may: sent after ``welcome`` and
    whenever the count changes, so an app can grey out offers or enable them again."""

    held: int
    limit: int
    type: str = field(default="held", init=False)


@dataclass(frozen=True, slots=True)
class Update:
    """An order the receiving agent holds, or held until this change, changed: assigned to it
    by an operator, reassigned away, cancelled, rated...  ``event`` is the trail entry."""

    order: dict[str, Any]
    event: dict[str, Any] | None = None
    type: str = field(default="update", init=False)


@dataclass(frozen=True, slots=True)
class SnapshotDone:
    """Every order open to the agent at connect time has been sent (``offers`` of them, its
    own grids' first, newest first); what follows is live."""

    offers: int
    type: str = field(default="snapshot_done", init=False)


@dataclass(frozen=True, slots=True)
class Withdrawn:
    order_id: int
    reason: str
    type: str = field(default="withdrawn", init=False)


@dataclass(frozen=True, slots=True)
class ClaimResult:
    request_id: Any
    order_id: int
    result: str
    type: str = field(default="claim_result", init=False)


@dataclass(frozen=True, slots=True)
class Error:
    """A refused frame.  ``field``: the frame's field at fault, when one is (sent when set)."""

    code: str
    message: str
    request_id: Any = None
    field: str | None = None
    type: str = dataclasses.field(default="error", init=False)  # (`field` is taken above)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """Applicant tracking: the full order after every change, and the step that changed it
    (``event``: ``kind``, ``label`` for people, ``at``, ``details``; sent when known)."""

    order: dict[str, Any]
    event: dict[str, Any] | None = None
    type: str = field(default="status", init=False)


# --- agent to server ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    order_id: int
    request_id: Any
    type: str = field(default="claim", init=False)


@dataclass(frozen=True, slots=True)
class Ping:
    """Application-level keepalive; the server answers with :class:`Pong`."""

    request_id: Any = None
    type: str = field(default="ping", init=False)


@dataclass(frozen=True, slots=True)
class Pong:
    request_id: Any = None
    server_time: int = 0
    type: str = field(default="pong", init=False)


ServerFrame = (
    Welcome
    | Offer
    | Withdrawn
    | ClaimResult
    | Error
    | StatusChange
    | Pong
    | Held
    | Update
    | SnapshotDone
)
ClientFrame = Claim | Ping
Frame = ServerFrame | ClientFrame


_OPTIONAL: dict[str, Any] = {"at_limit": False, "event": None}
"""Fields added to v1 frames, left out at their default so v1 frames stay as they were."""


def to_map(frame: Frame) -> dict[str, Any]:
    """The frame as a plain map, ``type`` first, ``None`` fields omitted for `error`."""
    out: dict[str, Any] = {"type": frame.type}
    for name in frame.__dataclass_fields__:
        if name == "type":
            continue
        value = getattr(frame, name)
        if value is None and isinstance(frame, Error | Pong | Ping):
            continue
        if name in _OPTIONAL and value == _OPTIONAL[name] and not isinstance(frame, Update):
            continue
        out[name] = value
    return out


def pack(data: dict[str, Any], encoding: Encoding) -> bytes | str:
    """Encode one map for the wire: bytes for msgpack (binary frame), str for json (text)."""
    if encoding == "msgpack":
        packed: bytes = msgpack.packb(data, use_bin_type=True)
        return packed
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def encode(frame: Frame, encoding: Encoding = "msgpack") -> bytes | str:
    return pack(to_map(frame), encoding)


def unpack(data: bytes | str) -> dict[str, Any]:
    """Raw websocket payload to a map.  Raises :class:`FrameError` (``bad_frame``)."""
    size = len(data)
    if size > MAX_FRAME_BYTES:
        # The transport closes with 1009 before we get here; this guards other callers.
        raise FrameError(BAD_FRAME, f"frame of {size} bytes exceeds {MAX_FRAME_BYTES}")
    try:
        if isinstance(data, bytes | bytearray | memoryview):
            obj = msgpack.unpackb(data, raw=False, strict_map_key=False)
        else:
            obj = json.loads(data)
    except Exception as exc:  # msgpack raises several unrelated types; all mean "unparseable"
        raise FrameError(BAD_FRAME, f"frame is not valid MessagePack or JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise FrameError(BAD_FRAME, "frame must be a map with a 'type'")
    if not isinstance(obj.get("type"), str):
        raise FrameError(BAD_FRAME, "frame has no string 'type'", _request_id(obj))
    problem = text_problem(obj["type"])
    if problem is not None:
        raise FrameError(INVALID_VALUE, f"'type' {problem}", _request_id(obj), "type")
    return obj


def _request_id(obj: dict[str, Any]) -> Any:
    rid = obj.get("request_id")
    return rid if valid_request_id(rid) else None


def valid_request_id(rid: Any) -> bool:
    if isinstance(rid, bool):
        return False
    if isinstance(rid, int):
        return -(2**63) <= rid < 2**64
    return (
        isinstance(rid, str) and 0 < len(rid) <= MAX_REQUEST_ID_CHARS and text_problem(rid) is None
    )


def _check_request_id(obj: dict[str, Any]) -> None:
    """A ``request_id`` string that breaks the text rule is refused, never echoed: no encoder
    could send it back (a lone surrogate) and it must not reach Redis as an answer key."""
    rid = obj.get("request_id")
    if isinstance(rid, str):
        problem = text_problem(rid)
        if problem is not None:
            raise FrameError(INVALID_VALUE, f"'request_id' {problem}", None, "request_id")


def _order_id(value: Any, request_id: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise FrameError(
            INVALID_VALUE, "'order_id' must be a positive integer", request_id, "order_id"
        )
    return value


def decode_client(data: bytes | str) -> ClientFrame:
    """Parse and validate one frame sent by an agent.  Raises :class:`FrameError`."""
    obj = unpack(data)
    kind = obj["type"]
    _check_request_id(obj)
    rid = _request_id(obj)
    if kind == "claim":
        if not valid_request_id(obj.get("request_id")):
            raise FrameError(
                INVALID_VALUE,
                f"'request_id' must be a non-empty string of at most {MAX_REQUEST_ID_CHARS} "
                "characters or an integer",
                field="request_id",
            )
        return Claim(order_id=_order_id(obj.get("order_id"), rid), request_id=rid)
    if kind == "ping":
        return Ping(request_id=rid)
    raise FrameError(UNKNOWN_TYPE, f"frame type {kind[:40]!r} is not accepted from a client", rid)


_SERVER_TYPES: dict[str, type[ServerFrame]] = {
    "welcome": Welcome,
    "offer": Offer,
    "withdrawn": Withdrawn,
    "claim_result": ClaimResult,
    "error": Error,
    "status": StatusChange,
    "pong": Pong,
    "held": Held,
    "update": Update,
    "snapshot_done": SnapshotDone,
}


def decode_server(data: bytes | str) -> ServerFrame:
    """Parse one frame sent by the server (for clients).  Raises :class:`FrameError`.

    Unknown fields are ignored, so a client keeps working when the server adds fields.
    """
    obj = unpack(data)
    cls = _SERVER_TYPES.get(obj["type"])
    if cls is None:
        raise FrameError(UNKNOWN_TYPE, f"unknown server frame type {obj['type']!r}")
    names = [n for n in cls.__dataclass_fields__ if n != "type"]
    try:
        return cls(**{n: obj[n] for n in names if n in obj})
    except TypeError as exc:
        raise FrameError(INVALID_VALUE, f"{obj['type']} frame is missing a field: {exc}") from None
