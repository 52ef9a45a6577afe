"""Declared fields check bodies with the validators' codes; their schemas say the same."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from dispatcher.core import fields as f
from dispatcher.core import validate
from dispatcher.core.list_fields import Texts
from dispatcher.core.query import Query
from dispatcher.exceptions import RequestError
from dispatcher.flows.filing import ORDER_BODY, parse_order_request

BODY = f.Obj(
    {
        "code": f.Code(),
        "name": f.Text(5, required=False),
        "n": f.Integer(1, 3),
        "at": f.Obj({"lat": f.Number(-90, 90)}, required=False),
        "tags": Texts(2, 4, checked=True),
        "kind": f.Choice(("a", "b"), required=False),
        "ok": f.Boolean(),
    },
    one_of=(f.OneOf(("name", "n"), "give 'name' or 'n'"),),
)


def refusal(body: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(RequestError) as caught:
        BODY.check_map(body)
    assert caught.value.status == 422
    assert caught.value.details is not None
    return caught.value.code, caught.value.details["field"]


def test_a_good_body_comes_back_clean() -> None:
    clean = BODY.check_map({"code": "g1", "name": "  ab ", "tags": [" x "], "ok": True})
    assert clean == {"code": "g1", "name": "ab", "tags": ("x",), "ok": True}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, ("missing_field", "code")),
        ({"code": "g1", "extra": 1}, ("unknown_field", "extra")),
        ({"code": "bad code"}, ("invalid_value", "code")),
        ({"code": "g1", "name": "toolong"}, ("invalid_value", "name")),
        ({"code": "g1", "n": 4}, ("invalid_value", "n")),
        ({"code": "g1", "n": True}, ("invalid_value", "n")),
        ({"code": "g1", "n": 1, "at": {"lat": 91}}, ("invalid_value", "lat")),
        ({"code": "g1", "n": 1, "tags": ["a", "b", "c"]}, ("invalid_value", "tags")),
        ({"code": "g1", "n": 1, "kind": "c"}, ("invalid_value", "kind")),
        ({"code": "g1", "n": 1, "ok": "yes"}, ("invalid_value", "ok")),
        ({"code": "g1"}, ("missing_field", "name")),
    ],
)
def test_bad_bodies_are_refused_naming_the_field(
    body: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert refusal(body) == expected


def test_the_schema_says_what_the_check_says() -> None:
    """Every sample body: valid by the published schema exactly when the check accepts it
    (the check is allowed to be more lenient only for nulls and blanks around texts)."""
    schema = jsonschema_rs.validator_for(BODY.schema())
    samples: list[dict[str, Any]] = [
        {"code": "g1", "n": 2},
        {"code": "g1", "name": "abc", "at": {"lat": 1.5}, "tags": ["ab"], "kind": "a"},
        {},
        {"code": "g1"},
        {"code": "g1", "n": 0},
        {"code": "g1", "n": 2, "zzz": 1},
        {"code": "-x", "n": 2},
        {"code": "g1", "n": 2, "tags": ["a", "b", "c"]},
        {"code": "g1", "n": 2, "tags": ["abcde"]},
        {"code": "g1", "n": 2, "at": {"lat": 100}},
        {"code": "g1", "n": 2, "at": {"lon": 1}},
        {"code": "g1", "n": 2, "ok": 1},
        {"code": "g1", "n": 2, "kind": "z"},
    ]
    for body in samples:
        try:
            BODY.check_map(body)
            accepted = True
        except RequestError:
            accepted = False
        assert schema.is_valid(body) == accepted, body


def test_the_order_body_is_the_filing_check() -> None:
    schema = ORDER_BODY.schema()
    assert set(schema["properties"]) == {
        "item",
        "text",
        "grid",
        "location",
        "address",
        "applicant",
        "item_class",
    }
    assert schema["additionalProperties"] is False
    req = parse_order_request({"text": "办证", "location": {"lat": 28.1, "lon": 112.9}})
    assert req.location == (28.1, 112.9) and req.text == "办证"
    with pytest.raises(RequestError) as caught:
        parse_order_request({"text": "办证"})
    assert caught.value.details == {"field": "grid"}
    v = jsonschema_rs.validator_for(schema)
    assert not v.is_valid({"text": "办证"}) and v.is_valid({"text": "办证", "grid": "g1"})
    assert schema["properties"]["applicant"]["properties"]["phone"]["pattern"] == (
        validate.PHONE_RE.pattern
    )


def test_query_parameters_are_checked_by_their_declaration() -> None:
    limit = Query("limit", {"type": "integer", "minimum": 0, "maximum": 500}, "Page size.")
    state = Query("state", {"type": "string", "enum": ["a", "b"]}, "State.")
    assert limit.check({"limit": "20"}) == 20 and limit.check({}) is None
    assert state.check({"state": "b"}) == "b"
    for params in ({"limit": "501"}, {"limit": "-1"}, {"limit": "٣"}, {"limit": "x"}):
        with pytest.raises(RequestError) as caught:
            limit.check(params)
        assert caught.value.details == {"field": "limit"}
    with pytest.raises(RequestError, match="one of a, b"):
        state.check({"state": "c"})
    assert limit.parameter()["schema"] == {"type": "integer", "minimum": 0, "maximum": 500}
