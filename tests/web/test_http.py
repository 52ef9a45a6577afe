"""The web layer turns a refusal (a value from the core or a flow) into its HTTP error."""

from __future__ import annotations

from dispatcher.core.lifecycle import Action, State
from dispatcher.core.refusals import Changed, IllegalTransition, LimitReached, NoSuchOrder
from dispatcher.exceptions import RequestError
from dispatcher.web.http import refusal_error


def test_a_refusal_becomes_its_status_code_message_and_details() -> None:
    error = refusal_error(IllegalTransition(State.CLOSED, Action.RATE))
    assert isinstance(error, RequestError)
    assert (error.status, error.code) == (409, "illegal_transition")
    assert error.details == {"current_state": "closed", "action": "rate"}
    assert "closed" in error.message


def test_the_flows_refusals_map_to_404_and_409() -> None:
    assert (refusal_error(NoSuchOrder()).status, refusal_error(NoSuchOrder()).code) == (
        404,
        "not_found",
    )
    changed = refusal_error(Changed("accepted", 3))
    assert (changed.status, changed.code) == (409, "conflict")
    assert changed.details == {"current_state": "accepted", "version": 3}
    full = refusal_error(LimitReached(7, 5))
    assert (full.status, full.code, full.details) == (
        409,
        "limit_reached",
        {"agent_id": 7, "limit": 5},
    )
