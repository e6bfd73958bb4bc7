"""Wait for a message on a queue, under a timeout (no polling sleeps)."""
from __future__ import annotations

import asyncio


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
