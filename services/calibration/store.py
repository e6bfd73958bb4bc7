"""What the calibration service owns: calibrations, their matched stars and their plots.

A calibration document holds what the answer, the pages and a recalibration need (a few kB); the
per-star arrays (``result.matched`` and ``result.band_matches``, ~0.3 MB as BSON lists for 1,000 stars,
0.2 MB packed: :func:`~services.calibration.stars.pack_stars`) are kept apart in the GridFS bucket
``calibration_stars`` and written after the answer has gone out (through a database outage, retried with backoff up to
``STARS_WRITE_PATIENCE_S``): only the plot and a reader of the full result need them
(:meth:`CalibrationStore.find_with_stars`).

It reads, never writes, the uploaded bytes (ingest's ``uploads`` and ``scratch``) and the measured
catalogues (photometry's ``catalogues``) by the ids its messages carry."""
from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict
from datetime import UTC, datetime, timedelta

from bson import ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo.asynchronous.database import AsyncDatabase

from services.calibration.stars import (
    STARS_FORMAT,
    Stars,
    pack_stars,
    split_stars,
    stars_dict,
    unpack_stars,
)
from shared.db import IndexSpec, asc, gridfs_indexes, put_file, read_file
from shared.errors import backoff_delay_s, is_infrastructure

INDEXES = [IndexSpec("calibrations", asc("event_ivorn")), IndexSpec("calibrations", asc("expires_at")),
           IndexSpec("calibration_history", asc("observation_id")),
           IndexSpec("calibration_stars.files", asc("filename")),
           *gridfs_indexes("calibration_stars", "plots")]  # the buckets calibration writes (put_file)
DRY_RUN_KEEP = timedelta(days=1)
RECENT_STARS = 64  # stars of the latest calibrations kept in memory for the plot drawn right after
STARS_WRITE_PATIENCE_S = 900.0  # a database outage shorter than this delays the per-star write, no more
FLUSH_WAIT_S = 15.0  # how long a shutdown waits for the per-star writes still going

log = logging.getLogger(__name__)


