"""The vocabulary of the workflow after the grab: states, actions, actors, the table, the trail.

Pure data, no rules: :mod:`dispatcher.core.effects` says what each action does and
:mod:`dispatcher.core.workflow` decides (see there for the overview).  The limits on texts and
lists are here because every layer that checks input (HTTP, the rules) uses the same ones.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from dispatcher.core.catalog import Level
from dispatcher.core.orders import Scope, Status
from dispatcher.core.points import Rating
from dispatcher.core.workdays import Calendar

TEXT_MAX = 1000  # note, result
REASON_MAX = 200  # reason, comment, one material, one fee item, one reference
LIST_MAX = 30  # materials, references, fees
FEE_MAX_FEN = 10_000_000  # one fee advanced: at most 100,000 yuan

State = Status
"""The states of the workflow are the order's statuses (:class:`dispatcher.core.orders.Status`)."""


class Action(enum.StrEnum):
    ACCEPT = "accept"
    SUPPLY = "supply"
    PROGRESS = "progress"
    REPLY = "reply"
    RATE = "rate"
    CLOSE = "close"
    RELEASE = "release"
    CANCEL = "cancel"
    REASSIGN = "reassign"
    ESCALATE = "escalate"
    ASSIGN = "assign"


class ActorKind(enum.StrEnum):
    AGENT = "agent"
    APPLICANT = "applicant"
    OPERATOR = "operator"
    SYSTEM = "system"  # the sweeper that owns the clock


S, A, K = State, Action, ActorKind
TRANSITIONS: Final[Mapping[tuple[State, Action, ActorKind], tuple[State, ...]]] = {
    (S.CLAIMED, A.ACCEPT, K.AGENT): (S.ACCEPTED, S.AWAITING_MATERIALS),
    (S.AWAITING_MATERIALS, A.SUPPLY, K.AGENT): (S.ACCEPTED, S.AWAITING_MATERIALS),
    (S.ACCEPTED, A.SUPPLY, K.AGENT): (S.ACCEPTED,),  # after a green-card (容缺) accept
    (S.ACCEPTED, A.PROGRESS, K.AGENT): (S.ACCEPTED,),
    (S.AWAITING_MATERIALS, A.PROGRESS, K.AGENT): (S.AWAITING_MATERIALS,),
    (S.ACCEPTED, A.REPLY, K.AGENT): (S.REPLIED,),
    (S.CLAIMED, A.RELEASE, K.AGENT): (S.OFFERED,),
    (S.REPLIED, A.RATE, K.APPLICANT): (S.CLOSED,),
    (S.OFFERED, A.CANCEL, K.APPLICANT): (S.CANCELLED,),
    (S.WIDENED, A.CANCEL, K.APPLICANT): (S.CANCELLED,),
    (S.CLAIMED, A.CANCEL, K.APPLICANT): (S.CANCELLED,),
    (S.ESCALATED, A.CANCEL, K.APPLICANT): (S.CANCELLED,),
    (S.OFFERED, A.CANCEL, K.OPERATOR): (S.CANCELLED,),
    (S.WIDENED, A.CANCEL, K.OPERATOR): (S.CANCELLED,),
    (S.CLAIMED, A.CANCEL, K.OPERATOR): (S.CANCELLED,),
    (S.ACCEPTED, A.CANCEL, K.OPERATOR): (S.CANCELLED,),
    (S.AWAITING_MATERIALS, A.CANCEL, K.OPERATOR): (S.CANCELLED,),
    (S.ESCALATED, A.CANCEL, K.OPERATOR): (S.CANCELLED,),
    (S.CLAIMED, A.REASSIGN, K.OPERATOR): (S.CLAIMED,),
    (S.ESCALATED, A.REASSIGN, K.OPERATOR): (S.CLAIMED,),
    (S.ACCEPTED, A.REASSIGN, K.OPERATOR): (S.ACCEPTED,),
    (S.AWAITING_MATERIALS, A.REASSIGN, K.OPERATOR): (S.AWAITING_MATERIALS,),
    (S.ESCALATED, A.ASSIGN, K.OPERATOR): (S.CLAIMED,),
    (S.OFFERED, A.ESCALATE, K.SYSTEM): (S.ESCALATED,),
    (S.WIDENED, A.ESCALATE, K.SYSTEM): (S.ESCALATED,),
    (S.REPLIED, A.CLOSE, K.SYSTEM): (S.CLOSED,),
}
KINDS: Final = {a: {k for (_, a2, k) in TRANSITIONS if a2 is a} for a in Action}
"""The kinds of actor that may do each action in some state."""

CLASSIFIABLE: Final[Mapping[ActorKind, frozenset[State]]] = {
    K.AGENT: frozenset({S.CLAIMED}),
    K.OPERATOR: frozenset({S.OFFERED, S.WIDENED, S.ESCALATED, S.CLAIMED}),
}
"""Who may give a free-text order its catalogue item, and while it is in which states: before
it is accepted, since acceptance checks the item's materials."""

