"""Redis clients from ``REDIS_URL``: one server (``redis://``) or a Redis Cluster
(``redis+cluster://host:port[,host:port...]``, :class:`redis.asyncio.cluster.RedisCluster`).

On a cluster every script runs unchanged: one order's keys share the hash tag ``{o:<id>}``
and one agent's ``{a:<id>}``, so each script touches one slot; the global keys (schedules,
lock, watermark, holders) are used by plain commands only.  Fan-out uses plain pub/sub, which
a cluster broadcasts to every node (the redis-server shipped here is 6.2: sharded pub/sub,
Redis 7's SPUBLISH, is not used).

On one server the hot calls (the claim scripts, the rate counter, every pipeline of ours) go
straight onto a pooled connection (:func:`run_script`, :func:`run_pipeline`): redis-py's
connection, pool, parser and retry, without its per-command layers; writes are bounded by a
timer (:func:`bounded_writes`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

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


def healing_options() -> dict[str, Any]:
    """Connection options that make a pool heal after Redis restarts or drops connections.

    A pooled connection opened before a restart fails its next command (the socket is dead):
    that command is retried on a new connection, with a short backoff, up to 3 times.  Only
    connection errors (refused, reset, closed, ``LOADING``) are retried, not timeouts: a
    timeout on a blackholed network would only be repeated.  Every command we send is safe to
    repeat: the scripts are idempotent for a repeat of the same call (SYNC never goes
    backwards, CLAIM and RESERVE recognise their own request, SET_HELD and RELEASE_HOLD set
    what they set), schedules and sets are idempotent, a lock or a compare-and-set repeated
    only finds itself done and gives up, and a repeated PUBLISH is a duplicate frame, which
    the protocol allows.  A connection idle for more than ``HEALTH_CHECK_S`` is pinged (and
    re-opened) before use.  A script Redis forgot (a restart, SCRIPT FLUSH) is loaded again
    on NOSCRIPT: by :func:`run_script` (or redis-py, on a cluster) for a single call, by
    :func:`run_pipeline` for a pipeline.
    """
    return {
        "retry": Retry(ExponentialBackoff(cap=RETRY_CAP_S, base=RETRY_BASE_S), RETRIES),
        "retry_on_error": [RedisConnectionError],
        "health_check_interval": HEALTH_CHECK_S,
    }


RETRIES = 3
RETRY_BASE_S = 0.02
RETRY_CAP_S = 0.25
HEALTH_CHECK_S = 2


def evalsha(pipe: Any, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> None:
    """Queue ``script`` on ``pipe`` by its SHA alone (see :func:`run_pipeline`)."""
    pipe.evalsha(script.sha, len(keys), *keys, *args)


async def run_pipeline(
    client: Any, fill: Callable[[Any], None], scripts: Sequence[AsyncScript]
) -> list[Any]:
    """Run a pipeline (``fill`` queues its commands) whose scripts go by EVALSHA alone.

    redis-py would ask ``SCRIPT EXISTS`` before every pipeline that runs a script: one more
    round trip and command each time, for the rare case that Redis forgot them.  Here Redis
    answers NOSCRIPT in that case; the ``scripts`` are loaded and the whole pipeline runs
    again (every command we pipeline is safe to repeat: :func:`healing_options`).

    On a single server the commands go straight onto a pooled connection (:func:`_raw_batch`);
    on a cluster through redis-py's cluster pipeline."""
    for attempt in range(2):
        try:
            if isinstance(client, aioredis.Redis) and client.connection is None:
                batch = _Batch()
                fill(batch)
                return await _raw_batch(client, batch.commands)
            async with client.pipeline(transaction=False) as pipe:
                fill(pipe)
                return list(await pipe.execute())
        except NoScriptError:
            if attempt:
                raise
        for script in scripts:
            await client.script_load(script.script)
    raise AssertionError("unreachable")


async def run_script(
    client: Client, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]
) -> Any:
    """``script(keys=..., args=...)``, by EVALSHA alone straight onto a pooled connection on a
    single server (:func:`_raw_batch`); loaded again and repeated on NOSCRIPT, as redis-py
    does.  On a cluster, redis-py's own call."""
    if not isinstance(client, aioredis.Redis) or client.connection is not None:
        return await script(keys=keys, args=args)
    command = ("EVALSHA", script.sha, len(keys), *keys, *args)
    try:
        (answer,) = await _raw_batch(client, [command])
    except NoScriptError:
        await client.script_load(script.script)
        (answer,) = await _raw_batch(client, [command])
    return answer


