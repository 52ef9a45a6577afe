"""Declared request fields: one description that both checks a body and documents it.

Each field type has two faces.  :meth:`check` takes a decoded body (a map) and returns the clean
value or raises the :class:`~dispatcher.exceptions.RequestError` of :mod:`dispatcher.core.validate`
(422 ``missing_field`` / ``invalid_value`` / ``unknown_field`` naming ``details.field``), so
the codes and messages are those of the hand-written validators.  :meth:`schema` returns the
JSON Schema (2020-12, the dialect of OpenAPI 3.1) the OpenAPI document shows for it.  Because
the endpoints check through the same object the document is built from, the two cannot drift.

The server is a little more lenient than the schemas it publishes, never stricter: an
optional field sent as ``null`` counts as absent, and texts are trimmed before their length
is checked.  A body valid by the schema is never refused for its shape.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from dispatcher.core import validate

Json = dict[str, Any]


class Field(Protocol):
    """What every declared field offers."""

    @property
    def required(self) -> bool: ...

    def check(self, body: Mapping[str, Any], name: str) -> Any:
        """The clean value of ``body[name]`` (None when absent and optional).  Raises
        RequestError 422 naming ``name``."""
        ...

    def schema(self) -> Json:
        """The JSON Schema of the value."""
        ...


def _described(schema: Json, doc: str) -> Json:
    if doc:
        schema["description"] = doc
    return schema


_OK = r"[^\u0000-\u0008\u000b-\u001f\u007f]"
TEXT_PATTERN = rf"^{_OK}*[^\s\u0000-\u001f\u007f]{_OK}*$"
"""A text: not blank, no control character but tab and newline (the server refuses them, 422,
``validate.text_problem``; NUL also because Postgres cannot store it)."""
LINE_PATTERN = r"^[^\u0000-\u001f\u007f]*[^\s\u0000-\u001f\u007f][^\u0000-\u001f\u007f]*$"
"""A one-line text (:class:`Text`): not blank, no control character at all."""


def _pattern(regex: re.Pattern[str] | None) -> str:
    """The JSON Schema form of a Python pattern (ours are ECMA-compatible)."""
    if regex is None:
        return LINE_PATTERN
    return regex.pattern


@dataclass(frozen=True)
class Text:
    """A non-blank string of at most ``max_len`` characters (after trimming)."""

    max_len: int
    required: bool = True
    pattern: re.Pattern[str] | None = None
    doc: str = ""
    multiline: bool = False
    """Free text: tab and newline allowed (the text rule); otherwise one line."""

    def check(self, body: Mapping[str, Any], name: str) -> str | None:
        return validate.text(
            dict(body),
            name,
            max_len=self.max_len,
            required=self.required,
            pattern=self.pattern,
            multiline=self.multiline,
        )

    def schema(self) -> Json:
        return _described(
            {
                "type": "string",
                "minLength": 1,
                "maxLength": self.max_len,
                "pattern": TEXT_PATTERN
                if self.multiline and self.pattern is None
                else _pattern(self.pattern),
            },
            self.doc,
        )


def Code(*, required: bool = True, doc: str = "") -> Text:
    """An identifier (grid or item code): letters, digits and ``._:-``, at most 64."""
    return Text(64, required=required, pattern=validate.CODE_RE, doc=doc)


@dataclass(frozen=True)
class RawText:
    """A string whose value the core rules check (their refusal names the field); only the type
    is checked here.  ``max_len`` is the rules' limit, shown in the document."""

    max_len: int
    doc: str = ""
    required: bool = False
    missing_code: str = "missing_field"

    def check(self, body: Mapping[str, Any], name: str) -> str | None:
        value = body.get(name)
        if value is None and self.required:
            # Found by schemathesis: a fee without its item reached the rules as a KeyError.
            code = "invalid_value" if self.missing_code == "invalid_value" else "missing_field"
            raise validate.invalid(name, f"{name!r} is required", code)
        if value is not None and not isinstance(value, str):
            raise validate.invalid(name, f"{name!r} must be text")
        return value

    def schema(self) -> Json:
        return _described(
            {"type": "string", "minLength": 1, "maxLength": self.max_len, "pattern": TEXT_PATTERN},
            self.doc,
        )


@dataclass(frozen=True)
class Number:
    """A number (integer or float) from ``lo`` to ``hi``."""

    lo: float
    hi: float
    required: bool = True
    doc: str = ""

    def check(self, body: Mapping[str, Any], name: str) -> float | None:
        if body.get(name) is None and not self.required:
            return None
        return validate.number(dict(body), name, self.lo, self.hi)

    def schema(self) -> Json:
        return _described({"type": "number", "minimum": self.lo, "maximum": self.hi}, self.doc)


