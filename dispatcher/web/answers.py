"""The schemas of the answers (JSON Schema of what the HTTP routes answer), for
:mod:`dispatcher.web.schemas` and the operations tables."""

from __future__ import annotations

from typing import Any

from dispatcher.core.catalog import Level
from dispatcher.core.orders import ClaimOutcome, Status
from dispatcher.core.points import Rating

Json = dict[str, Any]

_MS = {"type": "integer", "description": "epoch milliseconds"}
_MS_OR_NULL = {"type": ["integer", "null"], "description": "epoch milliseconds, or null"}
_STR_OR_NULL = {"type": ["string", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}
_STRINGS = {"type": "array", "items": {"type": "string"}}

ORDER: Json = {
    "type": "object",
    "description": "A work order (代办工单).  Clients ignore fields they do not know.",
    "required": [
        "id",
        "status",
        "grid",
        "item",
        "text",
        "item_class",
        "created_at",
        "widen_at",
        "scope",
        "claimed_by",
        "claimed_at",
        "version",
    ],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "status": {"type": "string", "enum": [s.value for s in Status]},
        "grid": {"type": "string"},
        "item": _STR_OR_NULL,
        "text": _STR_OR_NULL,
        "item_class": {"type": ["integer", "null"], "enum": [1, 2, None]},
        "created_at": _MS,
        "widen_at": _MS,
        "scope": {"type": "string", "enum": ["grid", "all"]},
        "claimed_by": _INT_OR_NULL,
        "claimed_at": _MS_OR_NULL,
        "version": {"type": "integer", "minimum": 1},
        "reach": {"type": "string"},
        "offered_grids": {"type": ["array", "null"], "items": {"type": "string"}},
        "next_step_at": _MS_OR_NULL,
        "escalate_at": _MS_OR_NULL,
        "item_name": _STR_OR_NULL,
        "materials": _STRINGS,
        "time_limit_days": _INT_OR_NULL,
        "missing": _STRINGS,
        "supply_by": _MS_OR_NULL,
        "accepted_at": _MS_OR_NULL,
        "due_at": _MS_OR_NULL,
        "replied_at": _MS_OR_NULL,
        "close_at": _MS_OR_NULL,
        "rating": {"type": ["string", "null"], "enum": [*(r.value for r in Rating), None]},
        "rating_label": _STR_OR_NULL,
        "overdue": {"type": "boolean"},
        "applicant": {
            "type": "object",
            "description": "Only for admins, the claiming agent and the tracking token.",
        },
        "routing": {"type": ["object", "null"], "description": "Only for admins."},
    },
}


def _with(base: Json, **props: Json) -> Json:
    out = dict(base)
    out["properties"] = {**base["properties"], **props}
    out["required"] = [*base["required"], *props]
    return out


EVENT = {
    "type": "object",
    "required": ["kind", "label", "at"],
    "properties": {
        "kind": {"type": "string"},
        "label": {"type": "string"},
        "at": _MS,
        "details": {"type": "object"},
    },
}
FILED = _with(
    ORDER,
    tracking_token={"type": "string", "description": "The applicant's token for this order."},
    tracking_url={"type": "string", "description": "The applicant's page, token in the fragment."},
)
ACTED = _with(ORDER, event=EVENT)
CLAIM_RESULT = {
    "type": "object",
    "required": ["type", "request_id", "order_id", "result"],
    "properties": {
        "type": {"const": "claim_result"},
        "request_id": {"type": ["string", "integer"]},
        "order_id": {"type": "integer"},
        "result": {"type": "string", "enum": [o.value for o in ClaimOutcome]},
    },
}
GRID = {
    "type": "object",
    "required": ["code", "name", "level", "parent"],
    "properties": {
        "code": {"type": "string"},
        "name": {"type": "string"},
        "level": {"type": "string"},
        "parent": _STR_OR_NULL,
    },
}
AGENT_MAP = {
    "type": "object",
    "required": ["id", "name", "phone", "grids", "active"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "phone": {"type": "string"},
        "grids": _STRINGS,
        "active": {"type": "boolean"},
    },
}
NEW_AGENT = _with(AGENT_MAP, token={"type": "string", "description": "Shown only here."})
ITEM = {
    "type": "object",
    "required": ["code", "name", "category", "item_class", "materials", "level", "retired"],
    "properties": {
        "code": {"type": "string"},
        "name": {"type": "string"},
        "category": {"type": "string"},
        "item_class": {"type": "integer", "enum": [1, 2]},
        "eligible": {"type": "string"},
        "materials": _STRINGS,
        "steps": _STRINGS,
        "time_limit_days": {"type": "integer"},
        "fee": {"type": "string"},
        "level": {"type": "string", "enum": [lv.value for lv in Level]},
        "retired": {"type": "boolean"},
    },
}


def list_of(name: str, item: Json, **more: Json) -> Json:
    return {
        "type": "object",
        "required": [name],
        "properties": {name: {"type": "array", "items": item}, **more},
    }


HEALTH = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
