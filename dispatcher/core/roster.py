"""Grids, agents and the people behind tokens: the records operators keep."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class TokenKind(enum.StrEnum):
    ADMIN = "admin"  # operators
    INTAKE = "intake"  # front ends that file orders on an applicant's behalf
    AGENT = "agent"  # one per agent
    TRACKING = "tracking"  # one per order: the applicant's


@dataclass(frozen=True, slots=True)
class Grid:
    code: str
    name: str
    level: str = "grid"
    parent: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "level": self.level, "parent": self.parent}


@dataclass(frozen=True, slots=True)
class Agent:
    id: int
    name: str
    phone: str
    grids: tuple[str, ...]
    active: bool = True

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "phone": self.phone,
            "grids": list(self.grids),
            "active": self.active,
        }


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token speaks for.  ``agent`` is set for agent tokens, ``order_id`` for tracking."""

    kind: TokenKind
    name: str = ""
    agent: Agent | None = None
    order_id: int | None = None
    token_id: int | None = None
    """The token's id (``tokens.id``): what revocation and per-token limits name."""

    @property
    def actor(self) -> str:
        """How this principal is named in the trail."""
        if self.agent is not None:
            return f"agent:{self.agent.id}"
        if self.order_id is not None:
            return "applicant"
        return f"{self.kind.value}:{self.name}" if self.name else self.kind.value
