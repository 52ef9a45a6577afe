"""The pure rules: orders, the widening ladder, the workflow table, points, catalogue, roster.

Nothing here does I/O or imports asyncio, Redis, asyncpg or Starlette; ``now`` is an argument.
The only files read are by the explicit loaders (``load_catalog``, ``load_calendar``).
"""
