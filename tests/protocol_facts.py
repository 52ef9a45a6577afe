"""What the server emits, read from the source by :mod:`tests.protocol_source`.

Each function gathers one family of wire facts (see tests/test_protocol_doc.py for the list
and for how each is declared in the code).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import cache

from tests.protocol_source import (
    ClassInfo,
    Module,
    Source,
    Unresolved,
    base_name,
    callee,
    constant,
    dict_of,
    int_of,
    passes_a_code_on,
    source,
    strings,
)

EVENT_SQL_RE = re.compile(r"INSERT INTO order_events.*?SELECT\s+id,\s*\$\d+,\s*'([a-z_]+)'", re.S)


@dataclass
class Found:
    """Codes found (code -> statuses, None: not known statically) and where."""

    statuses: dict[str, set[int | None]] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)
    unresolved: list[str] = field(default_factory=list)

    def add(self, code: str, status: int | None, where: str) -> None:
        self.statuses.setdefault(code, set()).add(status)
        self.where.setdefault(code, where)


@cache
def http_errors() -> Found:
    src = source()
    found = Found()
    # Refusals: values whose class attributes are the error (Refusal.as_error).
    for info in src.classes.values():
        if info.name != "Refusal" and src.is_a(info.name, "Refusal"):
            code = src.class_attr(info.name, "code")
            if isinstance(code, ast.Constant) and isinstance(code.value, str):
                status = int_of(src.class_attr(info.name, "status"))
                found.add(code.value, status, info.module.where(info.node))
    # The default code of every RequestError class (raised without ``code=``).
    for info in src.classes.values():
        if src.is_a(info.name, "RequestError") and "code" in info.attrs:
            code = info.attrs["code"]
            if isinstance(code, ast.Constant) and isinstance(code.value, str):
                status = int_of(src.class_attr(info.name, "status"))
                found.add(code.value, status, info.module.where(info.node))
    for module, call, fn in src.calls():
        where = module.where(call)
        if fn in src.classes and src.is_a(fn, "RequestError"):
            kws = {kw.arg: kw.value for kw in call.keywords if kw.arg}
            status = int_of(kws["status"]) if "status" in kws else None
            if "status" not in kws:
                status = int_of(src.class_attr(fn, "status"))
            if "code" not in kws:
                code = src.class_attr(fn, "code")
                if isinstance(code, ast.Constant) and isinstance(code.value, str):
                    found.add(code.value, status, where)
                continue
            if passes_a_code_on(kws["code"]):
                continue
            try:
                codes = strings(src, module, kws["code"], call)
            except Unresolved as exc:
                found.unresolved.append(f"{where}: code={exc}")
                continue
            for code_value in codes:
                found.add(code_value, status, where)
        elif fn == "error_body" and call.args:
            first = call.args[0]
            if passes_a_code_on(first):
                continue
            parent = module.parents.get(call)
            status = None
            if isinstance(parent, ast.Call) and len(parent.args) > 1:
                status = int_of(parent.args[1])
            try:
                codes = strings(src, module, first, call)
            except Unresolved as exc:
                found.unresolved.append(f"{where}: error_body({exc})")
                continue
            by_status = _status_table(src, module, first, call)
            for code_value in codes:
                found.add(code_value, by_status.get(code_value, status), where)
    return found


def _status_table(src: Source, module: Module, expr: ast.expr, at: ast.AST) -> dict[str, int]:
    """For ``code = TABLE.get(status, default)``: code -> status from the table's keys."""
    if not isinstance(expr, ast.Name):
        return {}
    func = module.enclosing_function(at)
    for node in ast.walk(func) if func is not None else ():
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == expr.id for t in node.targets)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute)
        ):
            try:
                table = dict_of(src, node.value.func.value)
            except Unresolved:
                return {}
            return {v: k for k, v in table.items() if isinstance(k, int)}
    return {}


@cache
def frame_errors() -> Found:
    src = source()
    found = Found()
    for module, call, fn in src.calls():
        if fn != "FrameError":
            continue
        kws = {kw.arg: kw.value for kw in call.keywords if kw.arg}
        expr = call.args[0] if call.args else kws.get("code")
        where = module.where(call)
        if expr is None:
            found.unresolved.append(f"{where}: FrameError without a code")
            continue
        try:
            for code in strings(src, module, expr, call):
                found.add(code, None, where)
        except Unresolved as exc:
            found.unresolved.append(f"{where}: FrameError({exc})")
    return found


