"""Shared steps of the flow tests: seed a field and an observer, upload like the manual's curl line."""
from __future__ import annotations

import asyncio
import io
import shutil
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from services.demo import DEMO_DEC_DEG, DEMO_MJD, DEMO_RA_DEG, load_demo
from services.launcher import SystemSettings

IMAGE_SERVICES = ("ingest", "astrometry", "photometry", "calibration", "lightcurve")


async def seed_demo(settings: SystemSettings, tmp_path: Path, probe=None) -> dict:
    """Load the demo; with a probe, wait until the lightcurve service holds its copy of the demo event."""
    demo = await load_demo(out_dir=tmp_path, settings=settings["ingest"])
    if probe is not None:
        await probe.wait_for("lightcurve.event.stored.v1", lambda m: m.event_ivorn == demo["event"])
    return demo


def cpcs_form(demo: dict, data: bytes, **overrides) -> aiohttp.FormData:
    fields = {"matchDist": "2", "EventID": demo["event"], "hashtag": demo["token"], "MJD": str(DEMO_MJD),
              "expTime": "1", "noPlot": "1", "forceFilter": "no", "dryRun": "1", "outputFormat": "json"}
    fields.update({k: str(v) for k, v in overrides.items()})
    form = aiohttp.FormData()
    for key, value in fields.items():
        form.add_field(key, value)
    form.add_field("sexCat", io.BytesIO(data), filename="test.cat", content_type="application/octet-stream")
    return form


async def post_upload(system, demo: dict, data: bytes, path: str = "/cgi/upload", **overrides):
    async with system.http.post(f"{system.url}{path}", data=cpcs_form(demo, data, **overrides)) as response:
        body = await response.text()
        return response.status, body


@asynccontextmanager
async def image_system(mongo_url: str, amqp_url: str, name: str, tmp_path: Path):
    """All five services with the demo loaded; ``reference`` is the demo field's reference stars."""
    import pytest
    from pymongo import AsyncMongoClient

    from shared.refcat.store import RefcatStore

    if shutil.which("solve-field") is None:
        pytest.skip("astrometry.net (solve-field) is not installed: .ci/run installs it")
    async with demo_system(mongo_url, amqp_url, name, tmp_path, services=IMAGE_SERVICES) as running:
        client = AsyncMongoClient(mongo_url)
        try:
            (running.reference,) = await RefcatStore(client[name]).cone(DEMO_RA_DEG, DEMO_DEC_DEG, 0.2)
        finally:
            await client.close()
        yield running


@asynccontextmanager
async def demo_system(mongo_url: str, amqp_url: str, name: str, tmp_path: Path, **kwargs):
    """The services (``running_system`` defaults unless given) with the demo loaded; ``catalogue`` is the
    demo field's catalogue bytes."""
    from tests.support.system import running_system, settings_for

    settings = settings_for(mongo_url, amqp_url, name)
    async with running_system(settings, **kwargs) as running:
        services = kwargs.get("services", ("lightcurve",))
        running.demo = await seed_demo(settings, tmp_path, running.probe if "lightcurve" in services else None)
        running.catalogue = await asyncio.to_thread(Path(running.demo["catalogue"]).read_bytes)
        yield running
