"""The agents roster as CSV: ``name,phone,grids`` with grid codes separated by ``;``.

This is the file format operators hand over (one row per agent, 代办员); the server turns each
row into an agent through its own store. Parsing is all-or-nothing, like grid imports.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Container
from dataclasses import dataclass
from typing import Final

from .errors import RosterError, RosterProblem

HEADER: Final = ("name", "phone", "grids")
PHONE: Final = re.compile(r"1[3-9]\d{9}")


@dataclass(frozen=True, slots=True)
class AgentRow:
    """One agent of the roster; ``line`` is where it stands in the file (1-based, header is 1)."""

    line: int
    name: str
    phone: str
    grids: tuple[str, ...]


def parse_agents_csv(text: str, known_grids: Container[str] | None = None) -> list[AgentRow]:
    """Parse and check a roster.

    Checks: the header is ``name,phone,grids``; every row has a name, a mainland mobile number
    (11 digits starting with 1) not used by an earlier row, and at least one grid code, each in
    ``known_grids`` when that is given. Blank lines are skipped. Raises RosterError naming every
    line at fault.
    """
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    problems: list[RosterProblem] = []
    header = next(reader, None)
    if header is None or tuple(h.strip().lower() for h in header) != HEADER:
        found = ",".join(header or [])
        problems.append(RosterProblem(1, f"header must be name,phone,grids, got {found!r}"))
        raise RosterError(problems)
    rows: list[AgentRow] = []
    phones: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if not any(field.strip() for field in record):
            continue
        if len(record) != len(HEADER):
            problems.append(RosterProblem(line, f"expected 3 fields, got {len(record)}"))
            continue
        name, phone, grid_field = (field.strip() for field in record)
        grids = tuple(code.strip() for code in grid_field.split(";") if code.strip())
        faults = _row_faults(name, phone, grids, known_grids)
        if phone in phones:
            faults.append(f"phone {phone} is already on line {phones[phone]}")
        else:
            phones[phone] = line
        problems.extend(RosterProblem(line, fault) for fault in faults)
        if not faults:
            rows.append(AgentRow(line, name, phone, grids))
    if problems:
        raise RosterError(problems)
    return rows


def _row_faults(
    name: str, phone: str, grids: tuple[str, ...], known_grids: Container[str] | None
) -> list[str]:
    faults: list[str] = []
    if not name:
        faults.append("name is empty")
    if not PHONE.fullmatch(phone):
        faults.append(f"phone {phone!r} is not an 11-digit mobile number")
    if not grids:
        faults.append("no grid codes")
    elif len(set(grids)) != len(grids):
        faults.append("a grid code is listed twice")
    if known_grids is not None:
        faults.extend(f"unknown grid {code}" for code in grids if code not in known_grids)
    return faults


def format_agents_csv(rows: list[AgentRow]) -> str:
    """The roster text that :func:`parse_agents_csv` reads back into ``rows`` (line numbers
    renumbered from 2)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for row in rows:
        writer.writerow((row.name, row.phone, ";".join(row.grids)))
    return out.getvalue()
