"""The VOEvent Transport Protocol (IVOA note, Transport v1.1): framing and Transport messages.

Every message is a 4-byte big-endian length, then that many bytes of XML. A broker sends VOEvent
packets and Transport messages (``iamalive`` about every minute, ``authenticate`` on connection); a
subscriber answers ``iamalive`` with ``iamalive`` and each packet with ``ack`` (or ``nak``), naming the
packet's IVORN as ``Origin`` and itself as ``Response``.
"""
from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from services.ingest.voevents._xml import PacketError, parse_xml

TRANSPORT_NS = "http://www.telescope-networks.org/xml/Transport/v1.1"
_LENGTH = struct.Struct("!I")


class VtpError(Exception):
    """The peer broke the protocol (a frame too large); the connection is dropped and made again."""


@dataclass(frozen=True)
class Incoming:
    kind: str  # "transport", "voevent" or "unreadable"
    role: str | None
    origin: str | None  # Transport: the sender's IVORN; VOEvent: the packet's IVORN
    reason: str | None = None


def frame(xml: bytes) -> bytes:
    return _LENGTH.pack(len(xml)) + xml


async def read_frame(reader: asyncio.StreamReader, *, max_bytes: int) -> bytes:
    """The next message (IncompleteReadError at the end of the stream)."""
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    if length > max_bytes:
        raise VtpError(f"the peer announced a message of {length} bytes; the limit is {max_bytes}")
    return await reader.readexactly(length)


def classify(data: bytes) -> Incoming:
    try:
        root, _ = parse_xml(data)
    except PacketError as exc:
        return Incoming("unreadable", None, None, str(exc))
    if root.tag == "Transport":
        origin = root.findtext("Origin")
        return Incoming("transport", (root.get("role") or "").strip(), origin.strip() if origin else None)
    if root.tag == "VOEvent":
        return Incoming("voevent", (root.get("role") or "observation").strip().lower(),
                        (root.get("ivorn") or "").strip() or None)
    return Incoming("unreadable", None, None, f"a <{root.tag}> is neither a VOEvent nor a Transport message")


def transport(role: str, *, origin: str, response: str | None = None, result: str | None = None) -> bytes:
    """A Transport message: ``iamalive``, ``ack``, ``nak`` or ``authenticate``."""
    root = etree.Element(f"{{{TRANSPORT_NS}}}Transport", nsmap={"trn": TRANSPORT_NS},
                         attrib={"version": "1.0", "role": role})
    etree.SubElement(root, "Origin").text = origin
    if response:
        etree.SubElement(root, "Response").text = response
    etree.SubElement(root, "TimeStamp").text = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if result:
        meta = etree.SubElement(root, "Meta")
        etree.SubElement(meta, "Result").text = result
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
