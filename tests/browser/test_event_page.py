"""The event page on the real stack: the live Plotly light curve and table, downloads that read back
with astropy, deleting with a confirmation, and an event's name shown as text."""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from astropy.table import Table
from playwright.async_api import expect

from tests.browser.conftest import SCREENSHOTS, log_in
from tests.support.flows import demo_system, post_upload

pytestmark = [pytest.mark.integration, pytest.mark.browser]


async def alert_id_of(running) -> int:
    async with running.http.get(f"{running.url}/api/v1/events/{running.demo['event']}/lightcurve",
                                params={"hashtag": running.demo["token"]}) as response:
        return (await response.json())["id"]


async def plotted_ids(page) -> list[str]:
    return await page.evaluate("() => (document.getElementById('lightcurve').data || [])"
                               ".flatMap(t => t.customdata.map(c => c[0]))")


async def wait_plotted(page, followup_id: int, present: bool = True) -> None:
    await page.wait_for_function(
        "([id, present]) => { const d = document.getElementById('lightcurve').data;"
        " return !!d && d.some(t => t.customdata.some(c => c[0] === id)) === present; }",
        arg=[str(followup_id), present])


def shoot(name: str):
    """Screenshots for people to look at, when CPCS_SCREENSHOTS is set."""
    return str(SCREENSHOTS / name) if os.environ.get("CPCS_SCREENSHOTS") else None


async def test_a_point_joins_the_open_page_downloads_read_back_and_delete_removes_it(
        page, mongo_url, amqp_url, unique_name, tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        alert_id = await alert_id_of(running)
        await log_in(page, running.url, running.demo["token"], next_path=f"/event/{alert_id}")
        assert page.url.endswith(f"/event/{alert_id}")
        await expect(page.locator("#event-name")).to_have_text(running.demo["event"])
        await expect(page.locator("#no-points")).to_be_visible()
        await expect(page.locator("body")).to_have_attribute("data-live", "on")  # listening before the upload
        assert await plotted_ids(page) == []

        status, body = await post_upload(running, running.demo, running.catalogue, dryRun=0)
        assert status == 200, body
        answer = json.loads(body)
        followup_id = answer["followup_id"]
        await wait_plotted(page, followup_id)  # no reload: the live stream redrew the plot
        row = page.locator(f"#points-table tr[data-point='{followup_id}']")
        await expect(row).to_be_visible()
        await expect(row).to_contain_text(f"{answer['mag']:.3f}")
        await expect(row).to_contain_text("Demo")
        trace = await page.evaluate("() => { const t = document.getElementById('lightcurve').data[0];"
                                    " const r = document.getElementById('lightcurve')._fullLayout.yaxis.range;"
                                    " return {reversed: r[0] > r[1],"
                                    " colour: t.marker.color, hover: t.hovertemplate, meta: t.meta}; }")
        assert trace["reversed"], "brighter (smaller magnitudes) must be up"
        assert trace["colour"] == {"r": "#d62728", "g": "#1b9e3e"}.get(answer["filter"], trace["colour"])
        assert all(k in trace["hover"] for k in ("MJD", "UTC", "mag_err", "calib_err", "total_err"))
        box = await page.locator("#lightcurve .point").first.bounding_box()
        await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        hover = page.locator("#lightcurve .hovertext")
        await expect(hover).to_contain_text(f"point {followup_id}")
        await expect(hover).to_contain_text("total_err")
        await expect(hover).to_contain_text("Demo")
        if path := shoot("event_page.png"):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=path, full_page=True)

        # every download link gives a file named after the event that reads back
        stem = running.demo["event"].removeprefix("ivo://")
        downloads = page.locator("ul.downloads a")
        assert await downloads.count() == 6
        for i in range(6):
            async with page.expect_download() as info:
                await downloads.nth(i).click()
            download = await info.value
            path = tmp_path / download.suggested_filename
            await download.save_as(path)
            assert download.suggested_filename.startswith(stem), download.suggested_filename
            text = path.read_text()
            if path.suffix in {".csv", ".ecsv", ".vot"} and "bhtom" not in path.name:
                reader = {".csv": "ascii", ".ecsv": "ascii.ecsv", ".vot": "votable"}[path.suffix]
                table = Table.read(path, format=reader)
                assert [str(v) for v in table["id"]] == [str(followup_id)]
                assert table["mag"].unit == "mag" and table["mjd"].unit == "d" and table["total_err"].unit == "mag"
                assert all(table[c].description for c in table.colnames)
                assert str(table["utc"][0]).startswith("20") and abs(table["mag"][0] - answer["mag"]) < 1e-6
            elif "bhtom" in path.name:
                assert text.splitlines()[0] == "MJD;Magnitude;Error;Facility;Filter;Observer"
                [fields] = [line.split(";") for line in text.splitlines()[1:]]
                assert float(fields[1]) == pytest.approx(answer["mag"], abs=1e-4) and fields[3].startswith("Demo")
                assert fields[4] == f"{answer['survey']}/{answer['filter']}"
                bhtom = Table.read(path, format="ascii.csv", delimiter=";")  # BHTOM's format has no units
                assert bhtom["Magnitude"][0] == pytest.approx(answer["mag"], abs=1e-4)
            elif "cpcs" in path.name:
                assert json.loads(text)["id"] == [followup_id]
            else:
                assert [p["id"] for p in json.loads(text)["points"]] == [followup_id]

        # the original uploaded file, to a logged-in observer
        async with page.expect_download() as info:
            await row.get_by_role("link", name=f"File uploaded for point {followup_id}").click()
        original = await info.value
        assert await asyncio.to_thread(Path(await original.path()).read_bytes) == running.catalogue

        # a second page stays open to see the deletion live
        other = await page.context.new_page()
        await other.goto(f"{running.url}/event/{alert_id}")
        await expect(other.locator("body")).to_have_attribute("data-live", "on")
        await wait_plotted(other, followup_id)

        await row.get_by_role("link", name=f"Delete point {followup_id}").click()
        await expect(page.get_by_role("heading", name=f"Delete point {followup_id}?")).to_be_visible()
        assert running.probe.count("observation.deleted.v1") == 0  # asking is not deleting
        await page.get_by_role("button", name=f"Delete point {followup_id}").click()
        await expect(page.get_by_role("status").filter(has_text=f"Point {followup_id} was deleted")).to_be_visible()
        await running.probe.wait_for("lightcurve.updated.v1", lambda m: m.followup_id == followup_id
                                     and m.action == "removed")
        await wait_plotted(other, followup_id, present=False)  # the open page lost it without reload
        await expect(other.locator(f"#points-table tr[data-point='{followup_id}']")).to_have_count(0)
        await expect(other.locator("#no-points")).to_be_visible()
        await other.close()


