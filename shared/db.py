"""MongoDB access: one client per process, indexes declared by each owner and created at start."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase


@dataclass(frozen=True)
class IndexSpec:
    collection: str
    keys: tuple[tuple[str, int], ...]
    unique: bool = False


def make_client(url: str) -> AsyncMongoClient:
    return AsyncMongoClient(url, serverSelectionTimeoutMS=10_000, tz_aware=True)


async def ensure_indexes(db: AsyncDatabase, specs: list[IndexSpec]) -> None:
    for spec in specs:
        await db[spec.collection].create_index(list(spec.keys), unique=spec.unique)


async def next_sequence(db: AsyncDatabase, name: str, step: int = 1) -> int:
    """An increasing integer per name (the CPCS-style numeric ids of points and observatories): the
    counter after adding ``step`` (the ``step`` numbers up to it are the caller's)."""
    doc = await db.counters.find_one_and_update(
        {"_id": name}, {"$inc": {"value": step}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    return int(doc["value"])


class SequenceBlocks:
    """The numbers of one counter (:func:`next_sequence`), taken ``size`` at a time: one round trip per
    ``size`` numbers instead of one each. Every number is handed out once, by one process; numbers
    increase in each process, and a process that stops leaves the rest of its block unused (a gap)."""

    def __init__(self, db: AsyncDatabase, name: str, size: int):
        if size < 1:
            raise ValueError("a block holds at least one number")
        self.db, self.name, self.size = db, name, size
        self._next, self._last = 1, 0
        self._lock = asyncio.Lock()

    async def next(self) -> int:
        async with self._lock:
            if self._next > self._last:
                last = await next_sequence(self.db, self.name, self.size)
                self._next, self._last = last - self.size + 1, last
            value = self._next
            self._next += 1
            return value


def asc(*fields: str) -> tuple[tuple[str, int], ...]:
    return tuple((f, ASCENDING) for f in fields)


def gridfs_indexes(*buckets: str) -> list[IndexSpec]:
    """The indexes GridFS needs on each bucket (the driver's own: files by name and date, chunks unique
    by file and number), for ``ensure_indexes`` at start, so that :func:`put_file` may skip its check."""
    return [spec for bucket in buckets for spec in (IndexSpec(f"{bucket}.files", asc("filename", "uploadDate")),
                                                   IndexSpec(f"{bucket}.chunks", asc("files_id", "n"), unique=True))]


async def read_file(db: AsyncDatabase, bucket_name: str, file_id: ObjectId,
                    sha256: str | None = None) -> bytes | None:
    """A GridFS file's bytes, None if there is no such file. Given the SHA-256 its writer recorded, the
    chunks are read at once, without the file document first (one round trip of two), and the bytes are
    used only if their digest is that one; otherwise, or with no chunks, the file is read as the driver
    does (a file of no bytes has no chunks)."""
    if sha256 is not None:
        chunks = await db[f"{bucket_name}.chunks"].find({"files_id": file_id}, {"data": 1, "_id": 0}).sort(
            "n", ASCENDING).to_list(None)
        data = b"".join(bytes(chunk["data"]) for chunk in chunks)
        if chunks and hashlib.sha256(data).hexdigest() == sha256:
            return data
    try:
        return await (await AsyncGridFSBucket(db, bucket_name=bucket_name).open_download_stream(file_id)).read()
    except NoFile:
        return None


async def put_file(bucket: AsyncGridFSBucket, filename: str, data: bytes, *,
                   metadata: dict[str, Any] | None = None) -> ObjectId:
    """``bucket.upload_from_stream`` without the driver's index check: before every file it reads both of
    the bucket's collections (are they empty, so that it must create the indexes?), two round trips of
    four, which a service whose start created them (:func:`gridfs_indexes`) does not need. A write that
    fails is aborted (its chunks removed)."""
    stream = bucket.open_upload_stream(filename, metadata=metadata)
    # the driver's flag for "indexes ensured"; were it renamed, the driver would check again (still correct)
    object.__setattr__(stream, "_ensured_index", True)
    try:
        await stream.write(data)
    except BaseException:
        # remove the chunks written so far; a server may refuse the abort of a file it never saw (nothing
        # to remove then): the write's own error is the one to report
        with contextlib.suppress(Exception):
            await stream.abort()
        raise
    await stream.close()
    file_id: ObjectId = stream._id
    return file_id
