"""Reading ``dispatcher/`` as data, for tests/test_protocol_doc.py: no import, no service.

:func:`source` parses every ``.py`` file under ``dispatcher/`` (recursively, so it does not care
which layer folder a module lives in) and indexes its classes, module-level constants and
functions.  :func:`strings` tells which strings an expression can take where it is used:
constants, ``a if c else b``, tuples and sets of them, module constants (``wire.BAD_FRAME``),
local assignments (also tuple unpacking), a function's parameter (its default and the value
given at every call site) and ``TABLE.get(key, default)``.  What it cannot tell raises
:class:`Unresolved`, so a new way of passing a code fails loudly instead of slipping past.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

CODE_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def _root() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "dispatcher" / "__init__.py").is_file() and (parent / "docs").is_dir():
            return parent
    raise AssertionError("cannot find the repository root (dispatcher/ and docs/)")


ROOT = _root()
DOC = ROOT / "docs" / "PROTOCOL.md"


# --- reading the source ----------------------------------------------------------------------


@dataclass
class Module:
    path: str
    tree: ast.Module
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)

    def where(self, node: ast.AST) -> str:
        return f"{self.path}:{getattr(node, 'lineno', '?')}"

    def enclosing_function(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        cur = self.parents.get(node)
        while cur is not None:
            if isinstance(cur, ast.FunctionDef | ast.AsyncFunctionDef):
                return cur
            cur = self.parents.get(cur)
        return None


@dataclass
class ClassInfo:
    name: str
    bases: list[str]
    attrs: dict[str, ast.expr]
    node: ast.ClassDef
    module: Module


@dataclass
class Source:
    modules: list[Module]
    classes: dict[str, ClassInfo]
    constants: dict[str, list[ast.expr]]
    functions: dict[str, list[tuple[Module, ast.FunctionDef | ast.AsyncFunctionDef]]]

    def calls(self) -> Iterator[tuple[Module, ast.Call, str]]:
        for module in self.modules:
            for node in ast.walk(module.tree):
                if isinstance(node, ast.Call):
                    name = callee(node)
                    if name:
                        yield module, node, name

    def ancestry(self, name: str) -> list[ClassInfo]:
        """``name`` and its base classes found in the source, nearest first."""
        out: list[ClassInfo] = []
        todo = [name]
        while todo:
            info = self.classes.get(todo.pop(0))
            if info is None or info in out:
                continue
            out.append(info)
            todo.extend(info.bases)
        return out

    def is_a(self, name: str, base: str) -> bool:
        return any(c.name == base for c in self.ancestry(name))

    def class_attr(self, name: str, attr: str) -> ast.expr | None:
        for info in self.ancestry(name):
            if attr in info.attrs:
                return info.attrs[attr]
        return None


def callee(call: ast.Call) -> str:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return ""


def base_name(expr: ast.expr) -> str:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return ""


@cache
def source() -> Source:
    modules: list[Module] = []
    for path in sorted((ROOT / "dispatcher").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        module = Module(str(path.relative_to(ROOT)), tree)
        for parent in ast.walk(tree):
            for child in ast.iter_child_nodes(parent):
                module.parents[child] = parent
        modules.append(module)
    assert len(modules) > 10, f"only {len(modules)} modules under dispatcher/"
    classes: dict[str, ClassInfo] = {}
    constants: dict[str, list[ast.expr]] = {}
    functions: dict[str, list[tuple[Module, ast.FunctionDef | ast.AsyncFunctionDef]]] = {}
    for module in modules:
        for stmt in module.tree.body:
            for target, value in _assignments(stmt):
                constants.setdefault(target, []).append(value)
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef):
                attrs = {t: v for stmt in node.body for t, v in _assignments(stmt)}
                bases = [base_name(b) for b in node.bases]
                classes[node.name] = ClassInfo(node.name, bases, attrs, node, module)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions.setdefault(node.name, []).append((module, node))
    return Source(modules, classes, constants, functions)


def _assignments(stmt: ast.stmt) -> Iterator[tuple[str, ast.expr]]:
    if isinstance(stmt, ast.Assign):
        for target in stmt.targets:
            if isinstance(target, ast.Name):
                yield target.id, stmt.value
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        if isinstance(stmt.target, ast.Name):
            yield stmt.target.id, stmt.value


class Unresolved(Exception):
    pass


def strings(src: Source, module: Module, expr: ast.expr, at: ast.AST) -> set[str]:
    """The string values ``expr`` can take where it is used (``at``).  Raises Unresolved."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return {expr.value}
    if isinstance(expr, ast.IfExp):
        return strings(src, module, expr.body, at) | strings(src, module, expr.orelse, at)
    if isinstance(expr, ast.Set | ast.Tuple | ast.List):
        return set().union(*(strings(src, module, e, at) for e in expr.elts))
    if isinstance(expr, ast.Call) and callee(expr) in ("frozenset", "set", "tuple"):
        return set().union(*(strings(src, module, a, at) for a in expr.args))
    if isinstance(expr, ast.Attribute):
        if expr.attr in src.constants:  # wire.RATE_LIMITED
            return constant(src, module, expr.attr, at)
        raise Unresolved(ast.unparse(expr))
    if isinstance(expr, ast.Name):
        return _name(src, module, expr.id, at)
    if (
        isinstance(expr, ast.Call)
        and callee(expr) == "get"
        and isinstance(expr.func, ast.Attribute)
    ):
        table = expr.func.value  # _HTTP_CODES.get(status, "default")
        out = set(dict_of(src, table).values())
        for arg in expr.args[1:]:
            out |= strings(src, module, arg, at)
        return out
    raise Unresolved(ast.unparse(expr))


