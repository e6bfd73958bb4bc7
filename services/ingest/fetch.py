"""Fetching a catalogue an AMQP upload names by ``catalogue_url``, without becoming a way into the network
ingest sits in.

Whoever may publish to the broker could otherwise make ingest ask its own loopback, the private network
or a cloud metadata address, and learn from the answer which ports are open and what they say. So: only
http and https; the host's name is resolved here and every address checked (loopback, private,
link-local, multicast, unspecified and reserved ones are refused unless the operator allows them), and
the connection goes to the checked address, never to a second lookup; redirects are followed by hand,
each target checked the same way, at most ``max_redirects``; the body is read up to the upload limit and
the whole fetch has one deadline. Every failure of the network is the same sentence (``UNREACHABLE``),
whatever the port or the server said; the details go to the log.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from services.ingest.errors import InvalidInput, Refused, TooLarge

log = logging.getLogger(__name__)

UNREACHABLE = ("catalogue_url could not be fetched: give a public http(s) address that answers the catalogue "
               "itself, or put the catalogue's bytes in the message body")
_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 1 << 16

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class FetchPolicy:
    """What ingest may fetch: ``allow_private`` lets every address through (an operator's choice on a
    closed network); ``allow_hosts`` names hosts (or literal addresses) allowed even though they resolve
    to a private or loopback address."""

    max_bytes: int
    timeout_s: float = 30.0
    max_redirects: int = 3
    allow_private: bool = False
    allow_hosts: frozenset[str] = frozenset()


def hosts_list(value: str) -> frozenset[str]:
    """``"a.example, 10.0.0.5"`` as the set of lower-case host names."""
    return frozenset(h.strip().lower().strip("[]") for h in value.split(",") if h.strip())


def forbidden_address(address: IpAddress) -> str | None:
    """What kind of address this is when it is not a public one (None for a public address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind, flag in (("loopback", address.is_loopback), ("link-local", address.is_link_local),
                       ("multicast", address.is_multicast), ("unspecified", address.is_unspecified),
                       ("reserved", address.is_reserved), ("private", address.is_private or not address.is_global)):
        if flag:
            return kind
    return None


class _CheckedAddresses(AbstractResolver):
    """The resolver of one request: the addresses already resolved and checked for its host, nothing else
    (so the name cannot resolve to another address between the check and the connection)."""

    def __init__(self, host: str, infos: list[ResolveResult]):
        self.host, self.infos = host, infos

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        if host != self.host:
            raise OSError(f"{host} was not checked")
        return [{**info, "port": port} for info in self.infos]  # type: ignore[typeddict-item]

    async def close(self) -> None:
        return None


async def _checked(url: URL, policy: FetchPolicy) -> list[ResolveResult]:
    """The addresses ``url`` may be fetched from, or a refusal naming why it may not."""
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidInput("catalogue_url must be an http:// or https:// address")
    host = url.host.lower()
    allowed = policy.allow_private or host in policy.allow_hosts
    try:
        literal: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, url.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            log.info("catalogue_url host %s does not resolve: %s", host, exc)
            raise InvalidInput(UNREACHABLE) from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    results: list[ResolveResult] = []
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        kind = forbidden_address(address)
        if kind and not allowed:
            raise Refused(f"catalogue_url names a {kind} address ({host}); this server fetches only from "
                          "public addresses: put the catalogue's bytes in the message body")
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        results.append({"hostname": host, "host": text, "port": url.port or 0, "family": family,
                        "proto": 0, "flags": socket.AI_NUMERICHOST})
    if not results:
        raise InvalidInput(UNREACHABLE)
    return results


async def fetch(url_text: str, policy: FetchPolicy) -> bytes:
    """The body behind ``url_text`` (an ``IngestError`` with the observer's sentence when refused)."""
    try:
        url = URL(url_text.strip())
    except (ValueError, TypeError):
        raise InvalidInput("catalogue_url must be an http:// or https:// address") from None
    try:
        async with asyncio.timeout(policy.timeout_s):
            for _ in range(policy.max_redirects + 1):
                status, location, body = await _get(url, await _checked(url, policy), policy)
                if status == 200:
                    return body
                if status not in _REDIRECTS or location is None:
                    log.info("catalogue_url %s answered HTTP %s", url, status)
                    raise InvalidInput(UNREACHABLE)
                url = url.join(URL(location))
    except TimeoutError:
        log.info("catalogue_url %s took longer than %s s", url, policy.timeout_s)
        raise InvalidInput(UNREACHABLE) from None
    raise InvalidInput(f"catalogue_url redirects more than {policy.max_redirects} times; give the address of "
                       "the file itself")


async def _get(url: URL, infos: list[ResolveResult], policy: FetchPolicy) -> tuple[int, str | None, bytes]:
    """One GET to the checked addresses: (status, Location, body up to the limit)."""
    connector = aiohttp.TCPConnector(resolver=_CheckedAddresses(url.host or "", infos), use_dns_cache=False,
                                     force_close=True)
    try:
        async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
            async with session.get(url, allow_redirects=False, auto_decompress=False) as response:
                if response.status != 200:
                    return response.status, response.headers.get("Location"), b""
                return 200, None, await _body(response, policy.max_bytes)
    except aiohttp.ClientError as exc:
        log.info("catalogue_url %s could not be fetched: %s", url, exc)
        raise InvalidInput(UNREACHABLE) from None


async def _body(response: Any, limit: int) -> bytes:
    declared = response.content_length
    if declared is not None and declared > limit:
        raise TooLarge(f"the catalogue behind catalogue_url is larger than the limit of {limit / 1e6:g} MB")
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the catalogue behind catalogue_url is larger than the limit of {limit / 1e6:g} MB")
        chunks.append(chunk)
    return b"".join(chunks)
