"""What ingest owns in MongoDB: events, observatories, tokens, observations and the uploaded bytes."""
from __future__ import annotations

import copy
import time
from datetime import UTC, datetime, timedelta

from bson import ObjectId
from bson.errors import InvalidId
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from services.ingest.tokens import token_hash
from shared.db import IndexSpec, SequenceBlocks, asc, gridfs_indexes, next_sequence, put_file
from shared.remembered import Remembered

INDEXES = [
    IndexSpec("events", asc("alert_id"), unique=True),
    IndexSpec("event_aliases", asc("event")),
    IndexSpec("observatories", asc("name"), unique=True),
    IndexSpec("observations", asc("followup_id")),
    IndexSpec("observations", asc("event_ivorn")),
    IndexSpec("observations", asc("observatory_id")),
    IndexSpec("recalibration_results", asc("recalibration_id")),
    IndexSpec("image_products", asc("expires_at_unix")),
    IndexSpec("observations", asc("outbox_pending")),  # the relay's: messages not yet confirmed
    IndexSpec("observations", asc("redriven_at_unix")),  # the reconciler's: not final for too long
    *gridfs_indexes("uploads", "scratch"),  # the buckets ingest writes (put_file)
]

#: A dry run's scratch copy older than this has outlived any outcome it could still get.
SCRATCH_KEEP = timedelta(days=1)
#: A (bytes, event) claim this old with no observation behind it was left by a failed upload.
ORPHAN_CLAIM_AGE_S = 120.0
#: How long an event found by a name is taken without reading it again. Every write of events or aliases
#: through the store forgets them all, so this process never reads its own change late; a change made by
#: another process (a second ingest, a command-line tool) is seen within this time.
EVENT_KEEP_S = 2.0
#: How many names' events are remembered at most.
EVENT_KEEP_MAX = 1024
#: Follow-up ids (the points' public numbers) are taken from their counter this many at a time: a stored
#: upload costs no round trip for its number nine times in ten. Ids increase within an ingest process;
#: a restart, or a second ingest process, leaves gaps of up to this many.
FOLLOWUP_ID_BLOCK = 10


def now() -> datetime:
    return datetime.now(UTC)


def scratch_copy_of(outcome) -> str | None:
    """The id of the dry run's scratch copy an outcome names (None: not a dry run, or not in scratch)."""
    if not outcome.dry_run or outcome.bucket != "scratch" or not outcome.file_id:
        return None
    return outcome.file_id


