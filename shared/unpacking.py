"""Unpacking gzip and bzip2 uploads as a stream, stopped as soon as the unpacked size passes a limit.

A megabyte of gzip can unpack to a gigabyte (a "gzip bomb"): reading it whole first, even with a cap on
the final length, costs that gigabyte (and its copy) before anything is refused. Here the output grows
by at most ``CHUNK`` past the limit, so the memory of a refused file stays near the limit itself.

The limit is one per process: ``CPCS_MAX_UNPACKED_MB`` from the environment when the module is first
imported (so a service's spawned pool workers agree with it), else ``DEFAULT_MAX_UNPACKED_BYTES``; ingest's
composition root sets it again from its settings model (where the variable is declared and checked). A
caller may also pass its own.
"""
from __future__ import annotations

import bz2
import os
import zlib
from collections.abc import Callable
from typing import Any

#: The default largest unpacked file, 512 MB (an 8k x 8k float64 frame is 537 MB, float32 268 MB).
DEFAULT_MAX_UNPACKED_BYTES = 512_000_000
#: Bytes of output produced per step (the overshoot past the limit is at most this).
CHUNK = 1 << 20
ENVIRONMENT = "CPCS_MAX_UNPACKED_MB"


def _from_environment() -> int:
    try:
        value = float(os.environ.get(ENVIRONMENT, ""))
    except ValueError:
        return DEFAULT_MAX_UNPACKED_BYTES  # absent or not a number: ingest's settings refuse the latter
    return int(value * 1e6) if value > 0 else DEFAULT_MAX_UNPACKED_BYTES


_limit = _from_environment()


class UnpackError(ValueError):
    """The compressed bytes are damaged (the message says how)."""


class UnpackedTooLarge(ValueError):
    """The bytes unpack to more than the limit (``limit`` bytes)."""

    def __init__(self, limit: int):
        super().__init__(f"unpacks to more than {limit / 1e6:g} MB")
        self.limit = limit


def set_max_unpacked_bytes(limit: int) -> None:
    """This process's limit (the composition root calls it once, from its settings)."""
    global _limit
    if limit <= 0:
        raise ValueError("the unpacked limit must be positive")
    _limit = int(limit)


def max_unpacked_bytes() -> int:
    return _limit


def gunzip(data: bytes, limit: int | None = None) -> bytes:
    """Every gzip member of ``data`` unpacked (``UnpackedTooLarge`` past ``limit``)."""
    return _stream(data, lambda: zlib.decompressobj(wbits=31), _limit if limit is None else limit)


def bunzip2(data: bytes, limit: int | None = None) -> bytes:
    """Every bzip2 stream of ``data`` unpacked (``UnpackedTooLarge`` past ``limit``)."""
    return _stream(data, bz2.BZ2Decompressor, _limit if limit is None else limit)


def _stream(data: bytes, decompressor: Callable[[], Any], limit: int) -> bytes:
    out = bytearray()
    pending = bytes(data)
    try:
        while pending:
            unpacker = decompressor()
            feed = pending
            while not unpacker.eof:
                chunk = _step(unpacker, feed)
                out += chunk
                if len(out) > limit:
                    raise UnpackedTooLarge(limit)
                feed = b""
                if not chunk and not _holds_input(unpacker):
                    raise UnpackError("the compressed data end before the file does (it is truncated)")
            pending = unpacker.unused_data
            if not pending.strip(b"\x00"):
                break  # zero padding (tape blocks) after the last member
    except (zlib.error, OSError, EOFError) as exc:
        raise UnpackError(str(exc)) from exc
    return bytes(out)


def _step(unpacker: Any, feed: bytes) -> bytes:
    """At most ``CHUNK`` bytes of output, fed ``feed`` (empty: the input it still holds)."""
    if isinstance(unpacker, bz2.BZ2Decompressor):
        return bytes(unpacker.decompress(feed, max_length=CHUNK))
    return bytes(unpacker.decompress(feed or unpacker.unconsumed_tail, CHUNK))


def _holds_input(unpacker: Any) -> bool:
    if isinstance(unpacker, bz2.BZ2Decompressor):
        return not unpacker.needs_input
    return bool(unpacker.unconsumed_tail)
