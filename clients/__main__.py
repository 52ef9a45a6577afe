"""A terminal agent app: ``python -m clients URL TOKEN [--grab]``.

Connects as the agent of TOKEN, prints every frame as one JSON line, and with ``--grab``
claims every offer it sees (first claim wins; you will see ``won`` or ``taken``).  When the
server restarts it reconnects with backoff (saying so on stderr) and receives the snapshot
again; see :mod:`clients.terminal`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from clients.terminal import run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m clients", description=__doc__)
    parser.add_argument("url", help="server, e.g. http://127.0.0.1:8000")
    parser.add_argument("token", help="the agent's token")
    parser.add_argument("--grab", action="store_true", help="claim every offer")
    args = parser.parse_args()
    try:
        sys.exit(asyncio.run(run(args.url, args.token, grab=args.grab)))
    except KeyboardInterrupt:
        pass
