"""The calibration document is lean; its per-star arrays live apart and come back for the plot."""
from __future__ import annotations

import asyncio

import bson
import numpy as np
import pytest
from pymongo.errors import AutoReconnect

from services.calibration import work
from services.calibration.store import CalibrationStore
from shared.refcat.model import ReferenceStars
from shared.simfield import simulate_field

BANDS = {"B": "Bmag", "V": "Vmag", "g": "g'mag", "r": "r'mag", "i": "i'mag"}


@pytest.fixture(scope="module")
def result() -> dict:
    """A real calibration of a 1,001-star field (the size of the upload benchmark)."""
    field = simulate_field(ra_deg=150.0, dec_deg=2.0, radius_arcmin=10, n_stars=800, n_faint=200, seed=7)
    ref = field.reference
    stars = work.read_stars(field.catalogue_text.encode(), "field.txt", None)
    refs = [ReferenceStars("APASS", "DR9", np.asarray(ref["RAJ2000"], float), np.asarray(ref["DEJ2000"], float),
                           {b: np.asarray(ref[c], float) for b, c in BANDS.items()},
                           {b: np.asarray(ref[f"e_{c}"], float) for b, c in BANDS.items()})]
    return work.run_calibration(stars, refs, target_ra_deg=150.0, target_dec_deg=2.0, match_radius_arcsec=None,
                                force_filter="no", declared_filter=None)


def doc_of(observation_id: str, result: dict) -> dict:
    return {"_id": observation_id, "event_ivorn": "ivo://StoreTest", "result": result, "message": {}}


async def test_the_stored_document_is_lean_and_the_stars_come_back(mongo_db, result):
    assert len(result["matched"]["ra_deg"]) > 500 and result["band_matches"]
    store = CalibrationStore(mongo_db)
    await store.save(doc_of("obs-1", result), dry_run=False)

    stored = await mongo_db.calibrations.find_one({"_id": "obs-1"})
    assert "matched" not in stored["result"] and "band_matches" not in stored["result"]
    assert stored["result"]["zeropoint"] == result["zeropoint"]
    assert len(bson.encode(stored)) < 20_000 < len(bson.encode(doc_of("obs-1", result)))

    same_process = await store.find_with_stars("obs-1")
    assert same_process["result"]["band_matches"] == result["band_matches"]
    await store.flush()
    other_process = await CalibrationStore(mongo_db).find_with_stars("obs-1")  # read from calibration_stars
    assert other_process["result"]["matched"] == result["matched"]
    assert other_process["result"]["band_matches"] == result["band_matches"]


async def test_a_new_calibration_replaces_the_stars_and_delete_removes_them(mongo_db, result):
    store = CalibrationStore(mongo_db)
    await store.save(doc_of("obs-2", result), dry_run=False)
    fewer = {**result, "matched": {k: v[:10] for k, v in result["matched"].items()}}
    await store.replace_current(doc_of("obs-2", fewer), reason="test")
    await store.flush()
    assert len((await CalibrationStore(mongo_db).find_with_stars("obs-2"))["result"]["matched"]["ra_deg"]) == 10
    assert len(await mongo_db["calibration_stars.files"].find({"filename": "obs-2.stars.bson"}).to_list(None)) == 1

    await store.delete("obs-2")
    assert await mongo_db["calibration_stars.files"].find({}).to_list(None) == []
    assert await CalibrationStore(mongo_db).find_with_stars("obs-2") is None


async def test_without_stored_stars_the_document_still_reads(mongo_db, result):
    """Stars never written (the process killed right after its answer): the summary is still there."""
    lean = {k: v for k, v in result.items() if k not in ("matched", "band_matches")}
    await mongo_db.calibrations.insert_one(doc_of("obs-3", lean))
    doc = await CalibrationStore(mongo_db).find_with_stars("obs-3")
    assert doc["result"]["zeropoint"] == result["zeropoint"] and "matched" not in doc["result"]


class DatabaseAway(CalibrationStore):
    """The real store, whose per-star write meets a database outage until the test says it is over."""

    away, tries = True, 0

    def __init__(self, db):
        super().__init__(db)
        self.retried = asyncio.Event()

    async def _replace_stars(self, observation_id, stars, **how):
        self.tries += 1
        if self.tries >= 2:
            self.retried.set()
        if self.away:
            raise AutoReconnect("connection closed (injected outage)")
        await super()._replace_stars(observation_id, stars, **how)


