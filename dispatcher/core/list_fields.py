"""Fields that hold lists (of texts, of codes, of objects): declared once, checked by
``check`` and documented by ``schema``, like the scalar fields of :mod:`.fields`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dispatcher.core import validate
from dispatcher.core.fields import TEXT_PATTERN, Json, Obj, _described
from dispatcher.exceptions import RequestError


@dataclass(frozen=True)
class Texts:
    """A list of strings of at most ``max_items`` entries.  With ``max_len`` each entry is a
    non-blank text of at most that many characters; without, the rules check the entries."""

    max_items: int
    max_len: int
    checked: bool = False
    required: bool = False
    doc: str = ""
    min_items: int = 0
    unique: bool = False
    rules_max: int | None = None
    """The rules' own limit, shown in the document (longer lists up to ``max_items`` reach the
    rules, which refuse them naming the field)."""

    def check(self, body: Mapping[str, Any], name: str) -> tuple[str, ...]:
        value = body.get(name)
        if value is None:
            if self.required:
                raise validate.invalid(name, f"{name!r} is required", "missing_field")
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise validate.invalid(name, f"{name!r} must be a list of texts")
        if len(value) > self.max_items:
            shown = self.rules_max or self.max_items
            raise validate.invalid(name, f"{name!r} has more than {shown} entries")
        if self.checked and not all(v.strip() and len(v.strip()) <= self.max_len for v in value):
            raise validate.invalid(name, f"each of {name!r} must be a text of 1 to {self.max_len}")
        return tuple(v.strip() for v in value) if self.checked else tuple(value)

    def schema(self) -> Json:
        item = {
            "type": "string",
            "minLength": 1,
            "maxLength": self.max_len,
            "pattern": TEXT_PATTERN,
        }
        most = self.rules_max or self.max_items
        out: Json = {"type": "array", "maxItems": most, "items": item}
        if self.min_items:
            out["minItems"] = self.min_items
        if self.unique:
            out["uniqueItems"] = True
        return _described(out, self.doc)


@dataclass(frozen=True)
class CodeList:
    """A non-empty list of codes (duplicates dropped)."""

    max_items: int = 100
    required: bool = True
    doc: str = ""

    def check(self, body: Mapping[str, Any], name: str) -> list[str]:
        return validate.code_list(dict(body), name, max_items=self.max_items)

    def schema(self) -> Json:
        item = {"type": "string", "pattern": validate.CODE_RE.pattern}
        return _described(
            {"type": "array", "minItems": 1, "maxItems": self.max_items, "items": item}, self.doc
        )


@dataclass(frozen=True)
class ListOf:
    """A list of maps, each checked by ``item``."""

    item: Obj
    max_items: int
    required: bool = False
    doc: str = ""
    message: str = ""

    def check(self, body: Mapping[str, Any], name: str) -> tuple[dict[str, Any], ...]:
        value = body.get(name, [])
        if value is None:
            return ()
        if not isinstance(value, list) or len(value) > self.max_items:
            raise validate.invalid(
                name, self.message or f"{name!r} must be a list of at most {self.max_items}"
            )
        out = []
        for entry in value:
            if not isinstance(entry, dict):
                raise validate.invalid(name, self.message or f"each of {name!r} must be an object")
            try:
                out.append(self.item.check_map(entry))
            except RequestError:
                raise validate.invalid(
                    name, self.message or f"an entry of {name!r} is malformed"
                ) from None
        return tuple(out)

    def schema(self) -> Json:
        return _described(
            {"type": "array", "maxItems": self.max_items, "items": self.item.schema()}, self.doc
        )
