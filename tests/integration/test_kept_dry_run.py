"""A dry run sent from the upload form is kept (ingest's scratch bucket) so that "Store this point"
stores it without a second upload: only for its own observatory, once, and never after a day."""
from __future__ import annotations

import io
import re
import time

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from services.demo import DEMO_MJD
from services.ingest.store import IngestStore

pytestmark = pytest.mark.integration

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
KEPT = re.compile(r'name="kept" value="([0-9a-f]{24})"')


async def logged_in(url: str, token: str) -> tuple[aiohttp.ClientSession, str]:
    """A client with the session cookie of ``token`` and the session's CSRF token."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # cookies of 127.0.0.1
    async with http.get(f"{url}/login") as response:
        csrf = CSRF.search(await response.text()).group(1)
    async with http.post(f"{url}/login", data={"hashtag": token, "csrf_token": csrf, "next": "/uploader"}) as r:
        assert r.status == 200
        csrf = CSRF.search(await r.text()).group(1)
    return http, csrf


def upload_form(csrf: str, event: str, data: bytes, *, dry_run: bool) -> aiohttp.FormData:
    form = aiohttp.FormData()
    fields = {"csrf_token": csrf, "EventID": event, "time_kind": "mjd", "MJD": str(DEMO_MJD), "expTime": "60",
              "matchDist": "2", "forceFilter": "no", "comment": "kept"}
    if dry_run:
        fields["dryRun"] = "1"
    for key, value in fields.items():
        form.add_field(key, value)
    form.add_field("sexCat", io.BytesIO(data), filename="field.cat")
    return form


async def kept_copies(db) -> list[dict]:
    return await db["scratch.files"].find({"metadata.kept": {"$exists": True}}).to_list(None)


async def test_a_kept_dry_run_is_stored_once_and_only_by_its_observatory(mongo_url, amqp_url, unique_name,
                                                                         tmp_path):
    from tests.support.flows import demo_system

    client = AsyncMongoClient(mongo_url)
    db = client[unique_name]
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        url, event = running.url, running.demo["event"]
        async with running.http.post(f"{url}/cgi/newuser", data={
                "obsName": "Other 1 m", "lon": "10", "lat": "50", "allow_upload": "1", "prefix": "Other",
                "hashtag": running.demo["admin_token"]}) as response:
            other_token = (await response.text()).rsplit(": ", 1)[1].strip()
        mine, csrf = await logged_in(url, running.demo["token"])
        other, other_csrf = await logged_in(url, other_token)
        try:
            async with mine.post(f"{url}/upload", data=upload_form(csrf, event, running.catalogue, dry_run=True)) as r:
                assert r.status == 200
                kept_id = KEPT.search(await r.text()).group(1)
            (copy,) = await kept_copies(db)
            assert str(copy["_id"]) == kept_id and copy["metadata"]["kept"]["event_ivorn"] == event
            assert await db.observations.count_documents({}) == 0  # a dry run stores no point

            async with other.post(f"{url}/upload/store", data={"csrf_token": other_csrf, "kept": kept_id}) as r:
                assert r.status == 404 and "no longer kept" in await r.text()
            async with mine.post(f"{url}/upload/store", data={"kept": kept_id}) as r:
                assert r.status == 403  # no CSRF token
            async with mine.post(f"{url}/upload/store", data={"csrf_token": csrf, "kept": kept_id}) as r:
                assert r.status == 200
                page = await r.text()
            followup_id = int(re.search(r"yes, point (\d+)", page).group(1))
            stored = await db.observations.find_one({"followup_id": followup_id})
            assert stored["comment"] == "kept" and stored["mjd"] == DEMO_MJD and stored["match_radius_arcsec"] == 2.0
            assert await kept_copies(db) == []  # stored: the kept copy is gone

            async with mine.post(f"{url}/upload/store", data={"csrf_token": csrf, "kept": kept_id}) as r:
                assert r.status == 404
            async with mine.post(f"{url}/upload", data=upload_form(csrf, event, running.catalogue, dry_run=False)) as r:
                assert r.status == 409 and f"as point {followup_id}" in await r.text()
        finally:
            await mine.close()
            await other.close()

        store = IngestStore(db)
        await store.put_bytes(b"x", "old.cat", "0" * 64, scratch=True, kept={"event_ivorn": event})
        assert len(await kept_copies(db)) == 1
        await store.purge_stale_scratch(now_unix=time.time() + 2 * 86400)  # a day later, as for every dry run
        assert await kept_copies(db) == []
    await client.close()
