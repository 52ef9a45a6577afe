"""Open311 GeoReport v2 routes, declared like every other (see :mod:`.schemas`): the form
of ``POST requests`` (checked through :data:`OPEN311_FORM`) and the answers, in the
specification's shapes."""

from __future__ import annotations

import re

from dispatcher.core import fields as f
from dispatcher.core import validate
from dispatcher.core.query import Query
from dispatcher.web.schemas import Answer, Json, Operation

XML = "text/xml"
OPEN311_FORM = f.Obj(
    {
        "api_key": f.Text(200, doc="An intake token (required)."),
        "service_code": f.Code(doc="A catalogue item code (GET services)."),
        "jurisdiction_id": f.Text(100, required=False, doc="Accepted and ignored (one county)."),
        "lat": f.Text(32, required=False, pattern=re.compile(r"^-?[0-9]+(\.[0-9]+)?$")),
        "long": f.Text(32, required=False, pattern=re.compile(r"^-?[0-9]+(\.[0-9]+)?$")),
        "address_string": f.Text(200, required=False, doc="Matched to grid names."),
        "address_id": f.Text(100, required=False, doc="Not supported: give lat/long or address."),
        "description": f.Text(2000, required=False, doc="The need in the applicant's words."),
        "first_name": f.Text(50, required=False),
        "last_name": f.Text(50, required=False),
        "phone": f.Text(32, required=False, pattern=validate.PHONE_RE),
        "email": f.Text(254, required=False, doc="Accepted, not stored."),
        "device_id": f.Text(100, required=False, doc="Accepted, not stored."),
        "account_id": f.Text(100, required=False, doc="Accepted, not stored."),
        "media_url": f.Text(2000, required=False, doc="Accepted, not stored."),
    },
    patterns=(
        (
            r"attribute\[M[1-9][0-9]?\]",
            {"type": "string", "enum": ["yes", "no"], "description": "A material: yes / no."},
        ),
    ),
    doc="GeoReport v2 form fields.  Empty fields count as absent.",
)
"""The form of ``POST /open311/v2/requests.{fmt}``, checked by the endpoint through this."""

_STR = {"type": ["string", "null"]}
_O311_SERVICE = {
    "type": "object",
    "required": ["service_code", "service_name", "metadata", "type", "group"],
    "properties": {
        "service_code": {"type": "string"},
        "service_name": {"type": "string"},
        "description": {"type": "string"},
        "metadata": {"type": "boolean"},
        "type": {"type": "string", "enum": ["realtime", "batch", "blackbox"]},
        "keywords": {"type": "string"},
        "group": {"type": "string"},
    },
}
_O311_DEFINITION = {
    "type": "object",
    "required": ["service_code", "attributes"],
    "properties": {
        "service_code": {"type": "string"},
        "attributes": {"type": "array", "items": {"type": "object"}},
    },
}
_O311_REQUEST = {
    "type": "object",
    "required": ["service_request_id", "status", "requested_datetime"],
    "properties": {
        "service_request_id": {"type": "string"},
        "status": {"type": "string", "enum": ["open", "closed"]},
        "status_notes": _STR,
        "service_name": _STR,
        "service_code": _STR,
        "agency_responsible": _STR,
        "service_notice": _STR,
        "requested_datetime": {"type": "string"},
        "updated_datetime": _STR,
        "expected_datetime": _STR,
        "address": _STR,
        "lat": {"type": ["number", "null"]},
        "long": {"type": ["number", "null"]},
    },
}
_O311_FILED = {
    "type": "object",
    "required": ["service_request_id", "service_notice"],
    "properties": {
        "service_request_id": {"type": "string"},
        "service_notice": {"type": "string"},
        "account_id": _STR,
        "bangban_tracking_token": {
            "type": "string",
            "description": "Extension: the applicant's tracking token for /v1/orders/{id}.",
        },
    },
}


def _o311(description: str, item: Json) -> Answer:
    return Answer(description, {"type": "array", "items": item}, also={XML: {"type": "string"}})