def dict_of(src: Source, expr: ast.expr) -> dict[int | str, str]:
    if isinstance(expr, ast.Name):
        for value in src.constants.get(expr.id, []):
            if isinstance(value, ast.Dict):
                return {
                    k.value: v.value
                    for k, v in zip(value.keys, value.values, strict=True)
                    if isinstance(k, ast.Constant)
                    and isinstance(k.value, int | str)
                    and isinstance(v, ast.Constant)
                    and isinstance(v.value, str)
                }
    raise Unresolved(ast.unparse(expr))


def constant(src: Source, module: Module, name: str, at: ast.AST) -> set[str]:
    out: set[str] = set()
    for value in src.constants.get(name, []):
        out |= strings(src, module, value, at)
    if not out:
        raise Unresolved(name)
    return out


def _name(src: Source, module: Module, name: str, at: ast.AST) -> set[str]:
    """A local assignment, a parameter (its default and every call site), or a constant."""
    func = module.enclosing_function(at)
    if func is not None:
        found: set[str] = set()
        for node in ast.walk(func):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    found |= _assigned(src, module, target, node.value, name, at)
        if found:
            return found
        params = [a.arg for a in (*func.args.posonlyargs, *func.args.args)]
        kwonly = [a.arg for a in func.args.kwonlyargs]
        if name in params or name in kwonly:
            return _parameter(src, func, name)
    return constant(src, module, name, at)


def _assigned(
    src: Source, module: Module, target: ast.expr, value: ast.expr, name: str, at: ast.AST
) -> set[str]:
    if isinstance(target, ast.Name):
        return strings(src, module, value, at) if target.id == name else set()
    if isinstance(target, ast.Tuple):
        names = [t.id if isinstance(t, ast.Name) else "" for t in target.elts]
        if name not in names:
            return set()
        index = names.index(name)
        return _element(src, module, value, index, at)
    return set()


def _element(src: Source, module: Module, value: ast.expr, index: int, at: ast.AST) -> set[str]:
    """The ``index``-th element of a tuple value (``a, b = (x, y) if c else (z, w)``)."""
    if isinstance(value, ast.IfExp):
        return _element(src, module, value.body, index, at) | _element(
            src, module, value.orelse, index, at
        )
    if isinstance(value, ast.Tuple):
        return strings(src, module, value.elts[index], at)
    raise Unresolved(ast.unparse(value))


def _parameter(src: Source, func: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> set[str]:
    args = func.args
    positional = [a.arg for a in (*args.posonlyargs, *args.args)]
    out: set[str] = set()
    defaults: dict[str, ast.expr] = dict(
        zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)
    )
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if default is not None:
            defaults[arg.arg] = default
    if name in defaults:
        value = defaults[name]
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            out.add(value.value)
    skip = 1 if positional and positional[0] in ("self", "cls") else 0
    index = positional.index(name) - skip if name in positional else None
    for module, call, callee in src.calls():
        if callee != func.name:
            continue
        given: ast.expr | None = None
        if index is not None and 0 <= index < len(call.args):
            given = call.args[index]
        for kw in call.keywords:
            if kw.arg == name:
                given = kw.value
        if given is not None:
            out |= strings(src, module, given, call)
    return {s for s in out if CODE_RE.match(s)}


def int_of(expr: ast.expr | None) -> int | None:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, int):
        return expr.value
    return None


def passes_a_code_on(expr: ast.expr) -> bool:
    """``exc.code``, ``err.code``, ``self.code``: a code declared elsewhere, carried on."""
    return isinstance(expr, ast.Attribute) and expr.attr == "code"
