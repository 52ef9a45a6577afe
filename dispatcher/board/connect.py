"""Redis clients from ``REDIS_URL``: one server (``redis://``) or a Redis Cluster
(``redis+cluster://host:port[,host:port...]``, :class:`redis.asyncio.cluster.RedisCluster`).

On a cluster every script runs unchanged: one order's keys share the hash tag ``{o:<id>}``
and one agent's ``{a:<id>}``, so each script touches one slot; the global keys (schedules,
lock, watermark, holders) are used by plain commands only.  Fan-out uses plain pub/sub, which
a cluster broadcasts to every node (the redis-server shipped here is 6.2: sharded pub/sub,
Redis 7's SPUBLISH, is not used).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from dispatcher.exceptions import ConfigError

SCHEME = "redis+cluster"

Client = aioredis.Redis | RedisCluster
"""A command client: one server or a cluster."""


def is_cluster(url: str) -> bool:
    return url.startswith(SCHEME + "://")


def cluster_nodes(url: str) -> list[ClusterNode]:
    """The start-up nodes of a ``redis+cluster://h:p[,h:p...]`` URL."""
    netloc = urlsplit(url).netloc.rpartition("@")[2]
    nodes: list[ClusterNode] = []
    for part in netloc.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"REDIS_URL: {part!r} is not host:port")
        nodes.append(ClusterNode(host.strip("[]"), int(port)))
    if not nodes:
        raise ConfigError("REDIS_URL: redis+cluster:// needs at least one host:port")
    return nodes


def cluster_client(url: str, **options: Any) -> RedisCluster:
    """A cluster client for a ``redis+cluster://`` URL (user and password from the URL)."""
    parts = urlsplit(url)
    return RedisCluster(
        startup_nodes=cluster_nodes(url),
        username=parts.username or None,
        password=parts.password or None,
        **options,
    )
