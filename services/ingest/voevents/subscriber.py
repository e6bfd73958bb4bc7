"""A VOEvent Transport Protocol subscriber: connects to a broker, answers it, forwards its packets.

Each packet the broker sends is published on our exchange as ``voevent.received.v1`` (publisher
confirm) and only then acknowledged to the broker, so the packet is on our durable queue before the
broker is told it arrived. Packets whose role or stream the policy does not take are acknowledged and
dropped here. The connection is made again with exponential backoff (reset once the broker has
spoken) when it fails, when the broker closes it, or when the broker stays silent longer than its
keep-alive period allows.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.ingest.voevents.policy import VoeventPolicy
from services.ingest.voevents.vtp import Incoming, classify, frame, read_frame, transport
from shared.contracts import VoeventFeedChangedV1

log = logging.getLogger(__name__)
Forward = Callable[[bytes], Awaitable[None]]
Notify = Callable[[VoeventFeedChangedV1], Awaitable[None]]


@dataclass
class Backoff:
    initial_s: float = 0.5
    max_s: float = 60.0
    attempt: int = 0

    def next_delay(self) -> float:
        delay = min(self.max_s, self.initial_s * 2 ** min(self.attempt, 30))
        self.attempt += 1
        return delay * random.uniform(0.8, 1.0)  # spread reconnections of many subscribers

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class FeedStatus:
    remote: str
    connected: bool = False
    connections: int = 0
    forwarded: int = 0
    skipped: int = 0
    last_message_at: datetime | None = None
    last_error: str | None = None

    def as_json(self) -> dict:
        return {"remote": self.remote, "connected": self.connected, "connections": self.connections,
                "forwarded": self.forwarded, "skipped": self.skipped, "last_error": self.last_error,
                "last_message_at": self.last_message_at.isoformat() if self.last_message_at else None}


@dataclass
class VtpSubscriber:
    host: str
    port: int
    forward: Forward
    notify: Notify
    policy: VoeventPolicy
    local_ivorn: str = "ivo://cpcs-ng/ingest"
    alive_timeout_s: float = 150.0
    max_bytes: int = 512 * 1024
    backoff: Backoff = field(default_factory=Backoff)
    status: FeedStatus = field(init=False)
    _task: asyncio.Task | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.status = FeedStatus(remote=f"{self.host}:{self.port}")

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"vtp-{self.status.remote}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        while True:
            reason = await self._connect_once()
            self.status.last_error = reason
            delay = self.backoff.next_delay()
            log.info("VOEvent broker %s: %s; connecting again in %.1f s", self.status.remote, reason, delay)
            await asyncio.sleep(delay)

    async def _connect_once(self) -> str:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 10)
        except (OSError, TimeoutError) as exc:
            return f"could not connect: {exc or type(exc).__name__}"
        self.status.connections += 1
        try:
            await self._session(reader, writer)
            reason = "the session ended"
        except asyncio.IncompleteReadError:
            reason = "the broker closed the connection"
        except ConnectionError as exc:
            reason = f"the connection was lost: {exc}"
        except TimeoutError:
            reason = f"the broker said nothing for {self.alive_timeout_s:g} s"
        except Exception as exc:  # the subscriber outlives any failure; it reconnects
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        if self.status.connected:
            self.status.connected = False
            await self._notify("disconnected", reason)
        return reason

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            async with asyncio.timeout(self.alive_timeout_s):
                data = await read_frame(reader, max_bytes=self.max_bytes)
            self.status.last_message_at = datetime.now(UTC)
            incoming = classify(data)
            if not self.status.connected:
                self.status.connected = True
                self.backoff.reset()
                await self._notify("connected", f"the broker {incoming.origin or ''} spoke "
                                                f"({incoming.role or incoming.kind})".replace("  ", " "))
            answer = await self._answer(incoming, data)
            if answer is not None:
                writer.write(frame(answer))
                await writer.drain()

    async def _answer(self, incoming: Incoming, data: bytes) -> bytes | None:
        if incoming.kind == "transport":
            if incoming.role in ("iamalive", "authenticate"):
                return transport(incoming.role, origin=incoming.origin or "", response=self.local_ivorn)
            return None
        ignored = None
        if incoming.kind == "voevent":
            ignored = self.policy.ignores(incoming.role or "", incoming.origin or "")
        if ignored:
            self.status.skipped += 1
            log.debug("VOEvent %s not forwarded: %s", incoming.origin, ignored)
        else:  # unreadable ones too: the intake dead-letters them with the reason, nothing is lost silently
            await self.forward(data)
            self.status.forwarded += 1
        if incoming.kind == "voevent" and incoming.origin:
            return transport("ack", origin=incoming.origin, response=self.local_ivorn)
        return None

    async def _notify(self, state: str, reason: str) -> None:
        try:
            await self.notify(VoeventFeedChangedV1(remote=self.status.remote, state=state, reason=reason))
        except Exception as exc:  # a broker of ours that is down must not stop the feed
            log.warning("could not publish the feed state of %s: %s", self.status.remote, exc)
