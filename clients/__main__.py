"""A terminal agent app: ``python -m clients URL TOKEN [--grab]``.

Connects as the agent of TOKEN, prints every frame as one JSON line, and with ``--grab``
claims every offer it sees (first claim wins; you will see ``won`` or ``taken``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from clients.agent import AgentClient, ClientError
from dispatcher.live import wire


async def main(url: str, token: str, grab: bool) -> int:
    try:
        agent = await AgentClient.connect(url, token)
    except ClientError as exc:
        print(f"cannot connect: {exc}", file=sys.stderr)
        return 1
    async with agent:
        print(json.dumps(wire.to_map(agent.welcome), ensure_ascii=False), flush=True)
        async for frame in agent:
            print(json.dumps(wire.to_map(frame), ensure_ascii=False), flush=True)
            if grab and isinstance(frame, wire.Offer) and frame.order["id"] in agent.offers:
                result = await agent.claim(frame.order["id"])
                print(json.dumps(wire.to_map(result), ensure_ascii=False), flush=True)
    print(f"closed: {agent.close_code} {agent.close_reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m clients", description=__doc__)
    parser.add_argument("url", help="server, e.g. http://127.0.0.1:8000")
    parser.add_argument("token", help="the agent's token")
    parser.add_argument("--grab", action="store_true", help="claim every offer")
    args = parser.parse_args()
    try:
        sys.exit(asyncio.run(main(args.url, args.token, args.grab)))
    except KeyboardInterrupt:
        pass
