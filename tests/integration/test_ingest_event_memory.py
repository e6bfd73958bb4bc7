"""ingest remembers the events it found for a moment (uploads to one event come in bursts), and forgets
them at once when it writes an event or an alias itself."""
from __future__ import annotations

import pytest
from pymongo import AsyncMongoClient

from services.ingest import store as store_module
from services.ingest.store import IngestStore
from tests.integration.test_gridfs_writes import Commands

pytestmark = pytest.mark.integration


async def test_a_found_event_is_read_once_until_this_store_changes_events(mongo_url, unique_name, monkeypatch):
    commands = Commands()
    client = AsyncMongoClient(mongo_url, serverSelectionTimeoutMS=5000, event_listeners=[commands])
    store = IngestStore(client[unique_name])
    try:
        event, _ = await store.create_event("ivo://Gaia16aye", 10.0, 20.0, "", "test")
        commands.names.clear()
        first = await store.find_event("ivo://Gaia16aye")
        first["ra_deg"] = -1.0  # a caller's change of its copy is not remembered
        again = await store.find_event("ivo://Gaia16aye")
        assert commands.names == ["find"] and again["ra_deg"] == 10.0
        assert await store.find_event("ivo://Gaia99zz") is None  # an unknown name is asked every time
        assert await store.find_event("ivo://Gaia99zz") is None
        assert commands.names.count("find") == 1 + 2 * 2  # the event once; the unknown name and its alias twice

        changed = dict(event, ra_deg=10.5, revision=1)
        assert await store.replace_event(changed, revision=None)
        assert (await store.find_event("ivo://Gaia16aye"))["ra_deg"] == 10.5  # its own write: read again
        await store.add_aliases("ivo://Gaia16aye", ["Gaia16aye"])
        assert (await store.find_event("Gaia16aye"))["_id"] == "ivo://Gaia16aye"
        assert (await store.find_event("ivo://Gaia16aye"))["ra_deg"] == 10.5

        other = IngestStore(client[unique_name])  # another process's write: seen once the keep is over
        assert await other.replace_event(dict(changed, ra_deg=11.0, revision=2), revision=1)
        assert (await store.find_event("ivo://Gaia16aye"))["ra_deg"] == 10.5
        monkeypatch.setattr(store_module, "EVENT_KEEP_S", 0.0)
        assert (await store.find_event("ivo://Gaia16aye"))["ra_deg"] == 11.0
    finally:
        await client.drop_database(unique_name)
        await client.close()
