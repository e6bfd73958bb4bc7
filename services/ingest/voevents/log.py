"""The record of every packet ingest has handled (collection ``voevent_packets``, key: the packet's IVORN)."""
from __future__ import annotations

from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from shared.db import IndexSpec, asc

INDEXES = [IndexSpec("voevent_packets", asc("event"))]


class PacketLog:
    def __init__(self, db: AsyncDatabase):
        self.packets = db.voevent_packets

    async def get(self, ivorn: str) -> dict | None:
        return await self.packets.find_one({"_id": ivorn})

    async def record(self, ivorn: str, *, outcome: str, reason: str, event: str | None, via: str) -> None:
        """The packet's outcome; once written, later deliveries of the packet are duplicates."""
        moment = datetime.now(UTC)
        await self.packets.update_one(
            {"_id": ivorn},
            {"$set": {"outcome": outcome, "reason": reason, "event": event, "via": via, "done": True,
                      "recorded_at": moment}, "$setOnInsert": {"first_seen": moment}},
            upsert=True)

    async def of_event(self, event_id: str) -> list[dict]:
        return await self.packets.find({"event": event_id}).sort("first_seen", 1).to_list(None)
