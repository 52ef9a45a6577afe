"""Query and body parameters of the points and oversight endpoints: each helper returns a clean
value or raises 422 (``missing_field``, ``invalid_value``, ``unknown_field``) naming the field."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request

from dispatcher.core import ledger as L
from dispatcher.core import validate
from dispatcher.core.workdays import CHINA


def month(raw: str | None, name: str = "month") -> str:
    if raw is None:
        raise validate.invalid(name, f"{name!r} is required (YYYY-MM)", "missing_field")
    try:
        L.parse_month(raw)
    except ValueError:
        raise validate.invalid(name, f"{name!r} must be YYYY-MM, e.g. 2026-11") from None
    return raw


def quarter(raw: str | None, name: str = "quarter") -> str:
    if raw is None:
        raise validate.invalid(name, f"{name!r} is required (YYYY-Qn)", "missing_field")
    try:
        L.parse_quarter(raw)
    except ValueError:
        raise validate.invalid(name, f"{name!r} must be YYYY-Qn, e.g. 2026-Q4") from None
    return raw


def period(request: Request) -> tuple[str, tuple[str, ...], int, int]:
    """``?month=`` or ``?quarter=`` (exactly one): (label, months, start, end)."""
    q = request.query_params
    if ("month" in q) == ("quarter" in q):
        raise validate.invalid("month", "give either 'month' (YYYY-MM) or 'quarter' (YYYY-Qn)")
    if "month" in q:
        m = month(q["month"])
        return (m, (m,), *L.month_bounds(m))
    qn = quarter(q["quarter"])
    return (qn, L.quarter_months(qn), *L.quarter_bounds(qn))


def query_id(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 2**62:
        raise validate.invalid(name, f"{name!r} must be a positive whole number")
    return int(raw)


def query_int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise validate.invalid(name, f"{name!r} must be a whole number from {lo} to {hi}")
    return int(raw)


def only_params(request: Request, allowed: Sequence[str]) -> None:
    extra = sorted(set(request.query_params) - {*allowed, "format"})
    if extra:
        raise validate.invalid(extra[0], f"unknown parameter {extra[0]!r}", "unknown_field")


def body_id(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if value is None:
        raise validate.invalid(name, f"{name!r} is required", "missing_field")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**62:
        raise validate.invalid(name, f"{name!r} must be a positive whole number")
    return value


def flag(data: dict[str, Any], name: str, *, nullable: bool = False) -> bool | None:
    value = data.get(name)
    if value is None and nullable:
        return None
    if not isinstance(value, bool):
        raise validate.invalid(
            name,
            f"{name!r} must be true or false",
            "missing_field" if value is None else "invalid_value",
        )
    return value


def local_day(at: int) -> dt.date:
    return dt.datetime.fromtimestamp(at / 1000, CHINA).date()
