"""What the lightcurve service owns: the calibrated points of every event (collection ``points``) and
its copy of the events (``services.lightcurve.events``).

Reading a big light curve (Gaia16aye: 25,000 points) from the database takes seconds on the embedded
server, so the points of the last ``CACHED_CURVES`` events read are kept in memory under the event's
``points_version`` (a random token in its copy in ``lightcurve_events``, set anew after every write of
one of its points, by any process): a request checks the token (one small read) and uses the copy it
holds only while the token is unchanged.
"""
from __future__ import annotations

import bisect
import re
import uuid
from collections import OrderedDict
from datetime import UTC, datetime

from bson import ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo import ReplaceOne, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from services.lightcurve.events import EventCopies
from shared.contracts import ObservationCalibratedV1
from shared.db import IndexSpec, asc

INDEXES = [IndexSpec("points", asc("event_ivorn", "mjd")), IndexSpec("points", asc("observation_id")),
           IndexSpec("points", asc("observatory_id", "mjd"))]
CACHED_CURVES = 8
#: What the light curve's readers need of a point (its bookkeeping stays in the database).
READ_FIELDS = {"stored_at": 0, "params_hash": 0}

#: The sort keys of the follow-up list: newest calibrated, by MJD, by the number of stars fitted.
FOLLOWUP_SORTS = {"date": [("_id", -1)], "mjd": [("mjd", -1), ("_id", -1)], "points": [("npoints", -1), ("_id", -1)]}


def point_doc(message: ObservationCalibratedV1) -> dict:
    r = message.result
    return {"_id": message.followup_id, "observation_id": message.observation_id,
            "event_ivorn": message.event.ivorn, "observatory_id": message.observatory.id,
            "observatory": message.observatory.name, "mjd": message.mjd, "mag": r.mag,
            "mag_err": None if r.is_limit else r.mag_err, "calib_err": r.calib_err, "zp_err": r.zp_err,
            "total_err": r.total_err, "is_limit": r.is_limit, "limit_sigma": r.limit_sigma,
            "filter": r.band, "survey": r.survey, "zp": r.zeropoint, "mode": r.mode, "npoints": r.npoints,
            "algorithm_version": message.algorithm_version, "params_hash": message.params_hash,
            "calibrated_at": message.occurred_at, "stored_at": datetime.now(UTC)}


async def _count(collection, match: dict) -> int:
    """The number of matching documents, by an aggregation's ``$count`` (``count_documents`` groups every
    matching document on nx-27017, hundreds of milliseconds for 10,000)."""
    result = await (await collection.aggregate([{"$match": match}, {"$count": "n"}])).to_list(None)
    return int(result[0]["n"]) if result else 0


