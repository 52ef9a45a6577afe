"""Operations of the two endpoints the pages need: place-name completion and the tracking QR
code (see :mod:`.schemas`; merged into :data:`dispatcher.web.operations.OPERATIONS`).

The pages themselves (``/``, ``/app``, ``/console``, ``/file``, ``/t/{order_id}``, the favicon
and ``/static/``) are plain files, not part of the API: :mod:`dispatcher.web.pages` leaves
their routes out of the document (``include_in_schema=False``).
"""

from __future__ import annotations

from dispatcher.core.places import MAX_CODES, MAX_LIMIT, MAX_QUERY_CHARS
from dispatcher.core.query import Query
from dispatcher.web.answers import list_of
from dispatcher.web.schemas import ADMIN, AGENT, INTAKE, TRACKING, Answer, Operation

PLACE = {
    "type": "object",
    "required": ["code", "name", "level", "path", "address"],
    "properties": {
        "code": {"type": "string"},
        "name": {"type": "string"},
        "level": {"type": "string"},
        "path": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "string"},
    },
}

PAGE_OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/v1/places"): Operation(
        "complete_places",
        "Complete a place name (地名联想)",
        "`q`: places whose name, alias or address contains it, best first, each with the"
        " `address` text that files an order to it (intake and admin tokens; the intake page's"
        " suggestions).  `code=A,B`: the places of those grid codes, in that order, unknown ones"
        " left out (agent tokens too).  Give `q` or `code`, not both (422 `invalid_value`);"
        " an agent token with `q` is 403.",
        "orders",
        (INTAKE, ADMIN, AGENT),
        {200: Answer("The places.", list_of("places", PLACE))},
        query=(
            Query("q", {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS}, "Text."),
            Query(
                "limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "How many (8)."
            ),
            Query(
                "code",
                {"type": "string", "minLength": 1, "description": f"1 to {MAX_CODES} grid codes."},
                "Grid codes, comma separated.",
            ),
        ),
        errors={422: ("missing_field", "unknown_field", "invalid_value")},
    ),
    ("GET", "/v1/orders/{order_id}/tracking-qr"): Operation(
        "tracking_qr",
        "The tracking link as a QR code",
        "An SVG QR code of the applicant's page (`/t/{order_id}#token=…`), for the intake page"
        " to show after filing.  Only the order's own tracking token (403 for another order's).",
        "orders",
        (TRACKING,),
        {200: Answer("An SVG image.", {"type": "string"}, media="image/svg+xml")},
    ),
}
