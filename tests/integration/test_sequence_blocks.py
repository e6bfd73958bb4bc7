"""Numbers taken from a counter in blocks: each handed out once, across processes, one round trip a block."""
from __future__ import annotations

import asyncio

import pytest
from pymongo import AsyncMongoClient

from shared.db import SequenceBlocks, next_sequence
from tests.integration.test_gridfs_writes import Commands

pytestmark = pytest.mark.integration


async def test_two_processes_blocks_never_hand_out_a_number_twice(mongo_url, unique_name):
    commands = Commands()
    client = AsyncMongoClient(mongo_url, serverSelectionTimeoutMS=5000, event_listeners=[commands])
    db = client[unique_name]
    try:
        assert await next_sequence(db, "followup_id") == 1  # a counter that single ids used before
        first, second = SequenceBlocks(db, "followup_id", 10), SequenceBlocks(db, "followup_id", 10)
        commands.names.clear()
        taken = await asyncio.gather(*[blocks.next() for _ in range(25) for blocks in (first, second)])
        assert len(set(taken)) == 50 and min(taken) == 2  # none twice, none below the counter's past
        assert commands.names.count("findAndModify") == 6  # 3 blocks each for 25 numbers
        own = [await first.next() for _ in range(3)]
        assert own == sorted(own) and not set(own) & set(taken)
        assert await next_sequence(db, "followup_id") == 62  # the blocks moved the counter on
        with pytest.raises(ValueError):
            SequenceBlocks(db, "followup_id", 0)
    finally:
        await client.drop_database(unique_name)
        await client.close()
