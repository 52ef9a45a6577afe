"""Checking input from outside: each helper returns a clean value or raises a RequestError.

Codes: ``missing_field`` and ``invalid_value`` (422), ``unknown_field`` (422); the error's
``details`` name the field, so a front end can point at it.

**The text rule** (one rule for every string that comes from outside: HTTP bodies, query
strings, path ids, websocket frames, CSV cells, GeoJSON properties), in :func:`text_problem`:

- valid Unicode scalar values only (no lone surrogates, which JSON's ``\\ud800`` can carry and
  which no encoder, Redis or Postgres accepts);
- no NUL and no other C0 control character nor DEL; free text (``multiline``) may hold tab
  and newline (a CR LF pair is read as a newline);
- NFC-normalised before the length is checked (:func:`clean`), so that one word typed on two
  keyboards is one string;
- ids are ASCII digits only (:func:`ascii_id`): ``"²".isdigit()`` is true but ``int("²")``
  fails.

The web layer and the websocket decoder both call these; nothing that breaks the rule reaches
Redis, Postgres or an encoder.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from dispatcher.exceptions import RequestError

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 -]{2,30}$")


_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_CONTROL_MULTILINE = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")

MAX_ID = 2**63 - 1
"""Ids are positive Postgres ``bigint`` values."""


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """What breaks the text rule in ``value`` (a phrase to follow the field's name), or None."""
    if _SURROGATE.search(value):
        return "is not valid Unicode (it holds a lone surrogate)"
    if "\x00" in value:
        return "must not contain NUL"
    if (_CONTROL_MULTILINE if multiline else _CONTROL).search(value):
        allowed = " other than tab and newline" if multiline else ""
        return f"must not contain control characters{allowed}"
    return None


def clean(value: str, name: str, *, multiline: bool = False) -> str:
    """``value`` checked against the text rule and NFC-normalised; raises ``invalid_value``."""
    if multiline:
        value = value.replace("\r\n", "\n")
    problem = text_problem(value, multiline=multiline)
    if problem is not None:
        raise invalid(name, f"{name!r} {problem}")
    return unicodedata.normalize("NFC", value)


def ascii_id(raw: str) -> int | None:
    """A positive id written in ASCII digits (at most ``MAX_ID``), or None."""
    if not _ASCII_DIGITS.fullmatch(raw):
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ID else None


def id_param(raw: str, name: str) -> int:
    """An id from a path or a query string; raises ``invalid_value`` naming ``name``."""
    value = ascii_id(raw)
    if value is None:
        raise invalid(name, f"{name!r} must be a positive whole number in ASCII digits")
    return value


MAX_DEPTH = 32
"""Nesting of a decoded body (maps and lists) beyond this is refused."""


def clean_tree(value: Any, name: str = "", *, depth: int = 0) -> Any:
    """A decoded body (JSON or MessagePack) with every string, keys too, checked against the
    text rule as free text (tab, newline and CR allowed here; single-line fields are checked
    again by :func:`text`) and NFC-normalised.  Raises ``invalid_value`` naming the field by
    its path (``applicant.name``, ``fees.0.item``)."""
    if isinstance(value, str):
        problem = text_problem(value.replace("\r", ""), multiline=True)
        if problem is not None:
            raise invalid(name or "body", f"{(name or 'body')!r} {problem}")
        return unicodedata.normalize("NFC", value)
    if depth >= MAX_DEPTH and isinstance(value, dict | list):
        raise invalid(name or "body", f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            path = f"{name}.{key}" if name else str(key)
            if isinstance(key, str):
                problem = text_problem(key)
                if problem is not None:
                    where = name or "body"
                    raise invalid(where, f"a field name in {where!r} {problem}")
                key = unicodedata.normalize("NFC", key)
            out[key] = clean_tree(item, path, depth=depth + 1)
        return out
    if isinstance(value, list):
        return [
            clean_tree(item, f"{name}.{i}" if name else str(i), depth=depth + 1)
            for i, item in enumerate(value)
        ]
    return value


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
    multiline: bool = False,
) -> str | None:
    """A non-empty string of at most ``max_len`` characters (after trimming blanks), which
    keeps the text rule (``multiline``: free text, where tab and newline are allowed)."""
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(name, f"{name!r} is required", "missing_field")
        return None
    if not isinstance(value, str):
        raise invalid(name, f"{name!r} must be a string")
    value = clean(value, name, multiline=multiline).strip()
    if not value:
        raise invalid(name, f"{name!r} must not be empty")
    if len(value) > max_len:
        raise invalid(name, f"{name!r} is longer than {max_len} characters")
    if pattern is not None and not pattern.fullmatch(value):
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
        if not isinstance(item, str) or not CODE_RE.fullmatch(item):
            raise invalid(name, f"{name!r} must contain only codes (letters, digits, ._:-)")
        if item not in out:
            out.append(item)
    return out
