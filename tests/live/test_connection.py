"""The websocket protocol uvicorn runs per connection keeps less (dispatcher.live.connection):
its inbox and writable flag behave as the asyncio.Queue and asyncio.Event they replace, and a
connection lets go of its handshake once it is open."""

from __future__ import annotations

import asyncio
import os

import pytest
from websockets.protocol import OPEN, Protocol
from websockets.protocol import Side as WsSide

from clients import AgentClient
from dispatcher.live import wire
from dispatcher.live.connection import Flag, Inbox, LeanWebSocketProtocol, frame_bytes
from tests.steps import CrewFactory


async def test_the_inbox_is_a_fifo_whose_get_waits() -> None:
    inbox = Inbox()
    assert inbox.empty()
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert inbox.qsize() == 2 and not inbox.empty()
    assert [await inbox.get(), await inbox.get()] == [1, 2]
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    assert not reader.done()
    inbox.put_nowait("later")
    assert await asyncio.wait_for(reader, 1) == "later"


async def test_a_cancelled_get_leaves_the_next_item_to_the_next_reader() -> None:
    inbox = Inbox()
    first = asyncio.create_task(inbox.get())
    second = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    inbox.put_nowait("x")
    assert await asyncio.wait_for(second, 1) == "x"
    assert inbox.empty()


async def test_two_readers_each_get_one_item() -> None:
    inbox = Inbox()
    readers = [asyncio.create_task(inbox.get()) for _ in range(2)]
    await asyncio.sleep(0)
    inbox.put_nowait("a")
    inbox.put_nowait("b")
    assert sorted(await asyncio.wait_for(asyncio.gather(*readers), 1)) == ["a", "b"]


async def test_the_flag_holds_waiters_until_set() -> None:
    flag = Flag()
    assert not flag.is_set()
    waiter = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    flag.set()
    assert await asyncio.wait_for(waiter, 1) is True
    assert flag.is_set() and await flag.wait()
    flag.clear()
    cancelled = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    flag.set()  # no waiter left: nothing to wake, nothing raised
    assert flag.is_set()


async def test_an_open_connection_keeps_no_handshake_and_no_asyncio_queue(
    crew: CrewFactory,
) -> None:
    async with crew({"g1": 1}) as c:
        async with AgentClient.connect(c.url, c.agent()["token"]):
            (protocol,) = c.server.server.server_state.connections
            assert isinstance(protocol, LeanWebSocketProtocol)
            assert isinstance(protocol.queue, Inbox) and isinstance(protocol.writable, Flag)
            assert not hasattr(protocol, "request") and not hasattr(protocol, "response")


def server_tasks() -> int:
    """Tasks of the server in this loop (uvicorn's and ours; not the test's clients')."""
    names = (f"{os.sep}uvicorn{os.sep}", f"{os.sep}dispatcher{os.sep}")
    codes = (getattr(t.get_coro(), "cr_code", None) for t in asyncio.all_tasks())
    return sum(
        1 for code in codes if code is not None and any(n in code.co_filename for n in names)
    )


async def test_an_idle_agent_connection_holds_one_task_uvicorns(crew: CrewFactory) -> None:
    """No task per connection waits for a drain (or for frames to write): the drain calls
    each connection back instead (tests/live/test_drain.py has the drain itself)."""
    async with crew({"g1": 1}) as c:
        token = c.agent()["token"]
        async with AgentClient.connect(c.url, token):
            await asyncio.sleep(0.2)  # the writer of welcome and snapshot has finished
            before = server_tasks()
            async with AgentClient.connect(c.url, token), AgentClient.connect(c.url, token):
                await asyncio.sleep(0.2)
                assert server_tasks() - before == 2  # uvicorn's run_asgi, one each
                assert len(c.server.ctx.on_drain) == 3


async def test_frames_to_a_reading_agent_are_written_without_a_writer_task(
    crew: CrewFactory,
) -> None:
    """A frame pushed to an agent whose socket takes it at once is written in the push, not
    by a writer task woken for it (a fan-out to 1,000 agents wakes no task at all)."""
    async with crew({"g1": 1}) as c:
        async with AgentClient.connect(c.url, c.agent()["token"]) as agent:
            (link,) = c.server.ctx.hub.agents
            await asyncio.sleep(0.2)  # welcome and snapshot written
            before = server_tasks()
            c.server.ctx.hub.set_held(link.agent_id, 3)  # pushes a `held` frame
            assert server_tasks() == before  # no writer task started
            assert link.outbox.drain() == []  # written already, not queued
            frame = await agent.recv(timeout=5)
            while not (isinstance(frame, wire.Held) and frame.held == 3):  # (after welcome's)
                frame = await agent.recv(timeout=5)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
@pytest.mark.parametrize("kind", ["binary", "text"])
def test_a_frame_is_framed_as_websockets_frames_it(size: int, kind: str) -> None:
    """write_now frames a data frame itself (once per fan-out); the bytes are the ones
    websockets' own send_binary/send_text would write on a server connection, at every
    length encoding (7 bit, 16 bit, 64 bit)."""
    conn = Protocol(WsSide.SERVER, state=OPEN)
    data: bytes | str
    if kind == "binary":
        data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
        conn.send_binary(data)
    else:
        data = ("帮" * size)[: size // 3] + "x" * (size - 3 * (size // 3))
        conn.send_text(data.encode())
    assert frame_bytes(data) == b"".join(conn.data_to_send())
