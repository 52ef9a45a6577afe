"""Start-up checks of the Redis a deployment runs on.

Redis arbitrates claims and keeps the schedules; Postgres remembers.  A Redis that loses its
data on restart (no AOF, no RDB) or evicts keys under memory pressure (a ``maxmemory-policy``
other than ``noeviction``) does not lose an acknowledged claim (Postgres has it) but forgets
remembered answers and holds, and the reconciler must rebuild it: the server warns at start,
on the first screen of its log, and refuses to start with ``BANGBAN_STRICT=true``.
"""

from __future__ import annotations

from collections.abc import Mapping


def redis_warnings(config: Mapping[str, str] | None) -> list[str]:
    """What is unsafe in a Redis configuration (``CONFIG GET`` of ``appendonly``, ``save``,
    ``maxmemory-policy``); None: CONFIG is not allowed (a managed Redis), which is said too."""
    if config is None:
        return [
            "cannot read the Redis configuration (CONFIG is disabled): make sure it persists"
            " its data (appendonly yes, or save) and uses maxmemory-policy noeviction"
        ]
    out: list[str] = []
    aof = config.get("appendonly", "").lower() == "yes"
    rdb = bool(config.get("save", "").strip())
    if not aof and not rdb:
        out.append(
            "Redis has no persistence (appendonly no, save ''): a restart forgets every hold,"
            " remembered claim answer and schedule until the reconciler rebuilds them from"
            " Postgres; set appendonly yes"
        )
    policy = config.get("maxmemory-policy", "")
    if policy and policy != "noeviction":
        out.append(
            f"Redis maxmemory-policy is {policy}: under memory pressure it evicts order keys"
            " (claims then fall back to Postgres, offers can be missed until the reconciler's"
            " audit); set maxmemory-policy noeviction"
        )
    return out
