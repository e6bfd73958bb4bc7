"""Shared steps of the flow tests: seed a field and an observer, upload like the manual's curl line."""
from __future__ import annotations

import io
from pathlib import Path

import aiohttp

from shared.settings import Settings
from services.demo import DEMO_MJD, load_demo


async def seed_demo(settings: Settings, tmp_path: Path) -> dict:
    return await load_demo(out_dir=tmp_path, settings=settings)


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