class LightcurveStore:
    def __init__(self, db: AsyncDatabase):
        self.db = db
        self.plots = AsyncGridFSBucket(db, bucket_name="plots")  # calibration's: read only, by observation
        self.copies = EventCopies(db)
        self._curves: OrderedDict[tuple[str, str], list[dict]] = OrderedDict()

    async def upsert_point(self, doc: dict) -> None:
        await self.db.points.replace_one({"_id": doc["_id"]}, doc, upsert=True)
        await self._changed(doc["event_ivorn"], stored=doc, gone=doc["_id"])

    async def upsert_points(self, docs: list[dict]) -> None:
        """Many points at once (a replay, a benchmark): one bulk write, one new version per event."""
        if not docs:
            return
        await self.db.points.bulk_write([ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs], ordered=False)
        for ivorn in sorted({d["event_ivorn"] for d in docs}):
            await self._changed(ivorn, stored=None, gone=None, reread=True)

    async def delete_point(self, followup_id: int) -> None:
        """Remove a point and remember it, so a calibration still in flight cannot bring it back."""
        await self.db.deleted_points.replace_one({"_id": followup_id}, {"_id": followup_id}, upsert=True)
        gone = await self.db.points.find_one_and_delete({"_id": followup_id}, {"event_ivorn": 1})
        if gone is not None:
            await self._changed(gone["event_ivorn"], stored=None, gone=followup_id)

    async def _changed(self, ivorn: str, *, stored: dict | None, gone: int | None, reread: bool = False) -> None:
        """After a write of one of its points the event's light curve has a new version. When the curve
        this process holds is the one of the version just replaced, the write is applied to it (no
        other write came between); otherwise the next read reads the database."""
        version = uuid.uuid4().hex
        before = await self.db.lightcurve_events.find_one_and_update(
            {"_id": ivorn}, {"$set": {"points_version": version}}, {"points_version": 1},
            return_document=ReturnDocument.BEFORE)
        held = self._curves.pop((ivorn, (before or {}).get("points_version")), None)
        if before is None or held is None or reread:
            return
        points = [p for p in held if p["_id"] != gone]
        if stored is not None:
            doc = {k: v for k, v in stored.items() if k not in READ_FIELDS}
            points.insert(bisect.bisect(points, (doc["mjd"], doc["_id"]), key=lambda p: (p["mjd"], p["_id"])), doc)
        self._curves[(ivorn, version)] = points

    async def points_version(self, ivorn: str) -> str | None:
        """The token of the event's points as they are now (made when the copy has none yet: it was
        replaced by a newer revision of the event, or predates the token). None without a copy."""
        doc = await self.db.lightcurve_events.find_one({"_id": ivorn}, {"points_version": 1})
        if doc is None:
            return None
        if not doc.get("points_version"):
            await self.db.lightcurve_events.update_one({"_id": ivorn, "points_version": {"$exists": False}},
                                                       {"$set": {"points_version": uuid.uuid4().hex}})
            doc = await self.db.lightcurve_events.find_one({"_id": ivorn}, {"points_version": 1}) or {}
        return doc.get("points_version")

    async def points_and_version(self, ivorn: str) -> tuple[list[dict], str | None]:
        """The event's points by MJD (then id) and their version; the list is shared: read it, never
        change it."""
        version = await self.points_version(ivorn)  # taken before reading: a write after it makes a new one
        if version is not None and (ivorn, version) in self._curves:
            self._curves.move_to_end((ivorn, version))
            return self._curves[(ivorn, version)], version
        points = await self.db.points.find({"event_ivorn": ivorn}, READ_FIELDS).sort(
            [("mjd", 1), ("_id", 1)]).to_list(None)
        if version is not None:
            for key in [k for k in self._curves if k[0] == ivorn]:
                del self._curves[key]
            self._curves[(ivorn, version)] = points
            while len(self._curves) > CACHED_CURVES:
                self._curves.popitem(last=False)
        return points, version

    async def was_deleted(self, followup_id: int) -> bool:
        return await self.db.deleted_points.find_one({"_id": followup_id}) is not None

    async def points_of(self, ivorn: str) -> list[dict]:
        return (await self.points_and_version(ivorn))[0]

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

    async def point_counts(self, ivorns: list[str] | None = None) -> dict[str, int]:
        """The number of follow-up points of each event that has any (of ``ivorns`` only, when given)."""
        pipeline: list[dict] = [{"$match": {"event_ivorn": {"$in": ivorns}}}] if ivorns is not None else []
        pipeline.append({"$group": {"_id": "$event_ivorn", "n": {"$sum": 1}}})
        groups = await (await self.db.points.aggregate(pipeline)).to_list(None)
        return {g["_id"]: int(g["n"]) for g in groups}

    async def list_events(self, *, q: str, observed_only: bool, sort: str, ascending: bool, offset: int,
                          limit: int) -> tuple[int, list[dict]]:
        """(total, one page) of the events whose name holds ``q``, by date (their numeric id) or by their
        number of points (``sort="points"``), each with ``nfollowup``. Without a search only one page of
        events is read; a search reads the matching events' ids once."""
        counts = await self.point_counts() if observed_only or sort == "points" else None
        copies = self.copies
        match = copies.listing_match(q, sorted(counts) if observed_only and counts is not None else None)
        sign = 1 if ascending else -1

        def rank(key: dict) -> tuple[int, int]:
            n = counts.get(key["_id"], 0) if counts is not None and sort == "points" else 0
            return sign * n, sign * key["alert_id"]

        if q:
            keys = sorted(await copies.listing_keys(match), key=rank)
            total, chosen = len(keys), [k["_id"] for k in keys[offset:offset + limit]]
        elif sort == "points" and counts is not None:
            total = await copies.listing_count(match)
            ranked = sorted(await copies.listing_keys(match | {"_id": {"$in": sorted(counts)}}), key=rank)
            chosen = await self._points_page(match, [k["_id"] for k in ranked], total, ascending, offset, limit)
        else:
            total = await copies.listing_count(match)
            events = await copies.listing_page(match, offset, limit, ascending)
            chosen = []
        if q or sort == "points":
            found = {e["_id"]: e for e in await copies.listing_page({"_id": {"$in": chosen}}, 0, len(chosen),
                                                                    ascending)} if chosen else {}
            events = [found[i] for i in chosen if i in found]
        if counts is None:
            counts = await self.point_counts([e["_id"] for e in events])
        return total, [e | {"nfollowup": counts.get(e["_id"], 0)} for e in events]

    async def _points_page(self, match: dict, ranked: list[str], total: int, ascending: bool, offset: int,
                           limit: int) -> list[str]:
        """The ids of one page by number of points: the observed events (``ranked``) before the others
        (newest first) when descending, after them when ascending."""
        others = match | {"_id": {"$nin": ranked}} if ranked else match
        n_others = total - len(ranked)
        if not ascending:
            chosen = ranked[offset:offset + limit]
            start = max(0, offset - len(ranked))
        else:
            chosen, start = [], offset
        if len(chosen) < limit and start < n_others:
            page = await self.copies.listing_page(others, start, limit - len(chosen), ascending)
            chosen += [e["_id"] for e in page]
        if ascending and len(chosen) < limit:
            chosen += ranked[max(0, offset - n_others):max(0, offset - n_others) + limit - len(chosen)]
        return chosen

    async def list_points(self, *, q: str, sort: str, ascending: bool, offset: int, limit: int,
                          observatory_id: int | None = None) -> tuple[int, list[dict]]:
        """(total, one page) of the follow-up points matching an event or observatory name search."""
        match: dict = {}
        if q:
            pattern = {"$regex": re.escape(q), "$options": "i"}
            match["$or"] = [{"event_ivorn": pattern}, {"observatory": pattern}]
        if observatory_id is not None:
            match["observatory_id"] = observatory_id
        order = [(key, -direction if ascending else direction) for key, direction in FOLLOWUP_SORTS[sort]]
        total = await _count(self.db.points, match)
        rows = await self.db.points.find(match).sort(order).skip(offset).limit(limit).to_list(None)
        return total, rows

    async def zeropoints_of(self, observatory_id: int) -> list[dict]:
        """Every calibrated point of an observatory with its zero point: (followup id, MJD, band, zp, error)."""
        return await (self.db.points.find({"observatory_id": observatory_id, "zp": {"$ne": None}},
                                          {"mjd": 1, "filter": 1, "zp": 1, "zp_err": 1, "survey": 1})
                      .sort([("mjd", 1), ("_id", 1)]).to_list(None))

    async def plot(self, observation_id: str) -> bytes | None:
        doc = await self.db["plots.files"].find_one({"filename": f"{observation_id}.png"})
        if doc is None:
            return None
        try:
            return await (await self.plots.open_download_stream(ObjectId(doc["_id"]))).read()
        except NoFile:
            return None
