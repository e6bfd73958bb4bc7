"""What the lightcurve service owns: the calibrated points of every event (collection ``points``) and
its copy of the events (``services.lightcurve.events``)."""
from __future__ import annotations

from datetime import UTC, datetime

from bson import ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo.asynchronous.database import AsyncDatabase

from services.lightcurve.events import EventCopies
from shared.contracts import ObservationCalibratedV1
from shared.db import IndexSpec, asc

INDEXES = [IndexSpec("points", asc("event_ivorn", "mjd")), IndexSpec("points", asc("observation_id"))]


def point_doc(message: ObservationCalibratedV1) -> dict:
    r = message.result
    return {"_id": message.followup_id, "observation_id": message.observation_id,
            "event_ivorn": message.event.ivorn, "observatory_id": message.observatory.id,
            "observatory": message.observatory.name, "mjd": message.mjd, "mag": r.mag,
            "mag_err": None if r.is_limit else r.mag_err, "calib_err": r.calib_err, "zp_err": r.zp_err,
            "total_err": r.total_err, "is_limit": r.is_limit, "limit_sigma": r.limit_sigma,
            "filter": r.band, "survey": r.survey, "mode": r.mode, "npoints": r.npoints,
            "algorithm_version": message.algorithm_version, "params_hash": message.params_hash,
            "calibrated_at": message.occurred_at, "stored_at": datetime.now(UTC)}


class LightcurveStore:
    def __init__(self, db: AsyncDatabase):
        self.db = db
        self.plots = AsyncGridFSBucket(db, bucket_name="plots")  # calibration's: read only, by observation
        self.copies = EventCopies(db)

    async def upsert_point(self, doc: dict) -> None:
        await self.db.points.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def delete_point(self, followup_id: int) -> None:
        """Remove a point and remember it, so a calibration still in flight cannot bring it back."""
        await self.db.deleted_points.replace_one({"_id": followup_id}, {"_id": followup_id}, upsert=True)
        await self.db.points.delete_one({"_id": followup_id})

    async def was_deleted(self, followup_id: int) -> bool:
        return await self.db.deleted_points.find_one({"_id": followup_id}) is not None

    async def points_of(self, ivorn: str) -> list[dict]:
        return await self.db.points.find({"event_ivorn": ivorn}).sort([("mjd", 1), ("_id", 1)]).to_list(None)

    async def recent_points(self, *, offset: int, limit: int) -> list[dict]:
        return await self.db.points.find({}).sort("_id", -1).skip(offset).limit(limit).to_list(None)

    async def count_points(self, ivorn: str) -> int:
        return await self.db.points.count_documents({"event_ivorn": ivorn})

    async def event(self, *, ivorn: str | None = None, alert_id: int | None = None) -> dict | None:
        """From lightcurve's own copy of the events (``services.lightcurve.events``)."""
        return await self.copies.find(ivorn=ivorn, alert_id=alert_id)

    async def events(self, *, offset: int, limit: int) -> list[dict]:
        return await self.copies.newest_first(offset=offset, limit=limit)

    async def observed_ivorns(self) -> set[str]:
        groups = await (await self.db.points.aggregate([{"$group": {"_id": "$event_ivorn"}}])).to_list(None)
        return {g["_id"] for g in groups}

    async def plot(self, observation_id: str) -> bytes | None:
        doc = await self.db["plots.files"].find_one({"filename": f"{observation_id}.png"})
        if doc is None:
            return None
        try:
            return await (await self.plots.open_download_stream(ObjectId(doc["_id"]))).read()
        except NoFile:
            return None
