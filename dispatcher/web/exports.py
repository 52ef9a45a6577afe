"""Reports as files: every report is also a :class:`Table`, answered as JSON (the default),
CSV or XLSX by ``?format=``.

CSV is UTF-8 *with* a byte-order mark, so that Excel opens Chinese names correctly; XLSX is
written by openpyxl with decimal amounts as numbers (finance sums them) and times as text in
local time.  The file name (``Content-Disposition``) names the report and its period.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from starlette.requests import Request
from starlette.responses import Response

from dispatcher.core import validate
from dispatcher.core.ledger import points_text
from dispatcher.core.workdays import CHINA
from dispatcher.web.http import answer

FORMATS = ("json", "csv", "xlsx")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True, slots=True)
class Table:
    """Rows for a file.  Cells are str, int, Decimal, bool, None, or :class:`Time`."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]


@dataclass(frozen=True, slots=True)
class Time:
    """An epoch-ms time, written as local ``YYYY-MM-DD HH:MM:SS`` in files."""

    ms: int | None


def report_format(request: Request) -> str:
    """``?format=``: json (default), csv or xlsx.  Raises 422 invalid_value."""
    value = request.query_params.get("format", "json")
    if value not in FORMATS:
        raise validate.invalid("format", "'format' must be json, csv or xlsx")
    return value


def _text(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "是" if cell else "否"
    if isinstance(cell, Decimal):
        return points_text(cell)
    if isinstance(cell, Time):
        if cell.ms is None:
            return ""
        return dt.datetime.fromtimestamp(cell.ms / 1000, CHINA).strftime("%Y-%m-%d %H:%M:%S")
    return str(cell)


def to_csv(table: Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([_text(c) for c in row])
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(table: Table) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = table.title[:31]
    sheet.append(list(table.columns))
    for row in table.rows:
        sheet.append([c if isinstance(c, int | Decimal | str) else _text(c) for c in row])
    for i, name in enumerate(table.columns, start=1):
        width = max([len(str(name)) * 2, *(len(_text(r[i - 1])) + 2 for r in table.rows)])
        sheet.column_dimensions[get_column_letter(i)].width = min(60, width)
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def respond(request: Request, fmt: str, body: Any, table: Table, filename: str) -> Response:
    """``body`` as JSON, or ``table`` as ``filename``.csv / .xlsx."""
    if fmt == "json":
        return answer(request, body)
    if fmt == "csv":
        data, media, ext = to_csv(table), "text/csv; charset=utf-8", "csv"
    else:
        data, media, ext = to_xlsx(table), XLSX, "xlsx"
    name = f"{filename}.{ext}"
    disposition = f'attachment; filename="{name.encode("ascii", "replace").decode()}"'
    disposition += f"; filename*=UTF-8''{quote(name)}"
    return Response(data, media_type=media, headers={"Content-Disposition": disposition})