def _frame_type(info: ClassInfo) -> str | None:
    value = info.attrs.get("type")
    if isinstance(value, ast.Call) and callee(value) == "field":
        for kw in value.keywords:
            if kw.arg == "default" and isinstance(kw.value, ast.Constant):
                return str(kw.value.value)
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    return None


def _union_members(src: Source, name: str) -> set[str]:
    out: set[str] = set()

    def walk(expr: ast.expr) -> None:
        if isinstance(expr, ast.BinOp):
            walk(expr.left)
            walk(expr.right)
        elif isinstance(expr, ast.Name | ast.Attribute):
            member = base_name(expr)
            if member in src.constants and member != name:  # a union of unions
                for value in src.constants[member]:
                    walk(value)
            else:
                out.add(member)

    for value in src.constants.get(name, []):
        walk(value)
    return out


@cache
def frame_types() -> tuple[set[str], set[str]]:
    """(server frame types, client frame types)."""
    src = source()
    types = {name: t for name, info in src.classes.items() if (t := _frame_type(info))}
    server = {types[c] for c in _union_members(src, "ServerFrame") if c in types}
    client = {types[c] for c in _union_members(src, "ClientFrame") if c in types}
    stray = set(types.values()) - server - client
    assert not stray, f"frame classes in neither ServerFrame nor ClientFrame: {sorted(stray)}"
    return server, client


def _enum_values(src: Source, class_name: str) -> set[str]:
    info = src.classes.get(class_name)
    if info is None:
        return set()
    return {
        v.value
        for v in info.attrs.values()
        if isinstance(v, ast.Constant) and isinstance(v.value, str)
    }


def _returned_strings(src: Source, function: str) -> set[str]:
    out: set[str] = set()
    for _module, func in src.functions.get(function, []):
        for node in ast.walk(func):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Constant):
                if isinstance(node.value.value, str):
                    out.add(node.value.value)
    return out


def _module_strings(src: Source, name: str) -> set[str]:
    try:
        return constant(src, src.modules[0], name, src.modules[0].tree)
    except Unresolved:
        return set()


@cache
def claim_results() -> set[str]:
    src = source()
    return _enum_values(src, "ClaimOutcome") | _module_strings(src, "CLAIM_RESULTS")


@cache
def withdrawal_reasons() -> set[str]:
    src = source()
    return _module_strings(src, "WITHDRAWN_REASONS") | _returned_strings(src, "withdrawn_reason")


@cache
def close_codes() -> set[int]:
    src = source()
    out: set[int] = set()
    for name, values in src.constants.items():
        if name.startswith("CLOSE_"):
            out |= {v for value in values if (v := int_of(value)) is not None}
    for _module, call, fn in src.calls():
        if fn == "close" and call.args and (v := int_of(call.args[0])) is not None:
            out.add(v)
        if any(kw.arg == "ws_max_size" for kw in call.keywords):
            out.add(1009)  # the transport closes with "message too big"
    return out


@cache
def event_kinds() -> dict[str, str | None]:
    """Trail event kind -> its label (None when the source gives none)."""
    src = source()
    kinds: dict[str, str | None] = {}
    for value in src.constants.get("EVENT_LABELS", []):
        if isinstance(value, ast.Dict):
            for k, v in zip(value.keys, value.values, strict=True):
                if isinstance(k, ast.Constant) and isinstance(v, ast.Constant):
                    kinds[str(k.value)] = str(v.value)
    for _module, call, fn in src.calls():
        if fn == "trail_entry" and call.args and isinstance(call.args[0], ast.Constant):
            kinds.setdefault(str(call.args[0].value), None)
    for module in src.modules:
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for kind in EVENT_SQL_RE.findall(node.value):
                    kinds.setdefault(kind, None)
    return kinds


@cache
def order_fields() -> set[str]:
    src = source()
    info = src.classes.get("Order")
    assert info is not None, "no class Order under dispatcher/"
    out: set[str] = set()
    for stmt in info.node.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == "to_wire":
            for node in ast.walk(stmt):
                if isinstance(node, ast.Dict):
                    out |= {
                        k.value
                        for k in node.keys
                        if isinstance(k, ast.Constant) and isinstance(k.value, str)
                    }
                if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
                    key = node.slice
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        out.add(key.value)
    return out
