"""Wait for a message on a queue, under a timeout (no polling sleeps)."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable


async def next_message(broker, queue_name: str, timeout_s: float = 10.0):
    """The next message on an existing queue, acknowledged; TimeoutError if none arrives in time."""
    queue = await broker._channel.get_queue(queue_name)
    arrived: asyncio.Future = asyncio.get_running_loop().create_future()

    async def on_message(message):
        if not arrived.done():
            await message.ack()
            arrived.set_result(message)
        else:
            await message.nack(requeue=True)

    tag = await queue.consume(on_message)
    try:
        async with asyncio.timeout(timeout_s):
            return await arrived
    finally:
        await queue.cancel(tag)


@contextlib.asynccontextmanager
async def dead_letters_tapped(broker) -> AsyncIterator[Callable[..., Awaitable[list]]]:
    """A queue of the test's own bound to the broker's dead-letter exchange: it gets a copy of every dead
    letter (the dead-letter queue keeps its own). Yields ``wait(n, timeout_s=20)``, which returns the next
    ``n`` dead letters once they are out (published and confirmed), or raises TimeoutError."""
    queue = await broker._channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(broker._dlx)
    arrived: asyncio.Queue = asyncio.Queue()

    async def on_message(message):
        await message.ack()
        arrived.put_nowait(message)

    tag = await queue.consume(on_message)

    async def wait(n: int, timeout_s: float = 20.0) -> list:
        async with asyncio.timeout(timeout_s):
            return [await arrived.get() for _ in range(n)]

    try:
        yield wait
    finally:
        await queue.cancel(tag)
