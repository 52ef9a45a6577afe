"""The wire schema: encoding both ways, and every way a client frame can be bad."""

from __future__ import annotations

import json

import msgpack
import pytest

from dispatcher.exceptions import FrameError
from dispatcher.live import wire


def test_round_trip_msgpack_and_json() -> None:
    for frame in (
        wire.Welcome(1, ["g1"], 123),
        wire.Offer({"id": 1, "version": 2}),
        wire.Withdrawn(1, "claimed"),
        wire.ClaimResult("r1", 1, "won"),
        wire.Error("bad_frame", "nope", "r2"),
        wire.StatusChange({"id": 1}),
        wire.Offer({"id": 1, "version": 2}, at_limit=True),
        wire.StatusChange(
            {"id": 1}, {"kind": "accepted", "label": "代办员已受理您的申请", "at": 5}
        ),
        wire.Held(2, 5),
        wire.Update({"id": 1}, {"kind": "reassigned"}),
    ):
        for encoding in ("msgpack", "json"):
            assert wire.decode_server(wire.encode(frame, encoding)) == frame  # type: ignore[arg-type]


def test_msgpack_is_binary_and_json_is_text() -> None:
    assert isinstance(wire.encode(wire.Withdrawn(1, "claimed")), bytes)
    assert json.loads(wire.encode(wire.Withdrawn(1, "claimed"), "json")) == {
        "type": "withdrawn",
        "order_id": 1,
        "reason": "claimed",
    }


def test_client_claim_accepted_in_either_encoding() -> None:
    m = {"type": "claim", "order_id": 5, "request_id": "abc"}
    assert wire.decode_client(msgpack.packb(m)) == wire.Claim(5, "abc")
    assert wire.decode_client(json.dumps(m)) == wire.Claim(5, "abc")
    assert wire.decode_client(json.dumps({**m, "request_id": 17})) == wire.Claim(5, 17)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\xc1\xc1\xc1", wire.BAD_FRAME),  # not msgpack
        ("{not json", wire.BAD_FRAME),
        (msgpack.packb([1, 2, 3]), wire.BAD_FRAME),  # not a map
        (msgpack.packb({"order_id": 1}), wire.BAD_FRAME),  # no type
        (msgpack.packb({"type": 5}), wire.BAD_FRAME),
        (msgpack.packb({"type": "dance"}), wire.UNKNOWN_TYPE),
        (msgpack.packb({"type": "offer", "order": {}}), wire.UNKNOWN_TYPE),  # server-only type
        (msgpack.packb({"type": "claim", "order_id": 1}), wire.INVALID_VALUE),  # no request_id
        (msgpack.packb({"type": "claim", "request_id": "r"}), wire.INVALID_VALUE),
        (msgpack.packb({"type": "claim", "order_id": "1", "request_id": "r"}), wire.INVALID_VALUE),
        (msgpack.packb({"type": "claim", "order_id": -1, "request_id": "r"}), wire.INVALID_VALUE),
        (msgpack.packb({"type": "claim", "order_id": True, "request_id": "r"}), wire.INVALID_VALUE),
        (msgpack.packb({"type": "claim", "order_id": 1, "request_id": ""}), wire.INVALID_VALUE),
        (
            msgpack.packb({"type": "claim", "order_id": 1, "request_id": "x" * 129}),
            wire.INVALID_VALUE,
        ),
        (msgpack.packb({"type": "claim", "order_id": 1, "request_id": [1]}), wire.INVALID_VALUE),
        (b"\x00" * (wire.MAX_FRAME_BYTES + 1), wire.BAD_FRAME),
    ],
)
def test_bad_client_frames_raise_with_stable_codes(data: bytes | str, code: str) -> None:
    with pytest.raises(FrameError) as err:
        wire.decode_client(data)
    assert err.value.code == code
    assert err.value.message


def test_frame_error_carries_request_id_when_readable() -> None:
    with pytest.raises(FrameError) as err:
        wire.decode_client(msgpack.packb({"type": "claim", "order_id": "x", "request_id": "r9"}))
    assert err.value.request_id == "r9"


def test_server_frames_ignore_unknown_fields() -> None:
    data = msgpack.packb({"type": "withdrawn", "order_id": 1, "reason": "claimed", "new": 1})
    assert wire.decode_server(data) == wire.Withdrawn(1, "claimed")


def test_fields_added_to_v1_frames_are_sent_only_when_set() -> None:
    assert json.loads(wire.encode(wire.Offer({"id": 1}), "json")) == {
        "type": "offer",
        "order": {"id": 1},
    }
    assert json.loads(wire.encode(wire.StatusChange({"id": 1}), "json")) == {
        "type": "status",
        "order": {"id": 1},
    }
    assert json.loads(wire.encode(wire.Offer({"id": 1}, at_limit=True), "json"))["at_limit"]
