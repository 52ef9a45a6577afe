"""Query-string parameters, declared once: checked by :meth:`Query.check` and documented by
:meth:`Query.parameter` (the OpenAPI document reads the same declarations)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dispatcher.core import validate
from dispatcher.core.fields import Json


@dataclass(frozen=True)
class Query:
    """A query-string parameter: documented by :meth:`parameter`, checked by :meth:`check`
    (for the schemas it understands: integers with bounds, enums, plain strings)."""

    name: str
    json_schema: Json
    doc: str
    required: bool = False

    def check(self, params: Mapping[str, str]) -> Any:
        """The clean value (None when absent).  Raises RequestError 422 naming the parameter."""
        name, schema, raw = self.name, self.json_schema, params.get(self.name)
        if raw is None:
            if self.required:
                raise validate.invalid(name, f"{name!r} is required", "missing_field")
            return None
        if "enum" in schema:
            if raw not in schema["enum"]:
                raise validate.invalid(name, f"{name!r} must be one of {', '.join(schema['enum'])}")
            return raw
        if schema.get("type") == "integer":
            lo, hi = schema.get("minimum", 0), schema.get("maximum", 2**63 - 1)
            if not (raw.isascii() and raw.isdigit()) or not lo <= int(raw) <= hi:
                raise validate.invalid(name, f"{name!r} must be a whole number from {lo} to {hi}")
            return int(raw)
        return validate.text({name: raw}, name, max_len=schema.get("maxLength", 1000))

    def parameter(self) -> Json:
        return {
            "name": self.name,
            "in": "query",
            "required": self.required,
            "description": self.doc,
            "schema": self.json_schema,
        }
