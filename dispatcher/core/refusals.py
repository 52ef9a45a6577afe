"""Why the workflow refuses an action: values, not exceptions, like a lost claim.

Two people acting on one order at once is normal (the applicant cancels as the agent
accepts), so :func:`dispatcher.core.workflow.decide` returns a refusal instead of raising.  They
form one small tree; the flow that records actions (:mod:`dispatcher.flows.handling`) adds
the refusals only it can know (the order is gone, it changed meanwhile, the agent is full), and
only the web layer turns one into an HTTP error (:func:`dispatcher.web.http.refusal_error`)::

    Refusal
    ├── WrongActor          403 forbidden: "never you": this kind of actor may do the action in
    │                       no state at all, or the agent is not the one holding the order
    ├── IllegalTransition   409 illegal_transition: "not now": this kind of actor may, but not
    │                       in the current state (named in ``details.current_state``)
    ├── NotDue              409 not_due: a clock action before its deadline
    ├── InvalidParams       422 invalid_value: the params are wrong (``details.field``)
    │   └── UnknownMaterial 422 unknown_material: a material the order's item does not list
    ├── NoSuchOrder         404 not_found: no order has this id
    ├── Changed             409 conflict: the order changed meanwhile (or is not at the
    │                       ``version`` asked for); look and retry
    └── LimitReached        409 limit_reached: the agent given the order holds as many as allowed
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from dispatcher.core.lifecycle import Action, ActorKind, State


class Refusal:
    """Base of the refusals: frozen values whose fields are the error's ``details``."""

    __slots__ = ()
    code: ClassVar[str]
    status: ClassVar[int]
    template: ClassVar[str]  # the message, formatted with the fields

    def details(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    @property
    def message(self) -> str:
        return self.template.format(**self.details())


@dataclass(frozen=True, slots=True)
class WrongActor(Refusal):
    """This kind of actor may never do this, or the agent is not the one holding the order."""

    action: Action | str
    actor: ActorKind
    code: ClassVar[str] = "forbidden"
    status: ClassVar[int] = 403
    template: ClassVar[str] = "this {actor} may not {action} this order"


@dataclass(frozen=True, slots=True)
class IllegalTransition(Refusal):
    """Not in the current state: the order moved on, or this state never allows the action."""

    current_state: State
    action: Action | str
    code: ClassVar[str] = "illegal_transition"
    status: ClassVar[int] = 409
    template: ClassVar[str] = "cannot {action} an order that is {current_state}"


@dataclass(frozen=True, slots=True)
class NotDue(Refusal):
    """A clock action before its deadline (the sweeper ran early or the clocks disagree)."""

    action: Action
    due_at: int
    code: ClassVar[str] = "not_due"
    status: ClassVar[int] = 409
    template: ClassVar[str] = "cannot {action} before {due_at}"


@dataclass(frozen=True, slots=True)
class InvalidParams(Refusal):
    """The action is allowed but its params are wrong."""

    field: str
    reason: str
    code: ClassVar[str] = "invalid_value"
    status: ClassVar[int] = 422
    template: ClassVar[str] = "{reason}"


@dataclass(frozen=True, slots=True)
class UnknownMaterial(InvalidParams):
    """A material received that the order's catalogue item does not list."""

    code: ClassVar[str] = "unknown_material"


@dataclass(frozen=True, slots=True)
class NoSuchOrder(Refusal):
    """No order has this id (or it is not visible to the caller)."""

    code: ClassVar[str] = "not_found"
    status: ClassVar[int] = 404
    template: ClassVar[str] = "no such order"


@dataclass(frozen=True, slots=True)
class Changed(Refusal):
    """The order changed meanwhile: decided again it means something else now; look and retry."""

    current_state: State | str
    version: int
    code: ClassVar[str] = "conflict"
    status: ClassVar[int] = 409
    template: ClassVar[str] = (
        "the order changed meanwhile: it is {current_state} now (version {version}); look and retry"
    )


@dataclass(frozen=True, slots=True)
class LimitReached(Refusal):
    """The agent an order is given to holds ``limit`` orders already."""

    agent_id: int
    limit: int
    code: ClassVar[str] = "limit_reached"
    status: ClassVar[int] = 409
    template: ClassVar[str] = "agent {agent_id} holds {limit} orders already"


class Invalid(Exception):
    """Raised by the rules with (field, reason); ``decide`` returns it as InvalidParams."""

    refusal: ClassVar[type[InvalidParams]] = InvalidParams

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field = field
        self.reason = reason


class Unknown(Invalid):
    """Raised by the rules for a material the item does not list."""

    refusal = UnknownMaterial
