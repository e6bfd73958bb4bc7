"""A stored file costs the writes of its chunks and its record, not the driver's index look-ups as well."""
from __future__ import annotations

from gridfs import AsyncGridFSBucket
from pymongo import AsyncMongoClient, monitoring

from shared.db import ensure_indexes, gridfs_indexes, put_file


class Commands(monitoring.CommandListener):
    """The names of the commands a client sends, in order."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_a_file_is_two_inserts_and_reads_back(mongo_url, unique_name):
    commands = Commands()
    client = AsyncMongoClient(mongo_url, serverSelectionTimeoutMS=5000, event_listeners=[commands])
    db = client[unique_name]
    try:
        await ensure_indexes(db, gridfs_indexes("uploads"))
        bucket = AsyncGridFSBucket(db, bucket_name="uploads")
        data = b"# catalogue\n" + b"1 210.5 -12.3 17.1 0.02\n" * 20_000  # two chunks
        commands.names.clear()
        file_id = await put_file(bucket, "cat.txt", data, metadata={"sha256": "x"})
        writes = list(commands.names)
        stream = await bucket.open_download_stream(file_id)
        assert await stream.read() == data
        assert stream.metadata == {"sha256": "x"}
        # the chunks (one insert) and the file record: no look-ups of the bucket's collections
        assert writes == ["insert", "insert"], writes
        # the driver's own write checks both collections first (what put_file saves)
        commands.names.clear()
        await bucket.upload_from_stream("again.txt", data)
        assert commands.names.count("find") == 2 and commands.names.count("insert") == 2, commands.names
    finally:
        await client.drop_database(unique_name)
        await client.close()


async def test_a_write_that_fails_leaves_no_chunks(mongo_db):
    await ensure_indexes(mongo_db, gridfs_indexes("uploads"))
    bucket = AsyncGridFSBucket(mongo_db, bucket_name="uploads")
    try:
        await put_file(bucket, "bad.txt", "not bytes")  # type: ignore[arg-type]
    except TypeError:
        pass
    else:
        raise AssertionError("a str was stored as a file")
    assert await mongo_db["uploads.files"].find_one({"filename": "bad.txt"}) is None
    assert await mongo_db["uploads.chunks"].find_one({}) is None


async def test_a_file_read_with_its_digest_is_one_find_and_a_wrong_digest_reads_it_as_the_driver_does(
        mongo_url, unique_name):
    import hashlib

    from bson import ObjectId

    from shared.db import read_file

    commands = Commands()
    client = AsyncMongoClient(mongo_url, serverSelectionTimeoutMS=5000, event_listeners=[commands])
    db = client[unique_name]
    try:
        await ensure_indexes(db, gridfs_indexes("uploads"))
        data = b"# catalogue\n" + b"1 210.5 -12.3 17.1 0.02\n" * 20_000  # two chunks
        file_id = await put_file(AsyncGridFSBucket(db, bucket_name="uploads"), "cat.txt", data)
        commands.names.clear()
        assert await read_file(db, "uploads", file_id, hashlib.sha256(data).hexdigest()) == data
        assert commands.names == ["find"], commands.names  # the chunks only, not the file record first
        commands.names.clear()
        assert await read_file(db, "uploads", file_id, "0" * 64) == data  # not trusted: read in full
        assert commands.names.count("find") >= 2, commands.names
        assert await read_file(db, "uploads", file_id) == data
        assert await read_file(db, "uploads", ObjectId(), hashlib.sha256(data).hexdigest()) is None
    finally:
        await client.drop_database(unique_name)
        await client.close()
