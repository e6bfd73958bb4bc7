"""What the calibration service owns: calibrations (with matched stars) and their plots.

It reads, never writes, the uploaded bytes (ingest's ``uploads`` and ``scratch``) and the measured
catalogues (photometry's ``catalogues``) by the ids its messages carry."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo.asynchronous.database import AsyncDatabase

from shared.db import IndexSpec, asc

INDEXES = [IndexSpec("calibrations", asc("event_ivorn")), IndexSpec("calibrations", asc("expires_at")),
           IndexSpec("calibration_history", asc("observation_id"))]
DRY_RUN_KEEP = timedelta(days=1)


class CalibrationStore:
    def __init__(self, db: AsyncDatabase):
        self.db = db
        self.uploads = AsyncGridFSBucket(db, bucket_name="uploads")
        self.scratch = AsyncGridFSBucket(db, bucket_name="scratch")
        self.plots = AsyncGridFSBucket(db, bucket_name="plots")
        self.catalogues = AsyncGridFSBucket(db, bucket_name="catalogues")

    async def upload_bytes(self, file_id: str, bucket: str) -> bytes | None:
        try:
            stream = await (self.scratch if bucket == "scratch" else self.uploads).open_download_stream(
                ObjectId(file_id))
        except NoFile:
            return None
        return await stream.read()

    async def catalogue_bytes(self, file_id: str) -> bytes | None:
        """A catalogue measured on an image by the photometry service."""
        try:
            return await (await self.catalogues.open_download_stream(ObjectId(file_id))).read()
        except NoFile:
            return None

    async def find(self, observation_id: str) -> dict | None:
        return await self.db.calibrations.find_one({"_id": observation_id})

    async def save(self, doc: dict, *, dry_run: bool) -> None:
        now = datetime.now(UTC)
        doc = {**doc, "created_at": now, "expires_at": now + DRY_RUN_KEEP if dry_run else None}
        await self.db.calibrations.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def delete(self, observation_id: str) -> None:
        await self.db.calibrations.delete_one({"_id": observation_id})
        await self.db.calibration_history.delete_many({"observation_id": observation_id})
        await self.delete_plot(observation_id)

    async def replace_current(self, doc: dict, *, reason: str) -> None:
        """Make ``doc`` the current calibration; the one it replaces joins the history, unchanged."""
        previous = await self.find(doc["_id"])
        revision = 1
        if previous is not None:
            revision = int(previous.get("revision", 0)) + 1
            await self.db.calibration_history.replace_one(
                {"_id": f"{doc['_id']}:{revision - 1}"},
                {**previous, "_id": f"{doc['_id']}:{revision - 1}", "observation_id": doc["_id"],
                 "replaced_at": datetime.now(UTC), "replaced_because": reason}, upsert=True)
        await self.save({**doc, "revision": revision}, dry_run=False)
        await self.delete_plot(doc["_id"])  # the plot is drawn again for the new calibration

    async def record_attempt(self, observation_id: str, recalibration_id: str, result: dict) -> None:
        """A recalibration that failed: kept beside the history, the current calibration untouched."""
        await self.db.calibration_history.replace_one(
            {"_id": f"{observation_id}:{recalibration_id}"},
            {"_id": f"{observation_id}:{recalibration_id}", "observation_id": observation_id,
             "recalibration_id": recalibration_id, "outcome": "failed", "result": result,
             "created_at": datetime.now(UTC)}, upsert=True)

    async def history(self, observation_id: str) -> list[dict]:
        return await self.db.calibration_history.find({"observation_id": observation_id}).to_list(None)

    async def has_plot(self, observation_id: str) -> bool:
        return await self.db["plots.files"].find_one({"filename": _plot_name(observation_id)}) is not None

    async def save_plot(self, observation_id: str, png: bytes) -> None:
        await self.plots.upload_from_stream(_plot_name(observation_id), png,
                                            metadata={"observation_id": observation_id})

    async def delete_plot(self, observation_id: str) -> None:
        async for meta in self.db["plots.files"].find({"filename": _plot_name(observation_id)}, {"_id": 1}):
            try:
                await self.plots.delete(meta["_id"])
            except NoFile:
                pass

    async def purge_expired_dry_runs(self) -> int:
        """Dry runs keep their calibration and plot for a day (for the status URL and the plot link)."""
        expired = await self.db.calibrations.find(
            {"expires_at": {"$lt": datetime.now(UTC)}}, {"_id": 1}).to_list(None)
        for doc in expired:
            await self.delete(doc["_id"])
        return len(expired)


def _plot_name(observation_id: str) -> str:
    return f"{observation_id}.png"
