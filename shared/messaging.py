"""The one module that speaks AMQP (aio-pika).

One durable topic exchange; a durable queue per consumer; persistent messages; publisher
confirms; prefetch; a dead-letter exchange and a bounded dead-letter queue (``dead_letter_max`` messages,
the oldest dropped first); retries: an outage of the database or the broker (``shared.errors.is_infrastructure``)
is retried with exponential backoff (capped at ``retry_max_delay_s``) for as long as it lasts, never
dead-lettered; any other error is retried ``max_retries`` times, then dead-lettered with its reason. A delivery is
acknowledged only after its handler returned (its result stored) and the messages it
returned were published and confirmed.

Each delivery is handled with its correlation id in ``shared.observability.CORRELATION_ID`` (so every
log line of the work carries it), timed into the stage-latency histogram and counted by outcome.
``close()`` drains first: the consumers are cancelled, the deliveries in hand are finished and
acknowledged (up to ``drain_timeout_s``), then the connection closes (a SIGTERM loses no work).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from shared import observability as obs
from shared.contracts import REGISTRY, Message
from shared.errors import NotYet, PermanentError, backoff_delay_s, is_infrastructure

log = logging.getLogger(__name__)

Handler = Callable[[Message], Awaitable[Sequence[Message] | None]]
#: What a raw handler is given: one delivery from a queue, to read, acknowledge or reject.
Delivery = AbstractIncomingMessage
RawHandler = Callable[[Delivery], Awaitable[None]]

RETRIES_HEADER = "x-cpcs-retries"
FIRST_TRY_HEADER = "x-cpcs-first-try-at"  # unix ms of the first failed try of a message (NotYet)
OUTAGE_RETRIES_HEADER = "x-cpcs-outage-retries"  # retries for an outage: they count for the backoff only
DEAD_LETTERED_AT_HEADER = "x-cpcs-dead-lettered-at"  # unix ms
#: When the dead-letter queue holds this share of its bound, each dead letter logs a warning.
DEAD_LETTER_NEAR_FULL = 0.9
ORIGINAL_KEY_HEADER = "x-cpcs-routing-key"
REASON_HEADER = "x-cpcs-reason"
QUEUE_HEADER = "x-cpcs-queue"


def broker_outage_types() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(the broker's exceptions that mean it is away, their subclasses that are not outages)."""
    import aiormq.exceptions as amqp

    outages = (amqp.AMQPConnectionError, amqp.ConnectionClosed, amqp.ChannelInvalidStateError,
               amqp.ChannelClosed)
    # a channel closed by the broker for a reason of ours (a missing exchange, a queue declared with other
    # arguments, a refused permission) does not heal by waiting
    not_outages = (amqp.ChannelNotFoundEntity, amqp.ChannelPreconditionFailed, amqp.ChannelAccessRefused,
                   amqp.ChannelLockedResource, amqp.AuthenticationError)
    return outages, not_outages


def unix_ms_header(unix_s: float) -> int:
    """A time for a header, in whole unix milliseconds: AMQP tables carry a Python float as a 32-bit float,
    which rounds today's unix seconds to 128 s steps; an integer is sent whole."""
    return int(round(unix_s * 1000))


