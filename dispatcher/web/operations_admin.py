"""Operations of the operators' admin routes: grids, agents, tokens, the order list, and
revoking tokens and deactivating agents (see :mod:`.schemas`; merged into
:data:`dispatcher.web.operations.OPERATIONS`)."""

from __future__ import annotations

from dispatcher.core.query import Query
from dispatcher.web.answers import AGENT_MAP, GRID, NEW_AGENT, ORDER, list_of
from dispatcher.web.schemas import (
    ADMIN,
    AGENT_BODY,
    GRID_BODY,
    JSON,
    LIST_QUERY,
    TOKEN_BODY,
    Answer,
    Operation,
)

TOKEN_META = {
    "type": "object",
    "required": ["id", "kind", "name", "created_at", "revoked_at"],
    "properties": {
        "id": {"type": "integer"},
        "kind": {"type": "string", "description": "admin, intake or agent"},
        "agent_id": {"type": ["integer", "null"]},
        "name": {"type": "string"},
        "created_at": {"type": "integer", "description": "epoch milliseconds"},
        "revoked_at": {"type": ["integer", "null"], "description": "epoch milliseconds, or null"},
    },
}

REVOKED = {
    "type": "object",
    "required": ["id", "kind", "agent_id", "order_id", "revoked_at"],
    "properties": {
        "id": {"type": "integer"},
        "kind": {"type": "string"},
        "agent_id": {"type": ["integer", "null"]},
        "order_id": {"type": ["integer", "null"]},
        "revoked_at": {"type": "integer", "description": "epoch milliseconds"},
    },
}

_ACTIVE_DOC = (
    " The change reaches every process within a second: the agent's token stops (or starts)"
    " working, open websockets close with 4401.  Idempotent.  A malformed id is 422"
    " `invalid_value`, an unknown one 404."
)


def _agent_active(active: bool) -> Operation:
    verb = "reactivate" if active else "deactivate"
    return Operation(
        f"{verb}_agent",
        "Reactivate an agent" if active else "Deactivate an agent",
        ("Give the agent back its token." if active else "The agent stops receiving offers.")
        + _ACTIVE_DOC,
        "admin",
        (ADMIN,),
        {200: Answer("The agent.", AGENT_MAP)},
        errors={422: ("invalid_value",)},
        path_ids=("agent_id",),
    )


ADMIN_OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/v1/admin/grids"): Operation(
        "put_grid",
        "Create or update one grid",
        "By code: 201 created, 200 updated.  Checked against the live grid set.",
        "admin",
        (ADMIN,),
        {201: Answer("Created.", GRID), 200: Answer("Updated.", GRID)},
        body=GRID_BODY,
        errors={422: ("invalid_grid_file",)},
    ),
    ("GET", "/v1/admin/grids"): Operation(
        "list_grids",
        "The grids",
        "Every live grid.",
        "admin",
        (ADMIN,),
        {200: Answer("The grids.", list_of("grids", GRID))},
    ),
    ("POST", "/v1/admin/grids/import"): Operation(
        "import_grids",
        "Replace the grid set",
        "A GeoJSON FeatureCollection (WGS84), all or nothing.",
        "admin",
        (ADMIN,),
        {200: Answer("What was imported.", {"type": "object"})},
        raw_body={"type": "object", "description": "GeoJSON FeatureCollection"},
        body_media=(JSON, "application/geo+json"),
        query=(
            Query(
                "source",
                {"type": "string", "minLength": 1, "maxLength": 100},
                "Where the file came from (kept; default api).",
            ),
        ),
        errors={422: ("invalid_grid_file", "invalid_value")},
    ),
    ("POST", "/v1/admin/agents/import"): Operation(
        "import_agents",
        "Create agents from a CSV roster",
        "Columns name, phone, grids (separated by ';'); all or nothing.",
        "admin",
        (ADMIN,),
        {201: Answer("The agents, with tokens.", list_of("agents", NEW_AGENT))},
        raw_body={"type": "string"},
        body_media=("text/csv",),
        errors={422: ("invalid_roster", "unknown_grid"), 409: ("duplicate_phone",)},
    ),
    ("POST", "/v1/admin/agents"): Operation(
        "create_agent",
        "Create an agent",
        "The agent's token is in this answer only.",
        "admin",
        (ADMIN,),
        {201: Answer("The agent and its token.", NEW_AGENT)},
        body=AGENT_BODY,
        errors={422: ("unknown_grid",), 409: ("duplicate_phone",)},
    ),
    ("GET", "/v1/admin/agents"): Operation(
        "list_agents",
        "The agents",
        "Every agent (no tokens).",
        "admin",
        (ADMIN,),
        {200: Answer("The agents.", list_of("agents", AGENT_MAP))},
    ),
    ("POST", "/v1/admin/tokens"): Operation(
        "create_token",
        "Create an intake token",
        "For a front end that files orders.  The token is in this answer only.",
        "admin",
        (ADMIN,),
        {
            201: Answer(
                "The token.",
                {
                    "type": "object",
                    "required": ["token", "kind", "name"],
                    "properties": {
                        "token": {"type": "string"},
                        "kind": {"const": "intake"},
                        "name": {"type": "string"},
                    },
                },
            )
        },
        body=TOKEN_BODY,
    ),
    ("GET", "/v1/admin/tokens"): Operation(
        "list_tokens",
        "The admin, intake and agent tokens",
        "Metadata only, never the tokens.",
        "admin",
        (ADMIN,),
        {200: Answer("The tokens.", list_of("tokens", TOKEN_META))},
    ),
    ("GET", "/v1/admin/orders"): Operation(
        "list_orders",
        "Orders, for operators",
        "Filter by status, overdue, agent; page by id.  Each order has `overdue`.",
        "admin",
        (ADMIN,),
        {200: Answer("The orders.", list_of("orders", ORDER))},
        query=LIST_QUERY,
        errors={422: ("invalid_value",)},
    ),
    ("POST", "/v1/admin/tokens/{token_id}/revoke"): Operation(
        "revoke_token",
        "Revoke a token",
        "The token stops working on every process (cached resolutions are dropped).  Idempotent:"
        " revoking a revoked token answers it again.  A malformed id is 422 `invalid_value`, an"
        " unknown one 404.",
        "admin",
        (ADMIN,),
        {200: Answer("The token revoked (never the token itself).", REVOKED)},
        errors={422: ("invalid_value",)},
        path_ids=("token_id",),
    ),
    ("POST", "/v1/admin/agents/{agent_id}/deactivate"): _agent_active(False),
    ("POST", "/v1/admin/agents/{agent_id}/reactivate"): _agent_active(True),
}
