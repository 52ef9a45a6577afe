"""The agents CSV: valid rosters parse, faults name their line."""

from __future__ import annotations

import pytest

from geo import AgentRow, RosterError, format_agents_csv, parse_agents_csv


def lines_of(text: str, known: set[str] | None = None) -> list[tuple[int, str]]:
    with pytest.raises(RosterError) as caught:
        parse_agents_csv(text, known)
    return [(p.line, p.message) for p in caught.value.problems]


def test_valid_roster() -> None:
    text = "name,phone,grids\n张伟,13800001234,A\n李娜,13800001235,A;B\n"
    assert parse_agents_csv(text, {"A", "B"}) == [
        AgentRow(2, "张伟", "13800001234", ("A",)),
        AgentRow(3, "李娜", "13800001235", ("A", "B")),
    ]


def test_bom_blank_lines_and_spaces_are_tolerated() -> None:
    text = "\ufeffname, phone ,grids\n\n 张伟 , 13800001234 , A ; B \n\n"
    assert parse_agents_csv(text) == [AgentRow(3, "张伟", "13800001234", ("A", "B"))]


def test_bad_header_is_line_1() -> None:
    assert lines_of("姓名,电话,网格\n张伟,13800001234,A\n")[0][0] == 1


def test_each_bad_line_is_named() -> None:
    text = (
        "name,phone,grids\n"
        "张伟,13800001234,A\n"  # line 2: fine
        ",13800001235,A\n"  # line 3: no name
        "李娜,12345,A\n"  # line 4: bad phone
        "王芳,13800001236,\n"  # line 5: no grids
        "刘洋,13800001237,Z\n"  # line 6: unknown grid
        "陈静,13800001234,A\n"  # line 7: phone of line 2
        "赵强,13800001238\n"  # line 8: two fields
        "孙丽,13800001239,A;A\n"  # line 9: grid twice
    )
    problems = lines_of(text, {"A"})
    assert [line for line, _ in problems] == [3, 4, 5, 6, 7, 8, 9]
    assert "line 2" in problems[4][1]


def test_format_round_trips() -> None:
    rows = [
        AgentRow(2, "张伟", "13800001234", ("A", "B")),
        AgentRow(3, "李娜", "13900001235", ("C",)),
    ]
    assert parse_agents_csv(format_agents_csv(rows)) == rows
