"""Writes to Redis stay bounded by ``socket_timeout`` with the lighter bound of
:func:`dispatcher.board.connect.bounded_writes` (a timer, not a task per command)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dispatcher.board.connect import bounded_writes, run_script


async def test_a_write_to_a_peer_that_stops_reading_times_out_and_drops_the_connection() -> None:
    """A peer that stops reading after the handshake (a Redis stuck, a network that swallows):
    the write blocks once the socket buffers are full, and fails after socket_timeout as
    redis-py's own does, with its TimeoutError and the connection closed; the bound is back
    for the next command."""
    accepted: list[asyncio.StreamWriter] = []

    async def answer_hello_then_stop_reading(
        r: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        accepted.append(w)
        await r.readuntil(b"HELLO\r\n$1\r\n3\r\n")  # redis-py's handshake
        w.write(b"+OK\r\n")

    server = await asyncio.start_server(answer_hello_then_stop_reading, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        kind: Any = bounded_writes(aioredis.Connection)  # (its __init__ is Connection's)
        conn = kind(host="127.0.0.1", port=port, socket_timeout=0.3, driver_info=None)
        await conn.connect()
        started = time.monotonic()
        with pytest.raises(RedisTimeoutError):
            await conn.send_packed_command([b"x" * (64 * 1024 * 1024)], check_health=False)
        assert 0.25 < time.monotonic() - started < 5
        assert not conn.is_connected
        assert conn.socket_timeout == 0.3
    finally:
        for w in accepted:
            w.close()
        server.close()
        await server.wait_closed()


def test_every_connection_kind_keeps_its_own_class_under_the_bound() -> None:
    for kind in (aioredis.Connection, SSLConnection, UnixDomainSocketConnection):
        made = bounded_writes(kind)
        assert issubclass(made, kind)
        assert made.__mro__[2] is kind  # the bound, then the kind itself
        assert bounded_writes(made) is made and bounded_writes(kind) is made


async def test_a_script_whose_reply_never_comes_times_out_after_the_retries() -> None:
    """A Redis that takes the command and never answers (a blackholed network after the
    write): the call fails with redis-py's TimeoutError after socket_timeout for each of its
    tries (the connection's retry), never hangs, and every try used a fresh connection."""
    connections: list[asyncio.StreamWriter] = []

    async def answer_hello_then_stay_silent(
        r: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        connections.append(w)
        await r.readuntil(b"HELLO\r\n$1\r\n3\r\n")
        w.write(b"+OK\r\n")
        while await r.read(65536):  # takes every command, answers none
            pass

    server = await asyncio.start_server(answer_hello_then_stay_silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = aioredis.BlockingConnectionPool(
        host="127.0.0.1",
        port=port,
        socket_timeout=0.2,
        driver_info=None,
        retry=Retry(NoBackoff(), 2),
        retry_on_error=[RedisConnectionError],
    )
    client = aioredis.Redis.from_pool(pool)
    script = client.register_script("return 1")
    try:
        started = time.monotonic()
        with pytest.raises(RedisTimeoutError):
            await run_script(client, script, [], [])
        assert 0.55 < time.monotonic() - started < 5  # three tries of 0.2 s
        assert len(connections) == 3
    finally:
        await client.aclose()
        for w in connections:
            w.close()
        server.close()
        await server.wait_closed()