class CalibrationStore:
    def __init__(self, db: AsyncDatabase):
        self.db = db
        self.uploads = AsyncGridFSBucket(db, bucket_name="uploads")
        self.scratch = AsyncGridFSBucket(db, bucket_name="scratch")
        self.plots = AsyncGridFSBucket(db, bucket_name="plots")
        self.catalogues = AsyncGridFSBucket(db, bucket_name="catalogues")
        self.stars = AsyncGridFSBucket(db, bucket_name="calibration_stars")
        self._writing: dict[str, asyncio.Task] = {}
        self._recent: OrderedDict[str, dict] = OrderedDict()

    async def upload_bytes(self, file_id: str, bucket: str, sha256: str | None = None) -> bytes | None:
        """An upload's bytes (ingest's ``uploads`` or ``scratch``); with the SHA-256 its message carries,
        read in one round trip (``shared.db.read_file``)."""
        return await read_file(self.db, "scratch" if bucket == "scratch" else "uploads", ObjectId(file_id), sha256)

    async def catalogue_bytes(self, file_id: str) -> bytes | None:
        """A catalogue measured on an image by the photometry service."""
        try:
            return await (await self.catalogues.open_download_stream(ObjectId(file_id))).read()
        except NoFile:
            return None

    async def find(self, observation_id: str) -> dict | None:
        return await self.db.calibrations.find_one({"_id": observation_id})

    async def find_with_stars(self, observation_id: str) -> dict | None:
        """The calibration with its per-star arrays put back into ``result`` (from memory when this
        process calibrated it lately, else from ``calibration_stars``; absent if they were never written,
        e.g. the process was killed in the moment after its answer)."""
        doc = await self.find(observation_id)
        if doc is None or not isinstance(doc.get("result"), dict):
            return doc
        stars = await self._stars_of(observation_id)
        if stars:
            doc["result"] = {**doc["result"], **stars}
        return doc

    async def _stars_of(self, observation_id: str) -> dict | None:
        if observation_id in self._recent:  # the latest, even while its write waits for the database
            return stars_dict(self._recent[observation_id])
        writing = self._writing.get(observation_id)
        if writing is not None:
            await asyncio.shield(writing)
        async for meta in self.db["calibration_stars.files"].find(
                {"filename": _stars_name(observation_id)}, {"_id": 1, "metadata.format": 1}
        ).sort("uploadDate", -1).limit(1):
            try:
                data = await (await self.stars.open_download_stream(meta["_id"])).read()
            except NoFile:  # deleted meanwhile
                return None
            return unpack_stars(data, (meta.get("metadata") or {}).get("format"))
        return None

    async def save(self, doc: dict, *, dry_run: bool, first: bool = False) -> None:
        """Store the calibration; its per-star arrays follow in the background (see :meth:`flush`).

        ``first``: no calibration of this observation was stored before (the caller looked), so there are
        no older per-star files to replace (their look-up is skipped)."""
        now = datetime.now(UTC)
        doc = {**doc, "created_at": now, "expires_at": now + DRY_RUN_KEEP if dry_run else None}
        stars: Stars = {}
        if isinstance(doc.get("result"), dict):
            lean, stars = split_stars(doc["result"])
            doc["result"] = lean
        await self.db.calibrations.replace_one({"_id": doc["_id"]}, doc, upsert=True)
        if stars:
            self._remember(doc["_id"], stars)
            self._write_later(doc["_id"], stars, replacing=not first)

    def _remember(self, observation_id: str, stars: Stars) -> None:
        self._recent[observation_id] = stars
        self._recent.move_to_end(observation_id)
        while len(self._recent) > RECENT_STARS:
            self._recent.popitem(last=False)

    def _write_later(self, observation_id: str, stars: Stars, *, replacing: bool = True) -> None:
        previous = self._writing.get(observation_id)
        task = asyncio.create_task(self._write_stars(observation_id, stars, after=previous,
                                                     replacing=replacing or previous is not None))
        self._writing[observation_id] = task
        task.add_done_callback(lambda t: self._writing.pop(observation_id, None) if self._writing.get(
            observation_id) is t else None)

    async def _write_stars(self, observation_id: str, stars: Stars, *, after: asyncio.Task | None,
                           replacing: bool = True) -> None:
        if after is not None:  # a newer calibration of the same observation is written after the older
            await asyncio.gather(after, return_exceptions=True)
        started = time.monotonic()
        for attempt in itertools.count():
            try:
                await self._replace_stars(observation_id, stars, replacing=replacing or attempt > 0)
                return
            except Exception as exc:
                waited_s = time.monotonic() - started
                if not is_infrastructure(exc) or waited_s >= STARS_WRITE_PATIENCE_S:
                    # the plot drawn in this process still has them; a later reader does without
                    log.exception("the matched stars of %s could not be stored", observation_id)
                    return
                delay_s = backoff_delay_s(attempt, base_s=0.5, max_s=10.0)
                log.warning("the matched stars of %s wait for the database (try %d, again in %.1f s): %s",
                            observation_id, attempt + 1, delay_s, type(exc).__name__)
                await asyncio.sleep(delay_s)

    async def _replace_stars(self, observation_id: str, stars: Stars, *, replacing: bool = True) -> None:
        """Write the per-star arrays, then remove the older copies (a retry after a lost answer may leave
        two: the newest is read, and the next write removes the rest); ``replacing`` False: there are none
        (the observation's first calibration, its first try), so none are looked for."""
        old = [] if not replacing else await self.db["calibration_stars.files"].find(
            {"filename": _stars_name(observation_id)}, {"_id": 1}).to_list(None)
        data = stars if isinstance(stars, bytes) else pack_stars(stars)
        await put_file(self.stars, _stars_name(observation_id), data,
                       metadata={"observation_id": observation_id, "format": STARS_FORMAT})
        for meta in old:
            await self._delete_file(self.stars, meta["_id"])

    async def flush(self, timeout_s: float = FLUSH_WAIT_S) -> None:
        """Until every per-star write started has ended, or ``timeout_s`` (a service's shutdown while the
        database is away: what is not written then is left, as after a kill)."""
        deadline = time.monotonic() + timeout_s
        while self._writing:
            pending = list(self._writing.values())
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                log.warning("leaving %d per-star write(s) unfinished at shutdown", len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                return
            await asyncio.wait(pending, timeout=left_s)

    async def delete(self, observation_id: str) -> None:
        writing = self._writing.get(observation_id)
        if writing is not None:
            await asyncio.gather(writing, return_exceptions=True)
        self._recent.pop(observation_id, None)
        async for meta in self.db["calibration_stars.files"].find({"filename": _stars_name(observation_id)},
                                                                   {"_id": 1}):
            await self._delete_file(self.stars, meta["_id"])
        await self.db.calibrations.delete_one({"_id": observation_id})
        await self.db.calibration_history.delete_many({"observation_id": observation_id})
        await self.delete_plot(observation_id)

    async def replace_current(self, doc: dict, *, reason: str) -> None:
        """Make ``doc`` the current calibration; the one it replaces joins the history as it was stored (its
        per-star arrays are kept for the current calibration only)."""
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
             "recalibration_id": recalibration_id, "outcome": "failed", "result": split_stars(result)[0],
             "created_at": datetime.now(UTC)}, upsert=True)

    async def history(self, observation_id: str) -> list[dict]:
        return await self.db.calibration_history.find({"observation_id": observation_id}).to_list(None)

    async def has_plot(self, observation_id: str) -> bool:
        return await self.db["plots.files"].find_one({"filename": _plot_name(observation_id)}) is not None

    async def save_plot(self, observation_id: str, png: bytes) -> None:
        await put_file(self.plots, _plot_name(observation_id), png, metadata={"observation_id": observation_id})

    async def delete_plot(self, observation_id: str) -> None:
        async for meta in self.db["plots.files"].find({"filename": _plot_name(observation_id)}, {"_id": 1}):
            await self._delete_file(self.plots, meta["_id"])

    @staticmethod
    async def _delete_file(bucket: AsyncGridFSBucket, file_id) -> None:
        try:
            await bucket.delete(file_id)
        except NoFile:  # deleted meanwhile
            pass

    async def purge_expired_dry_runs(self) -> int:
        """Dry runs keep their calibration and plot for a day (for the status URL and the plot link)."""
        expired = await self.db.calibrations.find(
            {"expires_at": {"$lt": datetime.now(UTC)}}, {"_id": 1}).to_list(None)
        for doc in expired:
            await self.delete(doc["_id"])
        return len(expired)


def _stars_name(observation_id: str) -> str:
    return f"{observation_id}.stars.bson"


def _plot_name(observation_id: str) -> str:
    return f"{observation_id}.png"
