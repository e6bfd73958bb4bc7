"""MongoDB access: one client per process, indexes declared by each owner and created at start."""
from __future__ import annotations

from dataclasses import dataclass

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


async def next_sequence(db: AsyncDatabase, name: str) -> int:
    """An increasing integer per name (the CPCS-style numeric ids of points and observatories)."""
    doc = await db.counters.find_one_and_update(
        {"_id": name}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    return int(doc["value"])


def asc(*fields: str) -> tuple[tuple[str, int], ...]:
    return tuple((f, ASCENDING) for f in fields)
