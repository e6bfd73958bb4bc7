"""The one module that speaks AMQP (aio-pika).

One durable topic exchange; a durable queue per consumer; persistent messages; publisher
confirms; prefetch; a dead-letter exchange and queue; bounded retries. A delivery is
acknowledged only after its handler returned (its result stored) and the messages it
returned were published and confirmed.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from shared.contracts import REGISTRY, Message
from shared.errors import PermanentError

log = logging.getLogger(__name__)

Handler = Callable[[Message], Awaitable[Sequence[Message] | None]]
RawHandler = Callable[[AbstractIncomingMessage], Awaitable[None]]

RETRIES_HEADER = "x-cpcs-retries"
ORIGINAL_KEY_HEADER = "x-cpcs-routing-key"
REASON_HEADER = "x-cpcs-reason"
QUEUE_HEADER = "x-cpcs-queue"


def decode(routing_key: str, body: bytes) -> Message:
    """Validate a body against the contract of its routing key (PermanentError if it does not fit)."""
    model = REGISTRY.get(routing_key)
    if model is None:
        raise PermanentError(f"no contract for routing key {routing_key!r}")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise PermanentError(f"message does not match {routing_key}: {exc.errors()[0]['msg']} "
                             f"at {'.'.join(map(str, exc.errors()[0]['loc']))}") from exc


class Broker:
    """Publisher and consumer on one connection; built once by a service's composition root."""

    def __init__(self, url: str, exchange: str, *, prefetch: int = 8, max_retries: int = 3,
                 retry_delay_s: float = 0.5):
        self.url, self.exchange_name = url, exchange
        self.prefetch, self.max_retries, self.retry_delay_s = prefetch, max_retries, retry_delay_s
        self.dead_letter_queue = f"{exchange}.dead-letter"
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None

    @classmethod
    def from_settings(cls, settings) -> Broker:
        """The broker a service's settings describe (``shared.settings.Settings``)."""
        return cls(settings.amqp_url.get_secret_value(), settings.exchange, prefetch=settings.prefetch,
                   max_retries=settings.max_retries, retry_delay_s=settings.retry_delay_s)

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.url)
        self._channel = await self._connection.channel(publisher_confirms=True)
        await self._channel.set_qos(prefetch_count=self.prefetch)
        self._exchange = await self._channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        self._dlx = await self._channel.declare_exchange(
            f"{self.exchange_name}.dlx", aio_pika.ExchangeType.FANOUT, durable=True)
        dlq = await self._channel.declare_queue(self.dead_letter_queue, durable=True)
        await dlq.bind(self._dlx)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def publish(self, message: Message, *, correlation_id: str | None = None) -> None:
        await self.publish_bytes(message.routing_key, message.model_dump_json().encode(),
                                 correlation_id=correlation_id, content_type="application/json")

    async def publish_bytes(self, routing_key: str, body: bytes, *, headers: dict | None = None,
                            correlation_id: str | None = None, reply_to: str | None = None,
                            content_type: str = "application/octet-stream") -> None:
        await self._exchange.publish(
            aio_pika.Message(body, headers=headers or {}, correlation_id=correlation_id,
                             reply_to=reply_to, content_type=content_type,
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=routing_key)

    async def reply(self, reply_to: str, body: bytes, *, correlation_id: str | None) -> None:
        """Send an answer straight to a caller's queue (the default exchange routes by queue name)."""
        await self._channel.default_exchange.publish(
            aio_pika.Message(body, correlation_id=correlation_id, content_type="application/json"),
            routing_key=reply_to)

    async def subscribe(self, queue: str | None, routes: dict[str, Handler]) -> str:
        """Consume contract messages; each handler's returned messages are published before the ack.

        ``queue=None`` declares an exclusive, server-named queue (one per process, e.g. for replies).
        """
        async def on_delivery(delivery: AbstractIncomingMessage) -> None:
            key = _routing_key(delivery)
            message = decode(key, delivery.body)
            for outgoing in await routes[key](message) or ():
                await self.publish(outgoing, correlation_id=getattr(outgoing, "correlation_id", None))

        return await self.subscribe_raw(queue, list(routes), on_delivery)

    async def subscribe_raw(self, queue: str | None, routing_keys: list[str], handler: RawHandler) -> str:
        if queue is None:
            declared = await self._channel.declare_queue(exclusive=True, auto_delete=True)
        else:
            declared = await self._channel.declare_queue(
                queue, durable=True, arguments={"x-dead-letter-exchange": f"{self.exchange_name}.dlx"})
        for key in routing_keys:
            await declared.bind(self._exchange, routing_key=key)
        async def on_message(delivery: AbstractIncomingMessage) -> None:
            await self._process(declared.name, delivery, handler)

        await declared.consume(on_message)
        return declared.name

    async def _process(self, queue: str, delivery: AbstractIncomingMessage, handler: RawHandler) -> None:
        try:
            await handler(delivery)
        except PermanentError as exc:
            log.warning("dead-lettering a message from %s: %s", queue, exc)
            await self._dead_letter(queue, delivery, str(exc))
            return
        except asyncio.CancelledError:  # shutting down: the broker redelivers what was not acknowledged
            with contextlib.suppress(Exception):
                await delivery.nack(requeue=True)
            raise
        except Exception as exc:  # transient or a bug: bounded retries, then dead-letter
            await self._retry(queue, delivery, exc)
            return
        await delivery.ack()

    async def _retry(self, queue: str, delivery: AbstractIncomingMessage, exc: Exception) -> None:
        retries = int((delivery.headers or {}).get(RETRIES_HEADER, 0))
        reason = f"{type(exc).__name__}: {exc}"
        if retries >= self.max_retries:
            log.error("giving up on a message from %s after %d retries: %s", queue, retries, reason)
            await self._dead_letter(queue, delivery, f"failed after {retries} retries: {reason}")
            return
        log.warning("retrying a message from %s (%d/%d): %s", queue, retries + 1, self.max_retries, reason)
        await asyncio.sleep(self.retry_delay_s * 2**retries)
        headers = {**(delivery.headers or {}), RETRIES_HEADER: retries + 1,
                   ORIGINAL_KEY_HEADER: _routing_key(delivery)}
        await self._channel.default_exchange.publish(_copy(delivery, headers), routing_key=queue)
        await delivery.ack()

    async def _dead_letter(self, queue: str, delivery: AbstractIncomingMessage, reason: str) -> None:
        headers = {**(delivery.headers or {}), REASON_HEADER: reason[:2000], QUEUE_HEADER: queue,
                   ORIGINAL_KEY_HEADER: _routing_key(delivery)}
        await self._dlx.publish(_copy(delivery, headers), routing_key=_routing_key(delivery))
        await delivery.ack()


def _routing_key(delivery: AbstractIncomingMessage) -> str:
    return str((delivery.headers or {}).get(ORIGINAL_KEY_HEADER) or delivery.routing_key)


def _copy(delivery: AbstractIncomingMessage, headers: dict) -> aio_pika.Message:
    return aio_pika.Message(delivery.body, headers=headers, correlation_id=delivery.correlation_id,
                            reply_to=delivery.reply_to, content_type=delivery.content_type,
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT)


async def wait_for_consumers(url: str, queues: list[str], *, timeout_s: float = 60) -> None:
    """Wait until every named queue exists and has a consumer (a service is ready for its messages)."""
    connection = await aio_pika.connect_robust(url)
    try:
        async with asyncio.timeout(timeout_s):
            for name in queues:
                # the consumers are other processes' and the broker announces none: it is asked again
                while not await _has_consumer(connection, name):  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
    finally:
        await connection.close()


async def _has_consumer(connection, name: str) -> bool:
    channel = await connection.channel()
    try:
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result.consumer_count > 0
    except aio_pika.exceptions.ChannelClosed:
        return False
    finally:
        if not channel.is_closed:
            await channel.close()