@dataclass(frozen=True)
class Integer:
    """A whole number from ``lo`` to ``hi`` (``true``/``false`` are not numbers)."""

    lo: int
    hi: int
    required: bool = False
    doc: str = ""
    message: str = ""

    def check(self, body: Mapping[str, Any], name: str) -> int | None:
        value = body.get(name)
        if value is None:
            if self.required:
                raise validate.invalid(name, f"{name!r} is required", "missing_field")
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON Schema's integers include 2.0 (and msgpack has floats)
        if isinstance(value, bool) or not isinstance(value, int) or not self.lo <= value <= self.hi:
            message = self.message or "{name} must be a whole number from {lo} to {hi}"
            raise validate.invalid(name, message.format(name=repr(name), lo=self.lo, hi=self.hi))
        return value

    def schema(self) -> Json:
        return _described({"type": "integer", "minimum": self.lo, "maximum": self.hi}, self.doc)


def PositiveId(*, doc: str = "", required: bool = False) -> Integer:
    """A database id or version: a positive whole number below 2**63."""
    return Integer(
        1, 2**63 - 1, required=required, doc=doc, message="{name} must be a positive whole number"
    )


@dataclass(frozen=True)
class Boolean:
    required: bool = False
    doc: str = ""

    def check(self, body: Mapping[str, Any], name: str) -> bool | None:
        value = body.get(name)
        if value is None:
            if self.required:
                raise validate.invalid(name, f"{name!r} is required", "missing_field")
            return None
        if not isinstance(value, bool):
            raise validate.invalid(name, f"{name!r} must be true or false")
        return value

    def schema(self) -> Json:
        return _described({"type": "boolean"}, self.doc)


@dataclass(frozen=True)
class Choice:
    """One of a fixed list of strings (surrounding blanks are trimmed)."""

    values: tuple[str, ...]
    required: bool = True
    doc: str = ""

    def check(self, body: Mapping[str, Any], name: str) -> str | None:
        value = body.get(name)
        if value is None:
            if self.required:
                raise validate.invalid(name, f"{name!r} is required", "missing_field")
            return None
        if not isinstance(value, str) or value.strip() not in self.values:
            raise validate.invalid(name, f"{name!r} must be one of {', '.join(self.values)}")
        return value.strip()

    def schema(self) -> Json:
        return _described({"type": "string", "enum": list(self.values)}, self.doc)


@dataclass(frozen=True)
class Opaque:
    """A JSON value passed on to a parser that checks it (e.g. a GeoJSON geometry)."""

    json_schema: Json
    required: bool = False
    doc: str = ""
    missing_code: str = "missing_field"
    """The code when a required value is absent (the claim contract says ``invalid_value``)."""

    def check(self, body: Mapping[str, Any], name: str) -> Any:
        value = body.get(name)
        if value is None and self.required:
            code = "invalid_value" if self.missing_code == "invalid_value" else "missing_field"
            raise validate.invalid(name, f"{name!r} is required", code)
        return value

    def schema(self) -> Json:
        return _described(dict(self.json_schema), self.doc)


@dataclass(frozen=True)
class OneOf:
    """At least one of ``names`` must be given; ``message`` says so (``missing_field``
    naming the first)."""

    names: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class Obj:
    """A map with exactly these fields (anything else is ``unknown_field``)."""

    fields: Mapping[str, Field]
    required: bool = True
    doc: str = ""
    one_of: tuple[OneOf, ...] = ()
    extra: bool = False
    """Whether fields not listed are allowed (and passed on untouched)."""
    patterns: tuple[tuple[str, Json], ...] = ()
    """(regex, schema) of further fields allowed by name (passed on untouched, for the caller
    to check), such as Open311's ``attribute[CODE]``."""

    def check(self, body: Mapping[str, Any], name: str) -> dict[str, Any] | None:
        value = validate.mapping(dict(body), name, required=self.required)
        return None if value is None else self.check_map(value)

    def check_map(self, value: Mapping[str, Any]) -> dict[str, Any]:
        """Check a whole map (a request body): its clean values, absent ones left out."""
        if not self.extra:
            allowed = [k for k in value if any(re.fullmatch(p, k) for p, _ in self.patterns)]
            validate.only_fields(dict(value), [*self.fields, *allowed])
        out: dict[str, Any] = {k: v for k, v in value.items() if k not in self.fields}
        for key, spec in self.fields.items():
            clean = spec.check(value, key)
            if clean is not None:
                out[key] = clean
        for group in self.one_of:
            if all(out.get(n) is None for n in group.names):
                raise validate.invalid(group.names[0], group.message, "missing_field")
        return out

    def schema(self) -> Json:
        out: Json = {
            "type": "object",
            "properties": {k: f.schema() for k, f in self.fields.items()},
            "additionalProperties": self.extra,
        }
        if self.patterns:
            out["patternProperties"] = {f"^{p}$": dict(s) for p, s in self.patterns}
        required = [k for k, f in self.fields.items() if f.required]
        if required:
            out["required"] = required
        if self.one_of:
            out["allOf"] = [
                {"anyOf": [{"required": [n]} for n in g.names], "description": g.message}
                for g in self.one_of
            ]
        return _described(out, self.doc)


EMPTY = Obj({}, doc="No fields.")


def optional(spec: Field) -> Field:
    """The same field, but optional."""
    return dataclasses.replace(spec, required=False)  # type: ignore[type-var]