_FMT: dict[str, tuple[str, ...]] = {"fmt": ("json", "xml")}
_O311_READ_ERRORS: dict[int, tuple[str, ...]] = {400: ("400",), 404: ("404",), 503: ("503",)}
_O311_DATES = (
    Query(
        "service_request_id",
        {"type": "string", "pattern": r"^ *0*[1-9][0-9]{0,17} *(, *0*[1-9][0-9]{0,17} *)*$"},
        "Comma-separated ids; overrides the rest.",
    ),
    Query("service_code", {"type": "string"}, "Comma-separated item codes."),
    Query(
        "status",
        {"type": "string", "pattern": r"^ *(open|closed) *(, *(open|closed) *)*$"},
        "open, closed (comma-separated).",
    ),
    Query(
        "start_date",
        {"type": "string", "format": "date-time"},
        "W3C datetime with time zone (default: 90 days ago).",
    ),
    Query(
        "end_date",
        {"type": "string", "format": "date-time"},
        "W3C datetime with time zone (at most 90 days on).",
    ),
)
OPEN311_OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/open311/discovery.{fmt}"): Operation(
        "open311_discovery",
        "Open311 service discovery",
        "Where the GeoReport v2 endpoint is and which formats it speaks.  No token needed.",
        "open311",
        (),
        {
            200: Answer(
                "The discovery document.", {"type": "object"}, also={XML: {"type": "string"}}
            )
        },
        error_style="open311",
        errors={404: ("404",)},
        path_enums=_FMT,
    ),
    ("GET", "/open311/v2/services.{fmt}"): Operation(
        "open311_services",
        "GeoReport: the services (the catalogue)",
        "Each live catalogue item as a service; `group` is its category.  No token needed.",
        "open311",
        (),
        {200: _o311("The services.", _O311_SERVICE)},
        error_style="open311",
        errors=_O311_READ_ERRORS,
        path_enums=_FMT,
    ),
    ("GET", "/open311/v2/services/{service_code}.{fmt}"): Operation(
        "open311_service_definition",
        "GeoReport: a service definition",
        "The item's required materials as attributes M1, M2, ... (yes/no: does the applicant"
        " have it?).  No token needed.",
        "open311",
        (),
        {200: Answer("The definition.", _O311_DEFINITION, also={XML: {"type": "string"}})},
        error_style="open311",
        errors=_O311_READ_ERRORS,
        path_enums=_FMT,
    ),
    ("POST", "/open311/v2/requests.{fmt}"): Operation(
        "open311_create_request",
        "GeoReport: file a service request",
        "Files an order through the same path as POST /v1/orders.  `api_key` is an intake"
        " token (403 otherwise); `service_code` a live item; `lat`/`long` or `address_string`"
        " route it; `attribute[Mn]` say which materials the applicant has (added to the"
        " order's text for the agent).",
        "open311",
        (),
        {201: _o311("The new request's id and notice.", _O311_FILED)},
        body=OPEN311_FORM,
        body_media=("application/x-www-form-urlencoded",),
        error_style="open311",
        errors={400: ("400",), 403: ("403",), 404: ("404",), 413: ("413",), 503: ("503",)},
        path_enums=_FMT,
    ),
    ("GET", "/open311/v2/requests.{fmt}"): Operation(
        "open311_requests",
        "GeoReport: service requests",
        "Public reads without personal data: `address` and `lat`/`long` are the order's grid,"
        " not the applicant's; no names, phones or free text.  At most 1000, newest first.",
        "open311",
        (),
        {200: _o311("The requests.", _O311_REQUEST)},
        query=_O311_DATES,
        error_style="open311",
        errors=_O311_READ_ERRORS,
        path_enums=_FMT,
    ),
    ("GET", "/open311/v2/requests/{service_request_id}.{fmt}"): Operation(
        "open311_request",
        "GeoReport: one service request",
        "As GET requests, for one id (a list of one, as the specification says).",
        "open311",
        (),
        {200: _o311("The request.", _O311_REQUEST)},
        error_style="open311",
        errors=_O311_READ_ERRORS,
        path_enums=_FMT,
    ),
}
