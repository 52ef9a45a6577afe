"""Actor before state over HTTP: an agent acting on an order it does not hold gets 403
``forbidden`` and learns nothing of the order's state (PROTOCOL: right token, wrong object)."""

from __future__ import annotations

from tests.steps import MATERIALS, CrewFactory, claimed, error, file, ok, post


async def test_another_agents_order_and_one_never_offered(crew: CrewFactory) -> None:
    async with crew({"g1": 2, "g2": 1}) as t:
        a, b, far = t.agent("g1", 0), t.agent("g1", 1), t.agent("g2", 0)
        order = await claimed(t, a)
        await ok(t.url, a["token"], order["id"], "accept", received=MATERIALS[:2], supply_by=2**45)
        for action, body in (
            ("supply", {"received": MATERIALS[2:]}),
            ("progress", {"note": "偷看"}),
            ("reply", {"result": "偷办"}),
            ("accept", {"received": MATERIALS}),
            ("release", {}),
        ):
            for stranger in (b, far):
                r = await post(t.url, stranger["token"], order["id"], action, **body)
                assert error(r) == (403, "forbidden"), (action, r.text)
                assert "current_state" not in r.text and "awaiting" not in r.text
        fresh = await file(t)  # offered in g1, never to g2
        r = await post(t.url, far["token"], fresh["id"], "accept", received=MATERIALS)
        assert error(r) == (403, "forbidden") and "current_state" not in r.text
