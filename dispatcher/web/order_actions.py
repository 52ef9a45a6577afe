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

from dispatcher.core import workflow
from dispatcher.core.catalog import Level
from dispatcher.core.lifecycle import Action, Actor, ActorKind, Fee, OrderState, Params
from dispatcher.core.orders import Order
from dispatcher.core.points import Rating
from dispatcher.core.refusals import Refusal
from dispatcher.core.roster import Principal, TokenKind
from dispatcher.core.workflow import Decision
from dispatcher.exceptions import ForbiddenError, NotFoundError, RequestError
from dispatcher.flows import handling
from dispatcher.web import schemas
from dispatcher.web.http import answer, body, context, principal, refusal_error
from dispatcher.web.orders import order_id_of
from dispatcher.web.schemas import ACTION_BODIES


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


def _int(data: dict[str, Any], name: str) -> int | None:
    value: int | None = schemas.VERSION.check(data, name)
    return value


def _params(action: Action, data: dict[str, Any]) -> Params:
    """Decode the body of ``action`` through its declared schema (only its own fields, each of
    the right type; the rules check the values)."""
    clean = ACTION_BODIES[action].check_map(data)
    desk, rating = clean.get("desk"), clean.get("rating")
    return Params(
        received=clean.get("received", ()),
        green_card=clean.get("green_card", False),
        supply_by=clean.get("supply_by"),
        note=clean.get("note"),
        desk=None if desk is None else Level(desk),
        result=clean.get("result"),
        references=clean.get("references", ()),
        fees=tuple(Fee(fee["item"], fee["amount_fen"]) for fee in clean.get("fees", ())),
        rating=None if rating is None else Rating.parse(rating),
        comment=clean.get("comment"),
        reason=clean.get("reason"),
        agent_id=clean.get("agent_id"),
    )


FIELDS: dict[Action, tuple[str, ...]] = {
    action: tuple(name for name in spec.fields if name != "version")
    for action, spec in ACTION_BODIES.items()
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
    data = schemas.CLASSIFY_BODY.check_map(await body(request))
    code: str = data["item"]
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