# What the trail shows the applicant, by event kind.
EVENT_LABELS: Final[Mapping[str, str]] = {
    "filed": "您的申请已提交，正在为您派单",
    "widened": "已扩大派单范围，更多代办员可以接单",
    "claimed": "代办员已接单",
    "classified": "已为您确认办理事项",
    "accepted": "代办员已受理您的申请",
    "accepted_green_card": "代办员已容缺受理您的申请，缺少的材料可稍后补交",
    "awaiting_materials": "代办员已收到您的申请，请在期限内补齐材料",
    "supplied": "代办员已收到补交的材料",
    "progress": "代办员更新了办理进度",
    "replied": "代办员已回复办理结果，请您评价",
    "rated": "感谢您的评价，本次代办已办结",
    "closed_unrated": "评价期限已过，本次代办已办结",
    "released": "原代办员无法办理，正在为您重新派单",
    "cancelled": "本次代办已取消",
    "reassigned": "已为您更换代办员",
    "escalated": "暂时无人接单，已转交政务专员处理",
    "assigned": "政务专员已为您指派代办员",
    "points_classified": "政务专员已确认本次代办的事项类别",
    "followup_sampled": "本次代办已被抽中回访，工作人员将电话回访您",
    "followup_called": "工作人员已电话回访",
    "followup_unreached": "工作人员电话回访未能接通",
}


def label(kind: str) -> str:
    """The applicant's label for an event kind (the kind itself when there is none)."""
    return EVENT_LABELS.get(kind, kind)


def trail_entry(kind: str, at: int, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A trail entry as the applicant's ``status`` frame shows it (``event``)."""
    return {"kind": kind, "label": label(kind), "at": at, "details": dict(details or {})}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts.  ``id`` is required for an agent; an operator's is recorded when known."""

    kind: ActorKind
    id: int | None = None

    def __post_init__(self) -> None:
        if self.kind is ActorKind.AGENT and self.id is None:
            raise ValueError("an agent actor needs its agent id")

    def to_wire(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "id": self.id}


@dataclass(frozen=True, slots=True)
class Fee:
    """A fee the agent advanced for the applicant (垫付), to be reimbursed.  1 yuan = 100 fen."""

    item: str
    amount_fen: int

    def to_wire(self) -> dict[str, Any]:
        return {"item": self.item, "amount_fen": self.amount_fen}


@dataclass(frozen=True, slots=True)
class Params:
    """What an action needs; each action reads only the fields named beside them."""

    received: tuple[str, ...] = ()  # accept, supply: the materials the agent holds
    green_card: bool = False  # accept: 容缺受理, go on although materials are missing
    supply_by: int | None = None  # accept: when the missing materials are due (epoch ms)
    note: str | None = None  # progress (required)
    desk: Level | None = None  # progress: the level handling it now (村 → 乡镇 → 县)
    result: str | None = None  # reply (required)
    references: tuple[str, ...] = ()  # reply: receipt, licence or case numbers
    fees: tuple[Fee, ...] = ()  # reply
    rating: Rating | None = None  # rate (required)
    comment: str | None = None  # rate
    reason: str | None = None  # cancel (required), release, reassign
    agent_id: int | None = None  # reassign, assign (required)


NO_PARAMS: Final = Params()


@dataclass(frozen=True, slots=True)
class Policy:
    """The configured clocks and calendar.  Times in milliseconds."""

    calendar: Calendar
    widen_after_ms: int = 600_000  # BANGBAN_WIDEN_AFTER
    escalate_after_ms: int = 24 * 3_600_000  # BANGBAN_ESCALATE_AFTER
    close_after_ms: int = 7 * 86_400_000  # BANGBAN_CLOSE_AFTER: unrated replies close then


@dataclass(frozen=True, slots=True)
class OrderState:
    """The fields of an order that the workflow reads and writes.  Times are epoch ms.

    ``required`` and ``time_limit_days`` are the catalogue item's, copied at filing (empty and
    None for a free-text order).  ``excluded`` are agents who released the order: it must not be
    offered to them again.  ``version`` goes up by one with every decision.  The field names
    are those of :class:`dispatcher.core.orders.Order`, so a decision's changes apply to either.
    """

    status: State
    scope: Scope
    widen_at: int
    escalate_at: int
    claimed_by: int | None = None
    claimed_at: int | None = None
    excluded: frozenset[int] = frozenset()
    required: tuple[str, ...] = ()
    time_limit_days: int | None = None
    missing: tuple[str, ...] = ()  # required materials not yet received
    supply_by: int | None = None
    accepted_at: int | None = None
    due_at: int | None = None  # end of the last working day allowed (workdays)
    replied_at: int | None = None
    close_at: int | None = None  # when an unrated reply closes by itself
    rating: Rating | None = None
    version: int = 1


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the order's trail (痕迹管理).  ``label`` is for the applicant."""

    kind: str
    label: str
    actor: Actor
    at: int
    details: Mapping[str, Any]

    def to_wire(self) -> dict[str, Any]:
        wire = {"kind": self.kind, "label": self.label, "actor": self.actor.to_wire()}
        return wire | {"at": self.at, "details": dict(self.details)}
