"""Checking request bodies: each helper returns a clean value or raises a RequestError.

Codes: ``missing_field`` and ``invalid_value`` (422), ``unknown_field`` (422); the error's
``details`` name the field, so a front end can point at it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from dispatcher.exceptions import RequestError

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 -]{2,30}$")


def invalid(name: str, message: str, code: str = "invalid_value") -> RequestError:
    return RequestError(message, code=code, status=422, details={"field": name})


def only_fields(body: dict[str, Any], allowed: Iterable[str]) -> None:
    extra = sorted(set(body) - set(allowed))
    if extra:
        raise invalid(extra[0], f"unknown field {extra[0]!r}", "unknown_field")


def text(
    body: dict[str, Any],
    name: str,
    *,
    max_len: int,
    required: bool = True,
    pattern: re.Pattern[str] | None = None,
) -> str | None:
    """A non-empty string of at most ``max_len`` characters (after trimming blanks)."""
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(name, f"{name!r} is required", "missing_field")
        return None
    if not isinstance(value, str):
        raise invalid(name, f"{name!r} must be a string")
    value = value.strip()
    if not value:
        raise invalid(name, f"{name!r} must not be empty")
    if len(value) > max_len:
        raise invalid(name, f"{name!r} is longer than {max_len} characters")
    if pattern is not None and not pattern.match(value):
        raise invalid(name, f"{name!r} has an invalid format")
    return value


def code(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    """An identifier such as a grid or item code: letters, digits and ``._:-``, ≤ 64."""
    return text(body, name, max_len=64, required=required, pattern=CODE_RE)


def number(body: dict[str, Any], name: str, lo: float, hi: float) -> float:
    value = body.get(name)
    if value is None:
        raise invalid(name, f"{name!r} is required", "missing_field")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(name, f"{name!r} must be a number")
    if not lo <= value <= hi:
        raise invalid(name, f"{name!r} must be between {lo} and {hi}")
    return float(value)


def mapping(body: dict[str, Any], name: str, *, required: bool = True) -> dict[str, Any] | None:
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(name, f"{name!r} is required", "missing_field")
        return None
    if not isinstance(value, dict):
        raise invalid(name, f"{name!r} must be an object")
    return value


def code_list(body: dict[str, Any], name: str, *, max_items: int = 100) -> list[str]:
    value = body.get(name)
    if value is None:
        raise invalid(name, f"{name!r} is required", "missing_field")
    if not isinstance(value, list) or not value:
        raise invalid(name, f"{name!r} must be a non-empty list of codes")
    if len(value) > max_items:
        raise invalid(name, f"{name!r} has more than {max_items} entries")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not CODE_RE.match(item):
            raise invalid(name, f"{name!r} must contain only codes (letters, digits, ._:-)")
        if item not in out:
            out.append(item)
    return out