async def test_an_event_named_like_a_script_is_shown_as_text(page, mongo_url, amqp_url, unique_name, tmp_path):
    name = "ivo://<script>alert(1)</script>"
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        headers = {"Authorization": f"Bearer {running.demo['admin_token']}"}
        async with running.http.post(f"{running.url}/api/v1/events", headers=headers,
                                     json={"ivorn": name, "ra": 10.0, "dec": 20.0}) as response:
            assert response.status == 201, await response.text()
            alert_id = (await response.json())["id"]
        await running.probe.wait_for("lightcurve.event.stored.v1", lambda m: m.event_ivorn == name)
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        await page.goto(f"{running.url}/event/{alert_id}")
        await expect(page.locator("#event-name")).to_have_text(name)
        await expect(page.locator("body")).to_have_attribute("data-live", "on")
        assert await page.title() == f"{name} · CPCS"
        assert dialogs == [] and await page.locator("main script:not([type])").count() == 0


async def test_unknown_format_and_event_are_refused_with_a_sentence(mongo_url, amqp_url, unique_name, tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        alert_id = await alert_id_of(running)
        async with running.http.get(f"{running.url}/api/v1/events/{alert_id}/lightcurve?format=fits",
                                    params={"hashtag": running.demo["token"]}) as response:
            assert response.status == 400
            assert "json, csv, ecsv, votable, cpcs, bhtom" in await response.text()
        async with running.http.get(f"{running.url}/event/999999") as response:
            assert response.status == 404 and "there is no event 999999" in await response.text()
        async with running.http.get(f"{running.url}/get_alert_lc", params={"alert_id": "x"}) as response:
            assert response.status == 400 and "alert_id must be an integer" in await response.text()
        async with running.http.get(f"{running.url}/get_alert_lc",
                                    params={"alert_name": running.demo["event"]}) as response:
            assert response.status == 200 and 'id="lightcurve"' in await response.text()
        async with running.http.get(f"{running.url}/event/{alert_id}?page=x") as response:
            assert response.status == 400 and "page must be" in await response.text()
        async with running.http.get(f"{running.url}/observations/nothing/upload", allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"].startswith("/login?next=")
        async with running.http.get(f"{running.url}/static/plotly.min.js") as response:
            assert response.status == 200 and response.headers["Content-Encoding"] == "gzip"
            assert "plotly" in (await response.text())[:2000].lower()
