"""The light curve a lightcurve process keeps in memory is never older than the database: two stores on
one database stand for two processes; each reads, writes and deletes, and each read equals a fresh
read of the database."""
from __future__ import annotations

import pytest

from bench.event_page import point
from services.lightcurve.store import LightcurveStore
from shared.contracts import EventRef

pytestmark = pytest.mark.integration
IVORN = "ivo://CacheTest26a"


async def from_database(store: LightcurveStore) -> list:
    docs = await store.db.points.find({"event_ivorn": IVORN}).sort([("mjd", 1), ("_id", 1)]).to_list(None)
    return [(d["_id"], d["mjd"], d["mag"]) for d in docs]


async def read(store: LightcurveStore) -> list:
    return [(d["_id"], d["mjd"], d["mag"]) for d in await store.points_of(IVORN)]


async def test_each_process_sees_every_write_of_the_others(mongo_db):
    one, two = LightcurveStore(mongo_db), LightcurveStore(mongo_db)
    await one.copies.note(EventRef(ivorn=IVORN, ra_deg=10.0, dec_deg=20.0))
    for n in range(5):
        await one.upsert_point(point(n, IVORN, 3))
    assert await read(one) == await read(two) == await from_database(one) and len(await read(one)) == 5
    assert (await one.points_and_version(IVORN))[1] == (await two.points_and_version(IVORN))[1]

    await two.upsert_point(point(10, IVORN, 3) | {"mjd": 57400.01})  # between two points of the curve
    await two.upsert_point(point(2, IVORN, 3) | {"mag": 12.5})  # recalibrated in place
    assert await read(one) == await from_database(one)  # written by the other: read again
    assert [p[0] for p in await read(one)] == [1_000_000, 1_000_010, 1_000_001, 1_000_002, 1_000_003, 1_000_004]

    await one.delete_point(1_000_003)  # applied to the copy one holds, and seen by two
    await one.upsert_point(point(20, IVORN, 3))
    assert await read(one) == await read(two) == await from_database(one)
    assert 1_000_003 not in [p[0] for p in await read(two)] and (1_000_002, 57400.04, 12.5) in await read(two)


async def test_a_replaced_copy_of_the_event_gets_a_new_version(mongo_db):
    store = LightcurveStore(mongo_db)
    await store.copies.note(EventRef(ivorn=IVORN, ra_deg=10.0, dec_deg=20.0))
    await store.upsert_point(point(1, IVORN, 3))
    _, first = await store.points_and_version(IVORN)
    doc = await mongo_db.lightcurve_events.find_one({"_id": IVORN})
    replaced = {k: v for k, v in doc.items() if k != "points_version"}  # as a newer revision of the event does
    await mongo_db.lightcurve_events.replace_one({"_id": IVORN}, replaced)
    await mongo_db.points.insert_one(point(2, IVORN, 3))  # written by hand: no version of its own
    points, second = await store.points_and_version(IVORN)
    assert second not in (None, first) and [p["_id"] for p in points] == [1_000_001, 1_000_002]
