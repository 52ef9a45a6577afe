"""A TCP proxy that a test can cut and restore: a real network fault between server and Postgres
(or Redis: give it a ``redis://`` URL)."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qs, urlsplit, urlunsplit

from dispatcher.embedded import free_port


class Proxy:
    """Forwards 127.0.0.1:<port> to a Postgres URL's server (TCP or unix socket)."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        query = parse_qs(parts.query)
        self.unix: str | None = None
        if "host" in query and query["host"][0].startswith("/"):
            self.unix = f"{query['host'][0]}/.s.PGSQL.{parts.port or 5432}"
        self.target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.port = free_port()
        netloc = f"{parts.username or 'postgres'}@127.0.0.1:{self.port}"
        if parts.password:
            netloc = f"{parts.username}:{parts.password}@127.0.0.1:{self.port}"
        self.url = urlunsplit(("postgresql", netloc, parts.path, "", ""))
        if parts.scheme.startswith("redis"):  # a Redis URL: the same proxy, for Redis
            self.target = (parts.hostname or "127.0.0.1", parts.port or 6379)
            self.url = urlunsplit((parts.scheme, f"127.0.0.1:{self.port}", parts.path, "", ""))
        self.cut_off = False
        self._links: set[asyncio.Task[None]] = set()
        self._subscribers: list[_Link] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def stop(self) -> None:
        await self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def cut(self) -> None:
        """Drop every open connection and refuse new ones until :meth:`restore`."""
        self.cut_off = True
        for task in list(self._links):
            task.cancel()
        for task in list(self._links):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def restore(self) -> None:
        self.cut_off = False

    def blackhole_subscribers(self) -> int:
        """Silently drop everything on the open Redis connections that subscribed (a network
        fault that closes nothing: the subscriber goes deaf without an error).  Connections
        opened later pass.  Returns how many went dark."""
        for link in self._subscribers:
            link.dark = True
        return len(self._subscribers)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        try:
            if self.unix:
                up_r, up_w = await asyncio.open_unix_connection(self.unix)
            else:
                up_r, up_w = await asyncio.open_connection(*self.target)
            link = _Link()
            try:
                await asyncio.gather(
                    self._pipe(reader, up_w, link, self._subscribers),
                    self._pipe(up_r, writer, link, None),
                )
            finally:
                up_w.close()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._links.discard(task)

    @staticmethod
    async def _pipe(
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        link: _Link,
        subscribers: list[_Link] | None,
    ) -> None:
        while data := await src.read(65536):
            if subscribers is not None and not link.subscribed and b"SUBSCRIBE" in data.upper():
                link.subscribed = True
                subscribers.append(link)
            if link.dark:
                continue
            dst.write(data)
            await dst.drain()
        dst.close()


class _Link:
    __slots__ = ("dark", "subscribed")

    def __init__(self) -> None:
        self.dark = False
        self.subscribed = False
