"""What each allowed action does to an order: the per-action rules of the workflow.

:func:`apply` is called by :func:`dispatcher.core.workflow.decide` once the table, the actor and the
clock have allowed the action; it checks the params and returns the order after the action,
the kind of event to record and its details.  It raises :class:`~dispatcher.core.refusals.Invalid`
for bad params, which ``decide`` returns as a refusal.  Pure: no I/O, ``now`` is an argument.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from dispatcher.core.lifecycle import (
    FEE_MAX_FEN,
    LIST_MAX,
    REASON_MAX,
    TEXT_MAX,
    Action,
    Actor,
    Fee,
    OrderState,
    Params,
    Policy,
    State,
)
from dispatcher.core.orders import Scope
from dispatcher.core.points import Rating
from dispatcher.core.refusals import Invalid, Unknown

S, A = State, Action


def apply(
    o: OrderState, action: Action, actor: Actor, now: int, p: Params, policy: Policy
) -> tuple[OrderState, str, dict[str, Any]]:
    """The order after an allowed ``action``, the event kind and its details."""
    match action:
        case A.ACCEPT:
            return _accept(o, now, p, policy)
        case A.SUPPLY:
            return _supply(o, now, p, policy)
        case A.PROGRESS:
            details: dict[str, Any] = {"note": _text(p.note, "note", TEXT_MAX)}
            if p.desk is not None:
                details["desk"] = p.desk.value
                details["desk_label"] = p.desk.label
            return o, "progress", details
        case A.REPLY:
            return _reply(o, now, p, policy)
        case A.RATE:
            if not isinstance(p.rating, Rating):
                raise Invalid("rating", "give a rating: " + "、".join(r.label for r in Rating))
            comment = _optional(p.comment, "comment", REASON_MAX)
            details = {"rating": p.rating.value, "rating_label": p.rating.label, "comment": comment}
            return replace(o, status=S.CLOSED, rating=p.rating, close_at=None), "rated", details
        case A.CLOSE:
            return replace(o, status=S.CLOSED, close_at=None), "closed_unrated", {}
        case A.RELEASE:
            assert actor.id is not None
            excluded = o.excluded | {actor.id}  # a fresh offer, to everyone but the releaser
            widen_at, escalate_at = now + policy.widen_after_ms, now + policy.escalate_after_ms
            after = replace(o, status=S.OFFERED, scope=Scope.GRID, claimed_by=None, claimed_at=None)
            after = replace(after, widen_at=widen_at, escalate_at=escalate_at, excluded=excluded)
            reason = _optional(p.reason, "reason", REASON_MAX)
            return after, "released", {"agent_id": actor.id, "reason": reason}
        case A.CANCEL:
            reason = _text(p.reason, "reason", REASON_MAX)
            return replace(o, status=S.CANCELLED), "cancelled", {"reason": reason, "by": actor.kind}
        case A.REASSIGN | A.ASSIGN:
            to = p.agent_id
            if isinstance(to, bool) or not isinstance(to, int) or to <= 0 or to == o.claimed_by:
                raise Invalid("agent_id", "'agent_id' must name an agent not holding the order")
            status = S.CLAIMED if o.status in (S.CLAIMED, S.ESCALATED) else o.status
            after = replace(o, status=status, claimed_by=to, claimed_at=now)
            reason = _optional(p.reason, "reason", REASON_MAX)
            kind = "reassigned" if action is A.REASSIGN else "assigned"
            return after, kind, {"from": o.claimed_by, "to": to, "reason": reason}
        case A.ESCALATE:
            return replace(o, status=S.ESCALATED), "escalated", {}
    raise AssertionError(action)  # pragma: no cover - every Action has a case


def _accept(
    o: OrderState, now: int, p: Params, policy: Policy
) -> tuple[OrderState, str, dict[str, Any]]:
    received = _materials(o, p.received)
    missing = tuple(m for m in o.required if m not in received)
    details: dict[str, Any] = {"received": list(received), "missing": list(missing)}
    if p.supply_by is not None and p.supply_by <= now:
        raise Invalid("supply_by", "'supply_by' must be in the future")
    if missing and not p.green_card:
        if p.supply_by is None:
            raise Invalid("supply_by", "materials missing: give a supply-by time")
        after = replace(o, status=S.AWAITING_MATERIALS, missing=missing, supply_by=p.supply_by)
        return after, "awaiting_materials", details | {"supply_by": p.supply_by}
    after = _accepted(o, now, policy, missing, p.supply_by if missing else None)
    kind = "accepted_green_card" if missing else "accepted"
    return after, kind, details | {"due_at": after.due_at}


def _supply(
    o: OrderState, now: int, p: Params, policy: Policy
) -> tuple[OrderState, str, dict[str, Any]]:
    received = _materials(o, p.received)
    still = tuple(m for m in o.missing if m not in received)
    if not o.missing or still == o.missing:
        raise Invalid("received", "none of the missing materials: " + "、".join(o.missing))
    details: dict[str, Any] = {"received": list(received), "missing": list(still)}
    if still or o.status is S.ACCEPTED:
        after = replace(o, missing=still, supply_by=o.supply_by if still else None)
        return after, "supplied", details
    after = _accepted(o, now, policy, (), None)
    return after, "supplied", details | {"due_at": after.due_at}


def _reply(
    o: OrderState, now: int, p: Params, policy: Policy
) -> tuple[OrderState, str, dict[str, Any]]:
    result = _text(p.result, "result", TEXT_MAX)
    references = _texts(p.references, "references")
    if len(p.fees) > LIST_MAX:
        raise Invalid("fees", f"'fees' has more than {LIST_MAX} entries")
    fees = [Fee(_text(f.item, "fees", REASON_MAX), _fen(f.amount_fen)) for f in p.fees]
    total = sum(f.amount_fen for f in fees)
    details: dict[str, Any] = {"result": result, "references": list(references)}
    details |= {"fees": [f.to_wire() for f in fees], "fees_total_fen": total}
    after = replace(o, status=S.REPLIED, replied_at=now, close_at=now + policy.close_after_ms)
    return after, "replied", details


def _accepted(
    o: OrderState, now: int, policy: Policy, missing: tuple[str, ...], supply_by: int | None
) -> OrderState:
    """``o`` accepted at ``now``: due at the end of its time limit in working days."""
    limit = o.time_limit_days
    due = None if limit is None else policy.calendar.add_working_days(now, limit)
    return replace(
        o, status=S.ACCEPTED, accepted_at=now, due_at=due, missing=missing, supply_by=supply_by
    )


def _materials(o: OrderState, values: Iterable[str]) -> tuple[str, ...]:
    """The materials received; for a catalogue order each must be one its item lists."""
    received = _texts(values, "received")
    if o.required:
        unknown = [m for m in received if m not in o.required]
        if unknown:
            raise Unknown(
                "received",
                f"{unknown[0]!r} is not a material of this item: " + "、".join(o.required),
            )
    return received


def _fen(amount: int) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= FEE_MAX_FEN:
        raise Invalid("fees", f"each fee must be 1 to {FEE_MAX_FEN} fen (a whole number)")
    return amount


def _optional(value: str | None, name: str, max_len: int) -> str | None:
    return _text(value, name, max_len) if isinstance(value, str) and value.strip() else None


def _text(value: str | None, name: str, max_len: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(name, f"{name!r} is required and must be text")
    if len(value.strip()) > max_len:
        raise Invalid(name, f"{name!r} is longer than {max_len} characters")
    return value.strip()


def _texts(values: Iterable[str], name: str) -> tuple[str, ...]:
    """Trimmed, without repeats; at most LIST_MAX entries of at most REASON_MAX characters."""
    out = tuple(dict.fromkeys(_text(v, name, REASON_MAX) for v in values))
    if len(out) > LIST_MAX:
        raise Invalid(name, f"{name!r} has more than {LIST_MAX} entries")
    return out