async def test_the_stars_are_written_once_the_database_is_back(mongo_db, result, caplog):
    """Today's defect (seen in the chaos bench's 60 s database stop): a per-star write that met the outage
    was given up at once, so the plot of that point, drawn later or elsewhere, had no stars."""
    store = DatabaseAway(mongo_db)
    await store.save(doc_of("obs-4", result), dry_run=False)
    meanwhile = await asyncio.wait_for(store.find_with_stars("obs-4"), 10)  # the plot does not wait for it
    assert meanwhile["result"]["matched"] == result["matched"]
    await asyncio.wait_for(store.retried.wait(), 10)  # the outage lasts over a retry
    assert await mongo_db["calibration_stars.files"].find({"filename": "obs-4.stars.bson"}).to_list(None) == []
    store.away = False
    await store.flush()
    assert store.tries >= 3 and "wait for the database" in caplog.text
    elsewhere = await CalibrationStore(mongo_db).find_with_stars("obs-4")
    assert elsewhere["result"]["matched"] == result["matched"]


class Broken(CalibrationStore):
    async def _replace_stars(self, observation_id, stars, **how):
        raise ValueError("a bug, not an outage (injected)")


async def test_a_write_that_is_not_an_outage_is_not_retried(mongo_db, result, caplog):
    store = Broken(mongo_db)
    await store.save(doc_of("obs-5", result), dry_run=False)
    await asyncio.wait_for(store.flush(), 5)
    assert "could not be stored" in caplog.text and "wait for the database" not in caplog.text
    assert (await CalibrationStore(mongo_db).find_with_stars("obs-5"))["result"].get("matched") is None


def test_packed_stars_come_back_as_the_same_lists(result):
    from services.calibration.store import pack_stars, split_stars, unpack_stars

    _, stars = split_stars(result)
    odd = {"floats": [1.5, None, -2.25, 3], "ints": [0, 7, -1], "flags": [True, False], "empty": [],
           "words": ["a", "b"], "nested": [{"x": [None, None]}, {"x": [0.1]}], "mixed": [True, 1.0]}
    for value in (stars, odd):
        packed = pack_stars(value)
        again = unpack_stars(packed, "packed-1")
        assert again == value
    # the types come back too (a bool is not returned as 1.0, nor an int as a float)
    assert {k: [type(x) for x in v] for k, v in again.items() if isinstance(v, list)} == {
        k: [type(x) for x in v] for k, v in odd.items() if isinstance(v, list)}
    assert len(pack_stars(stars)) * 3 < len(bson.encode(stars)) * 2  # two thirds of the BSON lists, or less


async def test_stars_written_before_the_packed_format_still_read(mongo_db, result):
    from services.calibration.store import split_stars
    from shared.db import put_file

    store = CalibrationStore(mongo_db)
    await store.save(doc_of("obs-old", result), dry_run=False)
    await store.flush()
    old = await mongo_db["calibration_stars.files"].find({"filename": "obs-old.stars.bson"}).to_list(None)
    for meta in old:  # replace the packed file by one in the earlier form: plain BSON, no format
        await store.stars.delete(meta["_id"])
    _, stars = split_stars(result)
    await put_file(store.stars, "obs-old.stars.bson", bson.encode(stars), metadata={"observation_id": "obs-old"})
    again = await CalibrationStore(mongo_db).find_with_stars("obs-old")
    assert again["result"]["matched"] == result["matched"]
    assert again["result"]["band_matches"] == result["band_matches"]


async def test_a_result_packed_by_the_worker_is_stored_and_read_back_as_the_same_lists(mongo_db, result):
    from services.calibration.stars import PACKED_STARS, packed_result

    packed = packed_result(result)
    assert PACKED_STARS in packed and "matched" not in packed and "band_matches" not in packed
    store = CalibrationStore(mongo_db)
    await store.save(doc_of("obs-packed", packed), dry_run=False, first=True)
    recent = await store.find_with_stars("obs-packed")  # from this process's memory
    await store.flush()
    stored = await CalibrationStore(mongo_db).find_with_stars("obs-packed")  # from calibration_stars
    for doc in (recent, stored):
        assert doc["result"]["matched"] == result["matched"]
        assert doc["result"]["band_matches"] == result["band_matches"]
        assert PACKED_STARS not in doc["result"]
    lean = await mongo_db.calibrations.find_one({"_id": "obs-packed"})
    assert PACKED_STARS not in lean["result"] and "matched" not in lean["result"]
    await store.save(doc_of("obs-packed", packed), dry_run=False)  # a later calibration replaces the file
    await store.flush()
    files = await mongo_db["calibration_stars.files"].find({"filename": "obs-packed.stars.bson"}).to_list(None)
    assert len(files) == 1
