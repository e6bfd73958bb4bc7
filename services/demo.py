"""The demo data of ``make up``: an event, an observatory, tokens and a synthetic reference field.

The reference stars are made by the project's seeded simulator (``shared.simfield``) and stored as
survey APASS with version ``synthetic-demo-1`` and ``synthetic: true``: they are not real APASS stars.
"""
from __future__ import annotations

from pathlib import Path

from shared.db import ensure_indexes, make_client
from shared.refcat.store import RefcatStore
from shared.settings import Settings
from shared.simfield import simulate_field, write_catalogue
from services.ingest.store import INDEXES, IngestStore
from services.ingest.tokens import new_token

DEMO_EVENT = "ivo://CPCSDemo26a"
DEMO_RA_DEG, DEMO_DEC_DEG = 150.1, 2.2
DEMO_SEED = 2026
DEMO_VERSION = "synthetic-demo-1"
DEMO_MJD = 61365.1
DEMO_OBSERVATORY = "Demo Observatory 0.6 m (synthetic data)"


def demo_field():
    return simulate_field(ra_deg=DEMO_RA_DEG, dec_deg=DEMO_DEC_DEG, radius_arcmin=10, n_stars=600,
                          seed=DEMO_SEED, zeropoint_mag=25.0, band="r", target_mag=17.2)


async def load_demo(*, out_dir: Path, settings: Settings | None = None) -> dict:
    """Load (or top up) the demo; new tokens are issued each time and only their hashes are stored."""
    settings = settings or Settings()
    client = make_client(settings.mongo_url.get_secret_value())
    try:
        db = client[settings.mongo_db]
        await ensure_indexes(db, INDEXES)
        store = IngestStore(db)
        event, _ = await store.create_event(DEMO_EVENT, DEMO_RA_DEG, DEMO_DEC_DEG,
                                            "https://example.org/demo (synthetic demo event)", "demo")
        observatory = await store.create_observatory(DEMO_OBSERVATORY, 16.88, 52.40, filters=["r", "V"])
        token, admin = new_token("Demo"), new_token("DemoAdmin")
        await store.add_token(token, observatory_id=observatory["_id"], user="Demo")
        await store.add_token(admin, observatory_id=None, user="DemoAdmin", is_admin=True, allow_upload=False)
        field = demo_field()
        refcat = RefcatStore(db)
        await refcat.ensure_indexes()
        survey = await refcat.get_survey("APASS")
        if survey is None:  # never touch a real APASS an operator imported
            await refcat.import_table(field.reference, "apass", version=DEMO_VERSION, synthetic=True,
                                      description="synthetic demo field from the project's seeded simulator",
                                      source_name="simfield")
        out_dir.mkdir(parents=True, exist_ok=True)
        catalogue = write_catalogue(field, out_dir / "demo_field.cat")
    finally:
        await client.close()
    return {"url": settings.public_url, "event": event["_id"], "token": token, "admin_token": admin,
            "catalogue": str(catalogue.resolve()), "mjd": DEMO_MJD, "reference": f"APASS {DEMO_VERSION}"}
