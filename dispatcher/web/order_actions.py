"""HTTP endpoints for the workflow after the grab: one ``POST /v1/orders/{id}/<action>`` each.

Decode the body into :class:`~dispatcher.core.workflow.Params` (types only: the rules check values
and lengths), name the actor from the token, and let :func:`dispatcher.flows.handling.act` do it.
Every answer is the order as recorded plus ``event``, the trail entry the action added.
Every body may carry ``version``: the version of the order the caller saw; if the order has
changed since, nothing is done and the answer is 409 ``conflict`` (an operator's screen sends
it, so two operators acting on what they saw cannot both act).
Who may act: the claiming agent (accept, supply, progress, reply, release), the order's
tracking token (rate; cancel before acceptance), an admin token (cancel, reassign, assign,
classify).  Another kind of token gets 403 ``forbidden``, a state that does not allow the
action 409 ``illegal_transition`` naming ``details.current_state``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatcher.core import validate, workflow
from dispatcher.core.catalog import Level
from dispatcher.core.lifecycle import LIST_MAX, Action, Actor, ActorKind, Fee, OrderState, Params
from dispatcher.core.orders import Order
from dispatcher.core.points import Rating
from dispatcher.core.refusals import Refusal
from dispatcher.core.roster import Principal, TokenKind
from dispatcher.core.workflow import Decision
from dispatcher.exceptions import ForbiddenError, NotFoundError, RequestError
from dispatcher.flows import handling
from dispatcher.web.http import answer, body, context, principal, refusal_error
from dispatcher.web.orders import order_id_of

MAX_LIST_ITEMS = 4 * LIST_MAX  # anything longer is refused before the rules see it


def actor_of(who: Principal, order_id: int) -> Actor:
    """The workflow actor a token speaks for on this order.  Raises ForbiddenError."""
    if who.agent is not None:
        return Actor(ActorKind.AGENT, who.agent.id)
    if who.kind is TokenKind.ADMIN:
        return Actor(ActorKind.OPERATOR)
    if who.kind is TokenKind.TRACKING and who.order_id == order_id:
        return Actor(ActorKind.APPLICANT)
    raise ForbiddenError(f"a {who.kind.value} token may not act on this order")


async def _actor(request: Request, who: Principal, order_id: int) -> Actor:
    """:func:`actor_of`, but 404 rather than 403 for an order that does not exist."""
    try:
        return actor_of(who, order_id)
    except ForbiddenError:
        if await context(request).store.get_order(order_id) is None:
            raise NotFoundError("no such order") from None
        raise


def _strings(data: dict[str, Any], name: str) -> tuple[str, ...]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise validate.invalid(name, f"{name!r} must be a list of texts")
    if len(value) > MAX_LIST_ITEMS:
        raise validate.invalid(name, f"{name!r} has more than {LIST_MAX} entries")
    return tuple(value)


def _int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise validate.invalid(name, f"{name!r} must be a positive whole number")
    return value


def _text(data: dict[str, Any], name: str) -> Any:
    """Passed on as given (the rules say what is wrong with it); only the type is checked."""
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise validate.invalid(name, f"{name!r} must be text")
    return value


def _fees(data: dict[str, Any]) -> tuple[Fee, ...]:
    value = data.get("fees", [])
    if not isinstance(value, list) or len(value) > MAX_LIST_ITEMS:
        raise validate.invalid("fees", f"'fees' must be a list of at most {LIST_MAX} fees")
    fees = []
    for fee in value:
        if not isinstance(fee, dict) or set(fee) != {"item", "amount_fen"}:
            raise validate.invalid("fees", "each fee must be {item, amount_fen}")
        fees.append(Fee(fee["item"], fee["amount_fen"]))  # the rules check both
    return tuple(fees)


def _rating(data: dict[str, Any]) -> Rating | None:
    value = data.get("rating")
    if value is None:
        return None
    labels = "、".join(r.label for r in Rating)
    if not isinstance(value, str):
        raise validate.invalid("rating", f"'rating' must be one of {labels}")
    try:
        return Rating.parse(value.strip())
    except ValueError:
        raise validate.invalid("rating", f"'rating' must be one of {labels}") from None


def _desk(data: dict[str, Any]) -> Level | None:
    value = data.get("desk")
    if value is None:
        return None
    if not isinstance(value, str) or value not in {lv.value for lv in Level}:  # (fuzz: a list)
        raise validate.invalid("desk", "'desk' must be 'village', 'township' or 'county'")
    return Level(value)


def _params(action: Action, data: dict[str, Any]) -> Params:
    """Decode the body of ``action``: only its own fields, each of the right type."""
    validate.only_fields(data, (*FIELDS[action], "version"))
    green = data.get("green_card", False)
    if not isinstance(green, bool):
        raise validate.invalid("green_card", "'green_card' must be true or false")
    return Params(
        received=_strings(data, "received"),
        green_card=green,
        supply_by=_int(data, "supply_by"),
        note=_text(data, "note"),
        desk=_desk(data),
        result=_text(data, "result"),
        references=_strings(data, "references"),
        fees=_fees(data),
        rating=_rating(data),
        comment=_text(data, "comment"),
        reason=_text(data, "reason"),
        agent_id=_int(data, "agent_id"),
    )


FIELDS: dict[Action, tuple[str, ...]] = {
    Action.ACCEPT: ("received", "green_card", "supply_by"),
    Action.SUPPLY: ("received",),
    Action.PROGRESS: ("note", "desk"),
    Action.REPLY: ("result", "references", "fees"),
    Action.RATE: ("rating", "comment"),
    Action.RELEASE: ("reason",),
    Action.CANCEL: ("reason",),
    Action.REASSIGN: ("agent_id", "reason"),
    Action.ASSIGN: ("agent_id", "reason"),
}


def _outcome(request: Request, outcome: handling.Outcome, now: int) -> Response:
    if isinstance(outcome, Refusal):
        raise refusal_error(outcome)
    return _answer(request, outcome.order, outcome.decision, now)


def _answer(request: Request, order: Order, decision: Decision, now: int) -> Response:
    event = decision.event
    trail = {"kind": event.kind, "label": event.label, "at": event.at}
    return answer(request, {**order.to_wire(now), "event": {**trail, "details": event.details}})


async def _assignee(request: Request, params: Params) -> None:
    """An operator may give an order only to an active agent that exists: 422 otherwise."""
    if params.agent_id is None:
        return
    agent = await context(request).store.get_agent(params.agent_id)
    if agent is None or not agent.active:
        raise RequestError(
            f"no active agent {params.agent_id}",
            code="unknown_agent",
            status=422,
            details={"field": "agent_id"},
        )


def endpoint(action: Action) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        who = await principal(request)
        order_id = order_id_of(request)
        actor = await _actor(request, who, order_id)
        data = await body(request, empty_ok=True)
        params = _params(action, data)
        if action in (Action.REASSIGN, Action.ASSIGN) and actor.kind is ActorKind.OPERATOR:
            await _assignee(request, params)
        ctx = context(request)
        outcome = await handling.act(
            ctx, order_id, action, actor, who.actor, params, version=_int(data, "version")
        )
        return _outcome(request, outcome, ctx.clock())

    handle.__name__ = f"{action.value}_order"
    return handle


async def classify(request: Request) -> Response:
    """Give an order its catalogue item: ``{item}``.  422 ``unknown_item`` / ``retired_item``."""
    who = await principal(request)
    order_id = order_id_of(request)
    actor = await _actor(request, who, order_id)
    data = await body(request)
    validate.only_fields(data, ("item", "version"))
    code = validate.code(data, "item")
    assert code is not None
    ctx = context(request)
    item = await ctx.store.get_item(code)
    if item is None or item.retired:
        kind = "unknown_item" if item is None else "retired_item"
        raise RequestError(
            f"no live catalogue item {code!r}", code=kind, status=422, details={"field": "item"}
        )

    def decider(state: OrderState, now: int) -> Decision | Refusal:
        return workflow.classify(state, item, actor, now)

    version = _int(data, "version")
    outcome = await handling.perform(ctx, order_id, decider, who.actor, version=version)
    return _outcome(request, outcome, ctx.clock())


async def my_orders(request: Request) -> Response:
    """``GET /v1/agent/orders``: the orders the calling agent holds, each with ``overdue``."""
    who = await principal(request, TokenKind.AGENT)
    assert who.agent is not None
    ctx = context(request)
    orders = []
    for status in ("claimed", "accepted", "awaiting_materials"):
        orders += await ctx.store.list_orders(status=status, agent_id=who.agent.id)
    now = ctx.clock()
    held = sorted(orders, key=lambda o: o.id)
    return answer(
        request,
        {"orders": [o.to_wire(now) for o in held], "limit": ctx.settings.max_held},
    )


routes = [
    *(
        Route(f"/v1/orders/{{order_id}}/{action.value}", endpoint(action), methods=["POST"])
        for action in FIELDS
    ),
    Route("/v1/orders/{order_id}/classify", classify, methods=["POST"]),
    Route("/v1/agent/orders", my_orders, methods=["GET"]),
]
