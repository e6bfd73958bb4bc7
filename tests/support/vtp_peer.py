"""A minimal VOEvent broker for tests, speaking the VOEvent Transport Protocol from the IVOA note.

Written from the note, independently of the subscriber under test: 4-byte big-endian length, then
XML; on connection it sends ``authenticate``; it sends packets and ``iamalive`` when told to and
collects what subscribers answer (``ack``/``nak``/``iamalive``/``authenticate``). It can be stopped and
started again on the same port, like a broker restarting. Tests await its answers under a timeout.
"""
from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass

from lxml import etree

TRANSPORT = "http://www.telescope-networks.org/xml/Transport/v1.1"


@dataclass(frozen=True)
class Answer:
    role: str
    origin: str | None
    response: str | None


def transport(role: str, origin: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><trn:Transport xmlns:trn="{TRANSPORT}" version="1.0" '
            f'role="{role}"><Origin>{origin}</Origin><TimeStamp>2026-11-21T00:00:00Z</TimeStamp>'
            f'</trn:Transport>').encode()


class VtpPeer:
    def __init__(self, *, ivorn: str = "ivo://cpcs.test/peer", greet: bool = True):
        self.ivorn, self.greet = ivorn, greet
        self.port = 0
        self.answers: asyncio.Queue[Answer] = asyncio.Queue()
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._changed = asyncio.Condition()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listening socket and every connection, as a broker going down does."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def wait_for_subscribers(self, n: int = 1, *, total: int | None = None, timeout_s: float = 10) -> None:
        """Until ``n`` subscribers are connected (and, if given, ``total`` connections were ever made)."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: len(self._writers) >= n and self.connections >= (total or 0))

    async def send(self, xml: bytes) -> None:
        for writer in list(self._writers):
            writer.write(struct.pack("!I", len(xml)) + xml)
            await writer.drain()

    async def iamalive(self) -> None:
        await self.send(transport("iamalive", self.ivorn))

    async def next_answer(self, *, timeout_s: float = 10) -> Answer:
        async with asyncio.timeout(timeout_s):
            return await self.answers.get()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with self._changed:
            self._writers.add(writer)
            self.connections += 1
            self._changed.notify_all()
        try:
            if self.greet:
                await self.send_to(writer, transport("authenticate", self.ivorn))
            while True:
                (length,) = struct.unpack("!I", await reader.readexactly(4))
                root = etree.fromstring(await reader.readexactly(length))
                await self.answers.put(Answer(role=root.get("role"), origin=root.findtext("Origin"),
                                              response=root.findtext("Response")))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            async with self._changed:
                self._writers.discard(writer)
                self._changed.notify_all()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def send_to(writer: asyncio.StreamWriter, xml: bytes) -> None:
        writer.write(struct.pack("!I", len(xml)) + xml)
        await writer.drain()