class _Batch:
    """What a pipeline's ``fill`` queues, as raw commands: ``zadd`` with its mapping, and any
    other command by name with its arguments as Redis takes them (``evalsha``, ``publish``,
    ``zrem``, ``sadd``...)."""

    __slots__ = ("commands",)

    def __init__(self) -> None:
        self.commands: list[tuple[Any, ...]] = []

    def zadd(self, name: str, mapping: dict[str, int]) -> None:
        pairs = [part for member, score in mapping.items() for part in (score, member)]
        self.commands.append(("ZADD", name, *pairs))

    def __getattr__(self, command: str) -> Callable[..., None]:
        def queue(*args: Any) -> None:
            self.commands.append((command.upper(), *args))

        return queue


async def _raw_batch(client: aioredis.Redis, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` in one write on one pooled connection and read their raw replies,
    with the connection's own retry (:func:`healing_options`: connection errors, the
    connection reopened, a short backoff).  An error reply is raised once every reply is read
    (the first of them), as a redis-py pipeline raises it; a command's reply is Redis's own
    (no response callback: our callers read scripts' replies and nothing else).

    This is what ``Redis.execute_command`` and ``Pipeline.execute`` do, without the layers
    that cost a quarter of the server's CPU per order in the throughput bench: the
    deprecated-argument and observability wrappers, response parsing by command name, the
    pipeline's reset under a shield.  Cancelled mid-read, redis-py drops the connection (a
    reply may be pending on it), so none goes back to the pool dirty."""
    pool = client.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:

        async def once() -> list[Any]:
            # One timer bounds the whole exchange, not one per write and per reply.
            async with lent_timeout(conn, "waiting for Redis's replies"):
                return await exchange()

        async def exchange() -> list[Any]:
            if len(commands) == 1:
                await conn.send_command(*commands[0])
            else:
                await conn.send_packed_command(conn.pack_commands(commands))
            replies: list[Any] = []
            failed: ResponseError | None = None
            for _ in commands:
                try:
                    replies.append(await conn.read_response())
                except ResponseError as exc:
                    replies.append(exc)
                    failed = failed or exc
            if failed is not None:
                raise failed
            return replies

        async def reopen(_error: Exception) -> None:
            await conn.disconnect()

        retry: Retry = conn.retry
        result: list[Any] = await retry.call_with_retry(once, reopen)
        return result
    finally:
        await pool.release(conn)


@contextlib.asynccontextmanager
async def lent_timeout(conn: AbstractConnection, what: str) -> AsyncIterator[None]:
    """Bound the block by ``conn``'s ``socket_timeout`` with one timer, redis-py's own
    timeouts off meanwhile (one caller at a time holds a pooled connection, so the bound can
    be lent).  On expiry the connection is dropped and redis-py's TimeoutError raised, as
    redis-py does.  Without a socket_timeout, the block runs unbounded, as in redis-py."""
    bound = conn.socket_timeout
    if not bound:
        yield
        return
    conn.socket_timeout = None
    try:
        async with asyncio.timeout(bound):
            yield
    except TimeoutError:
        await conn.disconnect(nowait=True)
        raise RedisTimeoutError(f"Timeout {what} ({bound} s)") from None
    finally:
        conn.socket_timeout = bound


class _BoundedWrites(AbstractConnection):
    """redis-py's connection with each write bounded by ``socket_timeout`` through
    :func:`asyncio.timeout` (a timer) instead of :func:`asyncio.wait_for`, which on Python 3.11
    wraps every command sent in a task of its own: 2 % of the server's CPU in the throughput
    bench.  What the write does, and what a timeout does (the connection is dropped, redis-py's
    TimeoutError raised), is redis-py's; reads keep redis-py's own timeout."""

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        # (A health check's reply, if one is due, is read under the same bound.)
        async with lent_timeout(self, "writing to socket"):
            await super().send_packed_command(command, check_health)


_BOUNDED: dict[str, type[AbstractConnection]] = {}


def bounded_writes(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """``connection_class`` (redis-py's TCP, TLS or Unix socket connection, as its
    ``from_url`` chose it) with :class:`_BoundedWrites`' write (one class made per class)."""
    if issubclass(connection_class, _BoundedWrites):
        return connection_class
    name = "BoundedWrites" + connection_class.__name__
    made = _BOUNDED.get(name)
    if made is None:
        made = _BOUNDED[name] = type(name, (_BoundedWrites, connection_class), {})
    return made
