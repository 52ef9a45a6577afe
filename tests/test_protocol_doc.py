"""docs/PROTOCOL.md lists exactly what the server emits, read from the source, not by hand.

Every ``.py`` file under ``dispatcher/`` (recursively: modules move into layer folders) is
parsed with :mod:`ast`; nothing of ``dispatcher`` is imported and no service is started.  From
the source this test gathers:

- HTTP error codes and their statuses: calls of ``RequestError`` and its subclasses (found by
  their bases, wherever they are defined), with ``code=`` / ``status=`` or the class's own
  ``code`` / ``status`` attributes; refusal classes (subclasses of ``Refusal``) by their class
  attributes; codes passed through helpers (``invalid(name, message, code=...)``) by the
  helper's default and every call site; ``error_body("...")`` answers of the exception
  handlers, including a ``{status: code}`` table and its default;
- frame error codes: the first argument of every ``FrameError(...)``;
- frame types: dataclasses with ``type: str = field(default="...")``, split into server and
  client frames by the ``ServerFrame`` / ``ClientFrame`` unions;
- claim results (``ClaimOutcome`` and ``CLAIM_RESULTS``), withdrawal reasons
  (``WITHDRAWN_REASONS`` and ``withdrawn_reason``), websocket close codes (``CLOSE_*``
  constants, literal codes passed to ``close``, and 1009 where ``ws_max_size`` is set);
- trail event kinds with their labels (``EVENT_LABELS``, ``trail_entry("...")`` calls and
  the kinds SQL inserts into ``order_events``);
- the order's fields (``Order.to_wire``).

Each must appear in its table of the document, and each table must list nothing else.  A code
expression the test cannot resolve fails the test too: teach it the new pattern rather than let
a code slip past.
"""

from __future__ import annotations

import re
from functools import cache

from tests.protocol_facts import (
    claim_results,
    close_codes,
    event_kinds,
    frame_errors,
    frame_types,
    http_errors,
    order_fields,
    withdrawal_reasons,
)
from tests.protocol_source import DOC

# --- reading the document --------------------------------------------------------------------


@cache
def doc_lines() -> tuple[str, ...]:
    assert DOC.is_file(), f"{DOC} is missing"
    return tuple(DOC.read_text(encoding="utf-8").splitlines())


def table(heading: str) -> list[list[str]]:
    """The rows (cells, header and rule left out) of the first table after ``heading``."""
    lines = doc_lines()
    starts = [
        i for i, line in enumerate(lines) if re.fullmatch(rf"#+\s+{re.escape(heading)}\s*", line)
    ]
    assert starts, f"docs/PROTOCOL.md has no heading {heading!r}"
    rows: list[list[str]] = []
    for line in lines[starts[0] + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    assert len(rows) > 2, f"no table under the heading {heading!r}"
    return rows[2:]


def first_cells(heading: str) -> dict[str, list[list[str]]]:
    """First-column value (backticks removed) -> its rows."""
    out: dict[str, list[list[str]]] = {}
    for row in table(heading):
        key = row[0].strip("`")
        out.setdefault(key, []).append(row)
    return out


def _missing(what: str, heading: str, names: set[str], where: dict[str, str] | None = None) -> str:
    places = where or {}
    listed = ", ".join(f"{n} ({places[n]})" if n in places else n for n in sorted(names))
    return f"docs/PROTOCOL.md, table {heading!r}, does not list these {what}: {listed}"


def _stale(what: str, heading: str, names: set[str]) -> str:
    return (
        f"docs/PROTOCOL.md, table {heading!r}, lists {what} the server no longer has: "
        + ", ".join(sorted(names))
    )


# --- the tests -------------------------------------------------------------------------------

HTTP = "HTTP error codes"


def test_the_source_is_understood() -> None:
    """Every code expression resolves, and the well-known codes are found (the extraction is
    not silently broken)."""
    unresolved = http_errors().unresolved + frame_errors().unresolved
    assert not unresolved, "cannot tell which codes these emit (teach the test): " + "; ".join(
        unresolved
    )
    http = set(http_errors().statuses)
    known = {"illegal_transition", "conflict", "limit_reached", "unknown_item", "missing_field"}
    assert known <= http, (
        f"extraction found no {sorted(known - http)}: broken, or renamed (then edit this list)"
    )
    assert {"bad_frame", "rate_limited"} <= set(frame_errors().statuses)
    assert {"welcome", "offer", "claim_result"} <= frame_types()[0]
    assert "claim" in frame_types()[1]
    assert {"won", "taken", "unavailable"} <= claim_results()
    assert 4401 in close_codes()
    assert "filed" in event_kinds()
    assert {"id", "status", "supply_by"} <= order_fields()


def test_every_http_error_code_is_documented() -> None:
    found = http_errors()
    missing = set(found.statuses) - set(first_cells(HTTP))
    assert not missing, _missing("error codes", HTTP, missing, found.where)


def test_no_documented_http_error_code_is_stale() -> None:
    stale = set(first_cells(HTTP)) - set(http_errors().statuses)
    assert not stale, _stale("error codes", HTTP, stale)


def test_http_error_statuses_match() -> None:
    rows = first_cells(HTTP)
    wrong = []
    for code, statuses in http_errors().statuses.items():
        documented = {
            int(s) for row in rows.get(code, []) for s in re.findall(r"\b\d{3}\b", row[1])
        }
        for status in statuses - {None}:
            if status not in documented:
                wrong.append(f"{code}: {status} ({http_errors().where[code]})")
    assert not wrong, f"docs/PROTOCOL.md, table {HTTP!r}, misses these statuses: " + ", ".join(
        sorted(wrong)
    )


def _both_ways(what: str, heading: str, expected: set[str], where: dict[str, str]) -> None:
    documented = set(first_cells(heading))
    missing, stale = expected - documented, documented - expected
    assert not missing, _missing(what, heading, missing, where)
    assert not stale, _stale(what, heading, stale)


def test_frame_error_codes() -> None:
    found = frame_errors()
    _both_ways("frame error codes", "Frame error codes", set(found.statuses), found.where)


def test_server_frame_types() -> None:
    _both_ways("frame types", "Server to client frames", frame_types()[0], {})


def test_client_frame_types() -> None:
    _both_ways("frame types", "Client to server frames", frame_types()[1], {})


def test_claim_results() -> None:
    _both_ways("claim results", "Claim results", claim_results(), {})


def test_withdrawal_reasons() -> None:
    _both_ways("withdrawal reasons", "Withdrawal reasons", withdrawal_reasons(), {})


def test_close_codes() -> None:
    _both_ways("close codes", "Close codes", {str(c) for c in close_codes()}, {})


def test_trail_event_kinds_and_labels() -> None:
    heading = "Trail event kinds"
    kinds = event_kinds()
    _both_ways("trail event kinds", heading, set(kinds), {})
    rows = first_cells(heading)
    wrong = [
        f"{kind}: {label}"
        for kind, label in kinds.items()
        if label is not None and rows[kind][0][1] != label
    ]
    assert not wrong, f"docs/PROTOCOL.md, table {heading!r}, has other labels: {wrong}"


def test_order_fields() -> None:
    _both_ways("order fields", "Order fields", order_fields(), {})