def unix_s_of_header(value: object) -> float | None:
    """The unix seconds of a time header: milliseconds (``unix_ms_header``) or, from an older sender,
    seconds; None when absent or not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return value / 1000 if value > 1e11 else float(value)  # 1e11 s is in the year 5138; 1e11 ms in 1973


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
                 retry_delay_s: float = 0.5, service: str | None = None, drain_timeout_s: float = 30.0,
                 queue_type: str = "classic", retry_max_delay_s: float = 30.0, dead_letter_max: int = 10000):
        self.url, self.exchange_name = url, exchange
        self.prefetch, self.max_retries, self.retry_delay_s = prefetch, max_retries, retry_delay_s
        self.dead_letter_queue = f"{exchange}.dead-letter"
        self.service = service or obs.service_name()
        self.drain_timeout_s = drain_timeout_s
        self.queue_type = queue_type  # "quorum": the durable queues are replicated quorum queues
        self.retry_max_delay_s = retry_max_delay_s
        self.dead_letter_max = dead_letter_max  # 0: unbounded (a queue declared before the bound existed)
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._consumers: list[tuple[aio_pika.abc.AbstractQueue, str]] = []
        self._in_hand: set[asyncio.Task] = set()
        self.queues: list[str] = []  # the durable queues this broker consumes from (readiness)
        self._up, self._down = asyncio.Event(), asyncio.Event()

    @classmethod
    def from_settings(cls, settings) -> Broker:
        """The broker a service's settings describe (``shared.settings.Settings``); the service's name (for
        metrics) is its settings model's (``CalibrationSettings`` -> ``calibration``)."""
        name = type(settings).__name__.removesuffix("Settings").lower() or None
        return cls(settings.amqp_url.get_secret_value(), settings.exchange, prefetch=settings.prefetch,
                   max_retries=settings.max_retries, retry_delay_s=settings.retry_delay_s, service=name,
                   queue_type=getattr(settings, "queue_type", "classic"),
                   retry_max_delay_s=getattr(settings, "retry_max_delay_s", 30.0),
                   dead_letter_max=getattr(settings, "dead_letter_max", 10000))

    @property
    def connected(self) -> bool:
        """Whether the connection to the broker is up now (a robust connection reconnects by itself)."""
        connection = self._connection
        return connection is not None and not connection.is_closed and not self._channel.is_closed

    async def consumers_attached(self) -> dict[str, int]:
        """Consumers of each of this broker's durable queues, as the broker counts them."""
        return {name: (await self.queue_state(name))[1] for name in self.queues}

    async def queue_state(self, name: str) -> tuple[int, int]:
        """(messages waiting, consumers) of a queue, asked of the broker on a channel of its own."""
        channel = await self._connection.channel()
        try:
            result = (await channel.declare_queue(name, passive=True)).declaration_result
            return result.message_count, result.consumer_count
        finally:
            if not channel.is_closed:
                await channel.close()

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.url)
        self._channel = await self._connection.channel(publisher_confirms=True)
        await self._channel.set_qos(prefetch_count=self.prefetch)
        self._exchange = await self._channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        self._dlx = await self._channel.declare_exchange(
            f"{self.exchange_name}.dlx", aio_pika.ExchangeType.FANOUT, durable=True)
        dlq = await self._channel.declare_queue(self.dead_letter_queue, durable=True,
                                                arguments=dead_letter_arguments(self.dead_letter_max, self._kind()))
        await dlq.bind(self._dlx)
        self._connection.close_callbacks.add(self._on_lost)
        self._connection.reconnect_callbacks.add(self._on_back)
        self._up.set()

    def _on_lost(self, *_args) -> None:
        self._up.clear()
        self._down.set()

    def _on_back(self, *_args) -> None:
        self._down.clear()
        self._up.set()

    async def wait_disconnected(self, timeout_s: float) -> None:
        """Until the connection to the broker is lost (``TimeoutError`` after ``timeout_s``)."""
        await asyncio.wait_for(self._down.wait(), timeout_s)

    async def wait_reconnected(self, timeout_s: float) -> None:
        """Until the connection is up again with its channels, queues and consumers restored."""
        await asyncio.wait_for(self._up.wait(), timeout_s)

    def _kind(self) -> dict:
        """The queue-type argument of the durable queues (none for classic queues, as before)."""
        return {"x-queue-type": "quorum"} if self.queue_type == "quorum" else {}

    async def drain(self) -> None:
        """Stop taking deliveries and finish (and acknowledge) those in hand, for ``drain_timeout_s`` at most;
        what is still unfinished then is left unacknowledged, and the broker redelivers it."""
        for queue, tag in self._consumers:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        self._consumers.clear()
        if self._in_hand:
            log.info("finishing %d message(s) in hand before stopping", len(self._in_hand))
            await asyncio.wait(set(self._in_hand), timeout=self.drain_timeout_s)

    async def close(self) -> None:
        if self._connection is not None:
            await self.drain()
            await self._connection.close()
            self._connection = None

    async def publish(self, message: Message, *, correlation_id: str | None = None) -> None:
        """Publish a message, persistent unless it is a dry run's (a dry run keeps nothing, in the broker
        neither: a broker restart loses it and the waiting upload is answered 202, "send it again";
        a persistent message costs the broker's disk write before its confirmation, about 1.4 ms for a
        500 kB catalogue carried inline)."""
        await self.publish_bytes(message.routing_key, message.model_dump_json().encode(),
                                 correlation_id=correlation_id, content_type="application/json",
                                 persistent=not getattr(message, "dry_run", False))
        self._observe_outcome(message)

    def _observe_outcome(self, message: Message) -> None:
        """Count (and log) an observation's outcome when this service publishes it."""
        if message.routing_key == "observation.calibrated.v1":
            obs.OUTCOMES.labels(self.service, "calibrated", "calibration", "").inc()
        elif message.routing_key == "observation.failed.v1":
            reason, stage = str(getattr(message, "reason", "")), str(getattr(message, "stage", ""))
            obs.OUTCOMES.labels(self.service, "failed", stage, obs.reason_kind(reason)).inc()
            log.warning("observation %s failed at %s: %s", getattr(message, "observation_id", "?"), stage, reason)

    async def publish_bytes(self, routing_key: str, body: bytes, *, headers: dict | None = None,
                            correlation_id: str | None = None, reply_to: str | None = None,
                            content_type: str = "application/octet-stream", persistent: bool = True) -> None:
        await self._exchange.publish(
            aio_pika.Message(body, headers=headers or {}, correlation_id=correlation_id,
                             reply_to=reply_to, content_type=content_type,
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT if persistent
                             else aio_pika.DeliveryMode.NOT_PERSISTENT),
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

    async def unbind(self, queue: str, routing_keys: list[str]) -> None:
        """Remove a durable queue's bindings an earlier version made (the queue keeps them across restarts);
        a binding that does not exist is no error."""
        declared = await self._channel.get_queue(queue, ensure=True)
        for key in routing_keys:
            await declared.unbind(self._exchange, routing_key=key)

    async def subscribe_raw(self, queue: str | None, routing_keys: list[str], handler: RawHandler) -> str:
        if queue is None:
            declared = await self._channel.declare_queue(exclusive=True, auto_delete=True)
        else:
            declared = await self._channel.declare_queue(
                queue, durable=True, arguments={"x-dead-letter-exchange": f"{self.exchange_name}.dlx", **self._kind()})
        for key in routing_keys:
            await declared.bind(self._exchange, routing_key=key)
        async def on_message(delivery: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._in_hand.add(task)
            try:
                await self._process(declared.name, delivery, handler)
            finally:
                if task is not None:
                    self._in_hand.discard(task)

        tag = await declared.consume(on_message)
        self._consumers.append((declared, tag))
        if queue is not None:
            self.queues.append(declared.name)
        return declared.name

    async def _process(self, queue: str, delivery: AbstractIncomingMessage, handler: RawHandler) -> None:
        key = _routing_key(delivery)
        obs.CORRELATION_ID.set(delivery.correlation_id or "-")
        start = asyncio.get_running_loop().time()
        try:
            await obs.timed(self.service, key, lambda: handler(delivery))
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
        obs.MESSAGES.labels(self.service, key, "ack").inc()
        if not queue.startswith("amq."):  # not the per-process reply queues: they would double every line
            log.info("handled %s in %.0f ms", key, 1000 * (asyncio.get_running_loop().time() - start))

    async def _retry(self, queue: str, delivery: AbstractIncomingMessage, exc: Exception) -> None:
        if is_infrastructure(exc):
            await self._retry_outage(queue, delivery, exc)
            return
        if isinstance(exc, NotYet):
            first = unix_s_of_header((delivery.headers or {}).get(FIRST_TRY_HEADER)) or time.time()
            waited_s = time.time() - first
            if waited_s < exc.patience_s:
                # never wait past the patience: the last try comes when it ends, not a long backoff later
                await self._retry_outage(queue, delivery, exc, extra={FIRST_TRY_HEADER: unix_ms_header(first)},
                                         max_delay_s=max(0.05, exc.patience_s - waited_s))
                return
            await self._dead_letter(queue, delivery, f"still not possible after {waited_s:.0f} s: {exc}")
            return
        retries = int((delivery.headers or {}).get(RETRIES_HEADER, 0))
        reason = f"{type(exc).__name__}: {exc}"
        if retries >= self.max_retries:
            log.error("giving up on a message from %s after %d retries: %s", queue, retries, reason)
            await self._dead_letter(queue, delivery, f"failed after {retries} retries: {reason}")
            return
        log.warning("retrying a message from %s (%d/%d): %s", queue, retries + 1, self.max_retries, reason)
        obs.MESSAGES.labels(self.service, _routing_key(delivery), "retry").inc()
        await asyncio.sleep(self.retry_delay_s * 2**retries)
        headers = {**(delivery.headers or {}), RETRIES_HEADER: retries + 1,
                   ORIGINAL_KEY_HEADER: _routing_key(delivery)}
        await self._channel.default_exchange.publish(_copy(delivery, headers), routing_key=queue)
        await delivery.ack()

    async def _retry_outage(self, queue: str, delivery: AbstractIncomingMessage, exc: Exception,
                            extra: dict | None = None, max_delay_s: float | None = None) -> None:
        """The database or the broker is away: wait (exponential backoff, capped) and try again, however
        long it takes. If the broker itself is away, the copy cannot be sent nor the delivery acknowledged:
        the broker gives the unacknowledged delivery again once it is back."""
        outages = int((delivery.headers or {}).get(OUTAGE_RETRIES_HEADER, 0))
        delay_s = backoff_delay_s(outages, base_s=self.retry_delay_s, max_s=self.retry_max_delay_s)
        if max_delay_s is not None:
            delay_s = min(delay_s, max_delay_s)
        what = "waiting for what a message needs" if isinstance(exc, NotYet) else "an outage while handling a message"
        log.warning("%s from %s (try %d, again in %.1f s): %s: %s",
                    what, queue, outages + 1, delay_s, type(exc).__name__, exc)
        obs.MESSAGES.labels(self.service, _routing_key(delivery), "retry").inc()
        await asyncio.sleep(delay_s)
        headers = {**(delivery.headers or {}), OUTAGE_RETRIES_HEADER: outages + 1,
                   ORIGINAL_KEY_HEADER: _routing_key(delivery), **(extra or {})}
        try:
            await self._channel.default_exchange.publish(_copy(delivery, headers), routing_key=queue)
            await delivery.ack()
        except Exception as failed:  # the broker is away too: it redelivers what was not acknowledged
            log.warning("could not put a message back on %s (%s); the broker will deliver it again", queue,
                        type(failed).__name__)

    async def _dead_letter(self, queue: str, delivery: AbstractIncomingMessage, reason: str) -> None:
        headers = {**(delivery.headers or {}), REASON_HEADER: reason[:2000], QUEUE_HEADER: queue,
                   ORIGINAL_KEY_HEADER: _routing_key(delivery), DEAD_LETTERED_AT_HEADER: unix_ms_header(time.time())}
        await self._dlx.publish(_copy(delivery, headers), routing_key=_routing_key(delivery))
        await delivery.ack()
        obs.MESSAGES.labels(self.service, _routing_key(delivery), "dead_letter").inc()
        obs.DEAD_LETTERS.labels(self.service, queue).inc()
        await self.watch_dead_letters()

    async def watch_dead_letters(self) -> tuple[int, int]:
        """(messages in the dead-letter queue, its bound); sets ``cpcs_dead_letter_fill`` (the share of the
        bound in use) and logs a warning when the queue is near full (then the oldest are being dropped)."""
        try:
            count, _ = await self.queue_state(self.dead_letter_queue)
        except Exception as exc:  # the broker is away: nothing to tell now
            log.debug("the dead-letter queue cannot be asked: %s", exc)
            return -1, self.dead_letter_max
        if self.dead_letter_max > 0:
            fill = count / self.dead_letter_max
            obs.DEAD_LETTER_FILL.labels(self.dead_letter_queue).set(fill)
            if fill >= DEAD_LETTER_NEAR_FULL:
                log.warning("the dead-letter queue %s is near full: %d of %d messages (the oldest are dropped "
                            "beyond that); see `cpcs dead-letters list`", self.dead_letter_queue, count,
                            self.dead_letter_max)
        return count, self.dead_letter_max


REPLAYS_HEADER = "x-cpcs-replays"
_DEAD_LETTER_HEADERS = (RETRIES_HEADER, OUTAGE_RETRIES_HEADER, REASON_HEADER, QUEUE_HEADER, ORIGINAL_KEY_HEADER,
                        DEAD_LETTERED_AT_HEADER)


@dataclass(frozen=True)
class DeadLetter:
    """What the dead-letter queue says of one message: where it came from, why, when."""

    routing_key: str
    reason: str
    queue: str
    dead_lettered_at: datetime | None
    correlation_id: str | None


def dead_letter_of(delivery: AbstractIncomingMessage) -> DeadLetter:
    headers = delivery.headers or {}
    at = unix_s_of_header(headers.get(DEAD_LETTERED_AT_HEADER))
    when = datetime.fromtimestamp(at, UTC) if at is not None else None
    return DeadLetter(_routing_key(delivery), str(headers.get(REASON_HEADER) or "?"),
                      str(headers.get(QUEUE_HEADER) or "?"), when, delivery.correlation_id)


async def list_dead_letters(broker: Broker, limit: int = 100) -> list[DeadLetter]:
    """The oldest ``limit`` dead letters, left where they are (taken unacknowledged, then given back in order
    when the channel closes)."""
    channel = await broker._connection.channel()
    try:
        queue = await channel.get_queue(broker.dead_letter_queue)
        found = []
        for _ in range(limit):
            delivery = await queue.get(no_ack=False, fail=False)
            if delivery is None:
                break
            found.append(dead_letter_of(delivery))
        return found
    finally:
        await channel.close()


async def replay_dead_letters(broker: Broker, count: int | None = None) -> list[DeadLetter]:
    """Publish the oldest ``count`` dead letters (None: all there are now) again to their original routing key,
    without the retry and dead-letter headers; each leaves the queue once the broker confirmed its copy."""
    queue = await broker._channel.get_queue(broker.dead_letter_queue)
    total = (await broker.queue_state(broker.dead_letter_queue))[0] if count is None else count
    replayed = []
    for _ in range(total):
        delivery = await queue.get(no_ack=False, fail=False)
        if delivery is None:
            break
        letter = dead_letter_of(delivery)
        headers = {k: v for k, v in (delivery.headers or {}).items() if k not in _DEAD_LETTER_HEADERS}
        headers[REPLAYS_HEADER] = int((delivery.headers or {}).get(REPLAYS_HEADER, 0) or 0) + 1  # type: ignore[arg-type]
        await broker._exchange.publish(_copy(delivery, headers), routing_key=letter.routing_key)
        await delivery.ack()
        replayed.append(letter)
    return replayed


def dead_letter_arguments(bound: int, kind: dict | None = None) -> dict:
    """The arguments of the dead-letter queue: at most ``bound`` messages, the oldest dropped first
    (``bound`` 0: unbounded, the arguments of a queue declared before the bound existed)."""
    bounded = {"x-max-length": int(bound), "x-overflow": "drop-head"} if bound > 0 else {}
    return {**(kind or {}), **bounded}


def service_queues(exchange: str) -> list[str]:
    """The durable queue of every service consumer on ``exchange``."""
    return [f"{exchange}.ingest", f"{exchange}.calibration", f"{exchange}.calibration.plots",
            f"{exchange}.lightcurve", f"{exchange}.lightcurve.observations", f"{exchange}.astrometry",
            f"{exchange}.photometry"]


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