class IngestStore:
    def __init__(self, db: AsyncDatabase):
        self.db = db
        self.uploads = AsyncGridFSBucket(db, bucket_name="uploads")
        self.scratch = AsyncGridFSBucket(db, bucket_name="scratch")
        self.products = AsyncGridFSBucket(db, bucket_name="products")  # photometry's: read by id only
        self.followup_ids = SequenceBlocks(db, "followup_id", FOLLOWUP_ID_BLOCK)
        self._events = Remembered()  # an IVORN or alias -> its event

    # events: ``_id`` is the event's IVORN; ``event_aliases`` maps every other name of it (the
    # packets' IVORNs, the stream's name) to that ``_id``, one document per alias (unique by key)
    async def find_event(self, ivorn: str) -> dict | None:
        """The event with this IVORN or alias (``ivo://Gaia16aac``, its packet's IVORN, ``Gaia16aac``);
        a copy, remembered ``EVENT_KEEP_S`` once found (uploads to one event come in bursts)."""
        kept = self._events.recall(ivorn, EVENT_KEEP_S)
        if kept is not None:
            return copy.deepcopy(kept)
        event = await self.db.events.find_one({"_id": ivorn})
        if event is None:
            alias = await self.db.event_aliases.find_one({"_id": ivorn})
            if alias is not None:
                event = await self.db.events.find_one({"_id": alias["event"]})
        if event is not None:
            self._events.keep(ivorn, copy.deepcopy(event), EVENT_KEEP_MAX)
        return event

    def _events_changed(self) -> None:
        self._events.clear()

    async def events_known_as(self, names: list[str]) -> dict[str, str]:
        """For each name that is an event's IVORN or alias, that event's IVORN."""
        aliases = await self.db.event_aliases.find({"_id": {"$in": names}}).to_list(None)
        events = await self.db.events.find({"_id": {"$in": names}}, {"_id": 1}).to_list(None)
        return {a["_id"]: a["event"] for a in aliases} | {e["_id"]: e["_id"] for e in events}

    async def get_event(self, event_id: str) -> dict | None:
        return await self.db.events.find_one({"_id": event_id})

    async def insert_event(self, doc: dict) -> None:
        """Insert a new event (DuplicateKeyError when its IVORN was taken meanwhile)."""
        self._events_changed()
        await self.db.events.insert_one(doc)

    async def replace_event(self, doc: dict, *, revision: int | None) -> bool:
        """Write the event if nobody changed it since ``revision`` was read (None: never revised)."""
        self._events_changed()
        result = await self.db.events.replace_one({"_id": doc["_id"], "revision": revision}, doc)
        self._events_changed()
        return result.matched_count == 1

    async def add_aliases(self, event_id: str, aliases: list[str]) -> dict[str, str]:
        """Point each alias at the event; an alias already held by another event keeps it (returned)."""
        docs = [{"_id": a, "event": event_id} for a in aliases if a != event_id]
        if not docs:
            return {}
        self._events_changed()
        try:
            await self.db.event_aliases.insert_many(docs, ordered=False)
            return {}
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
        taken = [docs[e["index"]]["_id"] for e in errors]
        held = await self.db.event_aliases.find({"_id": {"$in": taken}}).to_list(None)
        return {a["_id"]: a["event"] for a in held if a["event"] != event_id}

    async def next_followup_id(self) -> int:
        """The follow-up id of a new stored point (counter ``followup_id``, in blocks)."""
        return await self.followup_ids.next()

    async def next_alert_id(self) -> int:
        """The numeric id of a new event (the counter ``alert_id``)."""
        return await next_sequence(self.db, "alert_id")

    async def find_event_by_id(self, alert_id: int) -> dict | None:
        return await self.db.events.find_one({"alert_id": alert_id})

    async def create_event(self, ivorn: str, ra_deg: float, dec_deg: float, url: str,
                           source: str) -> tuple[dict, bool]:
        """The event with this IVORN, created if new; the flag says whether it was created."""
        existing = await self.find_event(ivorn)
        if existing:
            return existing, False
        doc = {"_id": ivorn, "alert_id": await self.next_alert_id(), "ra_deg": ra_deg,
               "dec_deg": dec_deg, "url": url, "source": source, "published": now(), "target_usable": True,
               "no_target_reason": None}
        self._events_changed()
        try:
            await self.db.events.insert_one(doc)
        except DuplicateKeyError:
            return await self.find_event(ivorn), False
        return doc, True

    async def list_events(self, *, offset: int = 0, limit: int = 100) -> list[dict]:
        cursor = self.db.events.find({}).sort("alert_id", -1).skip(offset).limit(limit)
        return await cursor.to_list(None)

    # observatories and tokens
    async def create_observatory(self, name: str, lon_deg: float | None, lat_deg: float | None,
                                 **extra) -> dict:
        existing = await self.db.observatories.find_one({"name": name})
        if existing:
            return existing
        doc = {"_id": await next_sequence(self.db, "observatory_id"), "name": name, "lon_deg": lon_deg,
               "lat_deg": lat_deg, "created_at": now(), **extra}
        await self.db.observatories.insert_one(doc)
        return doc

    async def list_observatories(self) -> list[dict]:
        return await self.db.observatories.find({}).sort("_id", 1).to_list(None)

    async def count_observations(self, observatory_id: int) -> int:
        return await self.db.observations.count_documents({"observatory_id": observatory_id})

    async def add_token(self, token: str, *, observatory_id: int | None, user: str,
                        is_admin: bool = False, allow_upload: bool = True, allow_voevents: bool = False) -> None:
        await self.db.tokens.insert_one({"_id": token_hash(token), "observatory_id": observatory_id,
                                         "user": user, "is_admin": is_admin, "allow_upload": allow_upload,
                                         "allow_voevents": allow_voevents, "created_at": now()})

    async def list_tokens(self) -> list[dict]:
        """Every token's record (never the token: only its hash is stored), oldest first."""
        return await self.db.tokens.find({}).sort("created_at", 1).to_list(None)

    async def find_token(self, token: str) -> dict | None:
        return await self.db.tokens.find_one({"_id": token_hash(token)}) if token else None

    async def get_observatory(self, observatory_id: int) -> dict | None:
        return await self.db.observatories.find_one({"_id": observatory_id})

    # uploads
    async def claim_upload(self, sha256: str, event_ivorn: str, observation_id: str,
                           followup_id: int) -> dict | None:
        """Reserve (bytes, event) for one stored point; None when it is reserved now, else the earlier
        claim, with ``pending_s`` when no observation is behind it yet (an upload still being stored, or
        one cut off half-way: how long until the claim counts as left behind and is taken over)."""
        key = f"{sha256}:{event_ivorn}"
        claim = {"_id": key, "observation_id": observation_id, "followup_id": followup_id,
                 "claimed_at_unix": time.time()}
        for _ in range(2):
            try:
                await self.db.upload_hashes.insert_one(claim)
                return None
            except DuplicateKeyError:
                taken = await self.db.upload_hashes.find_one({"_id": key})
            if taken is None:
                continue  # released meanwhile: try again
            if await self.db.observations.find_one({"_id": taken.get("observation_id")}, {"_id": 1}) is not None:
                return taken
            pending_s = ORPHAN_CLAIM_AGE_S - (time.time() - float(taken.get("claimed_at_unix") or 0.0))
            if pending_s > 0:  # an upload still being stored has no observation yet
                return {**taken, "pending_s": pending_s}
            # a claim with no observation behind it, left by an upload that failed half-way (e.g. the
            # database went away before it could be undone): the file is free again
            await self.db.upload_hashes.delete_one({"_id": key, "observation_id": taken.get("observation_id")})
        return await self.db.upload_hashes.find_one({"_id": key}) or {"followup_id": None}

    async def release_upload(self, observation_id: str) -> None:
        await self.db.upload_hashes.delete_many({"observation_id": observation_id})

    async def put_bytes(self, data: bytes, filename: str, sha256: str, *, scratch: bool,
                        kept: dict | None = None) -> str:
        """Store bytes; ``kept`` (scratch only) is what a kept dry run needs to be stored later."""
        bucket = self.scratch if scratch else self.uploads
        metadata: dict = {"sha256": sha256, "stored_at_unix": time.time()}
        if kept is not None:
            metadata["kept"] = kept
        file_id = await put_file(bucket, filename, data, metadata=metadata)
        return str(file_id)

    async def kept_scratch_copy(self, file_id: str) -> tuple[bytes, str, dict] | None:
        """A kept dry run's bytes, file name and ``kept`` values (None: unknown, expired or not kept)."""
        try:
            key = ObjectId(file_id)
        except (TypeError, InvalidId):
            return None
        doc = await self.db["scratch.files"].find_one({"_id": key, "metadata.kept": {"$exists": True}})
        data = None if doc is None else await self.get_bytes(file_id, scratch=True)
        if doc is None or data is None:
            return None
        return data, str(doc.get("filename") or "catalogue"), dict(doc["metadata"]["kept"])

    async def get_bytes(self, file_id: str, *, scratch: bool = False) -> bytes | None:
        bucket = self.scratch if scratch else self.uploads
        try:
            stream = await bucket.open_download_stream(ObjectId(file_id))
        except NoFile:
            return None
        return await stream.read()

    async def delete_bytes(self, file_id: str, *, scratch: bool = False) -> None:
        """Delete stored bytes; bytes already gone (deleted by a concurrent handler) are no error."""
        bucket = self.scratch if scratch else self.uploads
        try:
            await bucket.delete(ObjectId(file_id))
        except NoFile:
            pass
        except OperationFailure:  # some servers answer a missing file with an error of their own
            if await self.db[f"{bucket._bucket_name}.files"].find_one({"_id": ObjectId(file_id)}, {"_id": 1}):
                raise

    async def purge_stale_scratch(self, *, older_than: timedelta = SCRATCH_KEEP, now_unix: float | None = None) -> int:
        """Scratch copies whose outcome never named them (e.g. an image that failed before calibration)."""
        cutoff = (time.time() if now_unix is None else now_unix) - older_than.total_seconds()
        stale = await self.db["scratch.files"].find({"metadata.stored_at_unix": {"$lt": cutoff}},
                                                    {"_id": 1}).to_list(None)
        for doc in stale:
            await self.delete_bytes(str(doc["_id"]), scratch=True)
        return len(stale)

    # recalibrations
    async def put_recalibration_result(self, doc: dict) -> None:
        """One recalibration's result for one point, keyed by ``_id``: delivered again, it replaces itself."""
        await self.db.recalibration_results.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    # observations
    async def insert_observation(self, doc: dict) -> None:
        await self.db.observations.insert_one(doc)

    # the outbox: an observation is inserted with the message(s) to publish in the same document (one write,
    # atomic on any server); the relay publishes them and clears them once the broker confirmed
    async def pending_outbox(self, limit: int = 100) -> list[dict]:
        """Observations with messages the broker has not confirmed yet (oldest first)."""
        cursor = self.db.observations.find({"outbox_pending": True}, {"outbox": 1, "received_at_unix": 1})
        return await cursor.sort("received_at_unix", 1).limit(limit).to_list(None)

    async def count_pending_outbox(self) -> int:
        """How many observations have messages the broker has not confirmed (the relay's gauge, every round).

        The ids through the ``outbox_pending`` index, counted here: ``count_documents`` is an aggregation
        that nx-27017 runs over the whole collection (37 ms for 2,000 observations, every second, on a
        server that answers one request at a time)."""
        return len(await self.db.observations.find({"outbox_pending": True}, {"_id": 1}).to_list(None))

    async def clear_outbox(self, observation_id: str, entry_ids: list[str]) -> None:
        """The broker confirmed these messages of the observation: they leave its outbox."""
        await self.db.observations.update_one(
            {"_id": observation_id},
            {"$pull": {"outbox": {"id": {"$in": entry_ids}}},
             "$set": {"outbox_pending": False, "published_at": now()}})

    async def not_final_since(self, before_unix: float, limit: int = 100) -> list[dict]:
        """Observations still ``received`` (no outcome) that were received or last re-driven before then."""
        cursor = self.db.observations.find({"status": "received", "redriven_at_unix": {"$lt": before_unix}},
                                           {"message": 1, "redrives": 1, "outbox_pending": 1})
        return await cursor.limit(limit).to_list(None)

    async def note_redriven(self, observation_id: str, at_unix: float) -> None:
        await self.db.observations.update_one({"_id": observation_id, "status": "received"},
                                              {"$set": {"redriven_at_unix": at_unix}, "$inc": {"redrives": 1}})

    async def find_observation(self, observation_id: str) -> dict | None:
        return await self.db.observations.find_one({"_id": observation_id})

    async def find_observation_by_followup(self, followup_id: int) -> dict | None:
        return await self.db.observations.find_one({"followup_id": followup_id})

    async def record_outcome(self, observation_id: str, status: str, result: dict | None,
                             reason: str | None) -> None:
        """The observation's status and result summary (an update, not a find-and-modify: nothing reads the
        document back, and returning it cost nx-27017 about 4.6 ms against 1.5 for the update)."""
        await self.db.observations.update_one(
            {"_id": observation_id},
            {"$set": {"status": status, "result": result, "reason": reason, "updated_at": now()}})

    async def delete_observation(self, observation_id: str) -> None:
        await self.db.observations.delete_one({"_id": observation_id})
        await self.db.image_products.delete_one({"_id": observation_id})

    # the products of images: what image.products.v1 named, per observation (a dry run's until it expires)
    async def record_products(self, doc: dict) -> None:
        await self.db.image_products.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def find_products(self, observation_id: str) -> dict | None:
        doc = await self.db.image_products.find_one({"_id": observation_id})
        expires = None if doc is None else doc.get("expires_at_unix")
        if expires is not None and expires < time.time():
            return None
        return doc

    async def purge_expired_products(self) -> int:
        result = await self.db.image_products.delete_many({"expires_at_unix": {"$lt": time.time()}})
        return int(result.deleted_count)

    async def product_bytes(self, file_id: str) -> bytes | None:
        """A product's bytes by the id its message named (None: gone, e.g. the point was deleted)."""
        try:
            stream = await self.products.open_download_stream(ObjectId(file_id))
        except NoFile:
            return None
        return await stream.read()
