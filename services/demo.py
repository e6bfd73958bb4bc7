"""The demo data of ``make up``: an event, an observatory, tokens and a synthetic reference field.

The reference stars are made by the project's seeded simulator (``shared.simfield``, APASS DR9 column
layout) and stored as their own survey ``SYNTH-DEMO`` (:data:`shared.refcat.surveys.DEMO_SURVEY`,
version ``synthetic-demo-1``, ``synthetic: true``), a name no real catalogue uses: real APASS imports
beside it, and a calibration that asks for APASS never gets simulated stars. The demo upload
calibrates against ``SYNTH-DEMO/r`` (band compatibility depends on the bands, not on the survey name).
"""
from __future__ import annotations

import asyncio
from pathlib import Path

from services.ingest.event_messages import event_created
from services.ingest.settings import IngestSettings
from services.ingest.store import INDEXES, IngestStore
from services.ingest.tokens import new_token
from shared.db import ensure_indexes, make_client
from shared.messaging import Broker
from shared.refcat.importer import import_simulated_field
from shared.refcat.store import RefcatStore
from shared.refcat.surveys import DEMO_SURVEY
from shared.simfield import simulate_field, write_catalogue

DEMO_EVENT = "ivo://CPCSDemo26a"
DEMO_RA_DEG, DEMO_DEC_DEG = 150.1, 2.2
DEMO_SEED = 2026
DEMO_VERSION = "synthetic-demo-1"
DEMO_MJD = 61365.1
DEMO_OBSERVATORY = "Demo Observatory 0.6 m (synthetic data)"
#: Where earlier versions of the demo put its synthetic field (squatting the real survey's name).
LEGACY_DEMO_SURVEY = "APASS"


def demo_field():
    return simulate_field(ra_deg=DEMO_RA_DEG, dec_deg=DEMO_DEC_DEG, radius_arcmin=10, n_stars=600,
                          seed=DEMO_SEED, zeropoint_mag=25.0, band="r", target_mag=17.2)


def _is_legacy_demo(record: dict | None) -> bool:
    """An APASS record that the demo of an earlier version wrote: synthetic, the demo's version, and
    filled only from the simulator (never an operator's import)."""
    if not record or not record.get("synthetic") or record.get("version") != DEMO_VERSION:
        return False
    files = [f.get("file") for f in record.get("files") or []]
    return bool(files) and all(f in ("simfield", "shared.simfield") for f in files)


def _write_field(field, out_dir: Path) -> Path:
    """Write the demo field's catalogue into ``out_dir`` (made if missing); the file's absolute path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_catalogue(field, out_dir / "demo_field.cat").resolve()


async def _announce(settings: IngestSettings, event: dict) -> None:
    """Tell the other services about the demo event, as ingest does for every event it creates (sent
    again on each load: readers keep one copy per IVORN)."""
    broker = Broker.from_settings(settings)
    await broker.start()
    try:
        await broker.publish(event_created(event))
    finally:
        await broker.close()


async def load_demo(*, out_dir: Path, settings: IngestSettings | None = None) -> dict:
    """Load (or top up) the demo; new tokens are issued each time and only their hashes are stored.
    The demo event is announced as ``event.created.v1`` (the broker must be running).

    The synthetic field goes to survey SYNTH-DEMO once (a later call finds it there; a field of
    another demo version is replaced). A synthetic
    demo field an earlier version stored as APASS is removed, so that real APASS can be imported."""
    settings = settings or IngestSettings()
    client = make_client(settings.mongo_url.get_secret_value())
    try:
        db = client[settings.mongo_db]
        await ensure_indexes(db, INDEXES)
        store = IngestStore(db)
        event, _ = await store.create_event(DEMO_EVENT, DEMO_RA_DEG, DEMO_DEC_DEG,
                                            "https://example.org/demo (synthetic demo event)", "demo")
        await _announce(settings, event)
        observatory = await store.create_observatory(DEMO_OBSERVATORY, 16.88, 52.40, filters=["r", "V"])
        token, admin = new_token("Demo"), new_token("DemoAdmin")
        await store.add_token(token, observatory_id=observatory["_id"], user="Demo")
        await store.add_token(admin, observatory_id=None, user="DemoAdmin", is_admin=True, allow_upload=False)
        field = demo_field()
        refcat = RefcatStore(db)
        await refcat.ensure_indexes()
        legacy = await refcat.surveys.find_one({"name": LEGACY_DEMO_SURVEY}, {"_id": 0, "moc": 0, "journal": 0})
        if _is_legacy_demo(legacy):
            await refcat.delete_survey(LEGACY_DEMO_SURVEY)
        stored = await refcat.get_survey(DEMO_SURVEY)
        if stored is None or stored.get("version") != DEMO_VERSION:  # none yet, or an older demo's field
            await import_simulated_field(refcat, field, version=DEMO_VERSION, replace=stored is not None)
        catalogue = await asyncio.to_thread(_write_field, field, out_dir)
    finally:
        await client.close()
    return {"url": settings.public_url, "event": event["_id"], "token": token, "admin_token": admin,
            "catalogue": str(catalogue), "mjd": DEMO_MJD, "reference": f"{DEMO_SURVEY} {DEMO_VERSION}"}
