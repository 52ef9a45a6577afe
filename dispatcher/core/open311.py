"""Open311 GeoReport v2 in our terms: a pure mapping, no I/O.

The catalogue's items are GeoReport *services* (``service_code`` = item code, ``group`` =
category); an item's required materials are the *attributes* of its service definition (one
yes/no question per material: does the applicant have it?); an order is a *service request*
(``service_request_id`` = order id).  :mod:`dispatcher.web.open311` does the HTTP and the
encodings; this module decides what each field says.

Privacy: public reads carry no personal data of the applicant: no name, phone, free text
(``description``), contact address or exact location.  ``address`` and ``lat``/``long`` are the
order's *grid* (its place names and a point inside it), never the applicant's home.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from dispatcher.core.catalog import Item, Level
from dispatcher.core.orders import Order, Status

SPEC_URL = "http://wiki.open311.org/GeoReport_v2"
CLOSED_STATUSES = frozenset({Status.REPLIED, Status.CLOSED, Status.CANCELLED})
"""Our states that GeoReport calls ``closed``: the result is delivered, or it was cancelled.
Every other state (offered, widened, claimed, accepted, awaiting materials, escalated) is
``open``."""

ATTRIBUTE_VALUES = (("yes", "有"), ("no", "没有"))
MAX_SPAN_MS = 90 * 86_400_000  # GeoReport: a date range may not span more than 90 days
MAX_REQUESTS = 1000  # GeoReport: the first 1000 requests at most
EARLIEST_MS, LATEST_MS = 0, 253_402_300_799_999  # the dates a query may name: 1970 to 9999

_DESKS = {
    Level.VILLAGE: "便民服务站",
    Level.TOWNSHIP: "便民服务中心",
    Level.COUNTY: "政务服务中心",
}


def status_of(status: Status) -> str:
    """``open`` or ``closed``."""
    return "closed" if status in CLOSED_STATUSES else "open"


def statuses_for(open311_status: str) -> tuple[Status, ...]:
    """Our states behind ``open`` or ``closed``.  Raises ValueError for anything else."""
    if open311_status == "closed":
        return tuple(sorted(CLOSED_STATUSES))
    if open311_status == "open":
        return tuple(s for s in Status if s not in CLOSED_STATUSES)
    raise ValueError(open311_status)


def iso(ms: int | None) -> str | None:
    """A GeoReport datetime (W3C, with the time zone): UTC, to the second."""
    if ms is None:
        return None
    moment = dt.datetime.fromtimestamp(ms // 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_w3(text: str) -> int:
    """Epoch ms of a W3C datetime that names its time zone.  Raises ValueError."""
    moment = dt.datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        raise ValueError("a time zone (Z or ±HH:MM) is required")
    return int(moment.timestamp() * 1000)


def service_notice(item: Item) -> str:
    """What the applicant should expect, from the item's service guide."""
    if item.time_limit_days == 0:
        limit = "即办件，当场办结"
    else:
        limit = f"办理时限 {item.time_limit_days} 个工作日"
    return f"{item.name}：{limit}；{item.level.label}。代办员接单后会联系您。"


def service(item: Item) -> dict[str, Any]:
    """One entry of ``GET services``."""
    return {
        "service_code": item.code,
        "service_name": item.name,
        "description": f"{item.eligible}；{service_notice(item)}",
        "metadata": bool(item.materials),
        "type": "realtime",  # the answer to POST names the order at once
        "keywords": ", ".join((item.category, "一类事项" if item.item_class == 1 else "二类事项")),
        "group": item.category,
    }


def attribute_code(index: int) -> str:
    """The attribute code of the item's material at ``index`` (0-based): M1, M2, ..."""
    return f"M{index + 1}"


def definition(item: Item) -> dict[str, Any]:
    """``GET services/{code}``: the required materials as yes/no attributes."""
    return {
        "service_code": item.code,
        "attributes": [
            {
                "variable": True,
                "code": attribute_code(i),
                "datatype": "singlevaluelist",
                "required": False,
                "datatype_description": "申请人是否已备有此材料（代办员受理时核对）",
                "order": i + 1,
                "description": material,
                "values": [{"key": key, "name": name} for key, name in ATTRIBUTE_VALUES],
            }
            for i, material in enumerate(item.materials)
        ],
    }


class BadAttributeError(ValueError):
    """An ``attribute[...]`` that the service definition does not have, or a bad value."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def materials_line(item: Item, attributes: Mapping[str, str]) -> str | None:
    """The line added to the order's text for the agent: what the applicant says they have
    and lack.  None when no attribute was sent.  Raises :class:`BadAttributeError`."""
    codes = {attribute_code(i): m for i, m in enumerate(item.materials)}
    keys = tuple(key for key, _ in ATTRIBUTE_VALUES)
    have: list[str] = []
    lack: list[str] = []
    for code, value in sorted(attributes.items()):
        if code not in codes:
            raise BadAttributeError(code, f"service {item.code} has no attribute {code!r}")
        if value not in keys:
            raise BadAttributeError(code, f"attribute {code!r} must be one of {', '.join(keys)}")
        (have if value == "yes" else lack).append(codes[code])
    if not have and not lack:
        return None
    parts = []
    if have:
        parts.append("已备：" + "、".join(have))
    if lack:
        parts.append("缺：" + "、".join(lack))
    return "【申请人自述材料】" + "；".join(parts)


def agency(desk: Level, places: Sequence[tuple[str, str]]) -> str:
    """The desk responsible: ``desk``'s service centre in the order's area.

    ``places`` are (level, name) of the order's grid and the areas above it, nearest first;
    without an area of that level the desk is named by its level alone.
    """
    for level, name in places:
        if level == desk.value:
            return f"{name}{_DESKS[desk]}"
    return f"{desk.label}（{_DESKS[desk]}）"


def request(
    order: Order,
    *,
    updated_at: int,
    notes: str | None,
    agency_responsible: str,
    address: str | None,
    point: tuple[float, float] | None,
    expected_at: int | None,
) -> dict[str, Any]:
    """One entry of ``GET requests``: the order as a service request, without personal data."""
    lat, lon = point if point is not None else (None, None)
    return {
        "service_request_id": str(order.id),
        "status": status_of(order.status),
        "status_notes": notes,
        "service_name": order.item_name,
        "service_code": order.item,
        "agency_responsible": agency_responsible,
        "service_notice": None,
        "requested_datetime": iso(order.created_at),
        "updated_datetime": iso(updated_at),
        "expected_datetime": iso(expected_at),
        "address": address,
        "lat": lat,
        "long": lon,
    }
