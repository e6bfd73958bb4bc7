"""One observer's and one reader's session across the pages, on the real services: the reader keeps an event
page open; the observer logs in, dry-runs a catalogue through the form, sees the summary with every plot
loaded, stores the point; the reader's page shows it without a reload. An event and a comment written as a
script tag are shown as text on every page that shows them. The run saves the README's two screenshots."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import expect

from services.demo import DEMO_DEC_DEG, DEMO_RA_DEG
from tests.browser.conftest import log_in
from tests.browser.test_event_page import wait_plotted
from tests.browser.test_upload_page import ALL_IMAGES_LOADED, fill_upload
from tests.support.flows import demo_system, post_upload

pytestmark = [pytest.mark.integration, pytest.mark.browser]
XSS = "<script>alert(1)</script>"
#: The README's screenshots, made by this run.
README_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


async def test_dry_run_store_and_the_open_event_page_shows_it(browser, page, mongo_url, amqp_url, unique_name,
                                                            tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        event = running.demo["event"]
        async with running.http.get(f"{running.url}/api/v1/events/{event}/lightcurve",
                                    params={"hashtag": running.demo["token"]}) as response:
            alert_id = (await response.json())["id"]
        reader_context = await browser.new_context(viewport={"width": 1200, "height": 900})
        reader = await reader_context.new_page()
        try:
            await reader.goto(f"{running.url}/event/{alert_id}")  # a reader, not logged in, before any point
            await expect(reader.locator("body")).to_have_attribute("data-live", "on")

            await log_in(page, running.url, running.demo["token"], next_path=f"/uploader?event={quote(event)}")
            await fill_upload(page, running.demo["catalogue"], dry_run=True, comment="first night, seeing 1.4\"")
            await expect(page.locator("#stored")).to_contain_text("dry run")
            await page.wait_for_function(ALL_IMAGES_LOADED, timeout=45_000)
            await page.get_by_role("button", name="Store this point").click()
            await page.wait_for_load_state()
            followup_id = int((await page.locator("#stored").inner_text()).rsplit(" ", 1)[1])
            await page.wait_for_function(ALL_IMAGES_LOADED, timeout=45_000)
            README_SHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(README_SHOTS / "upload-result.png"), full_page=True)

            await wait_plotted(reader, followup_id)  # the reader's page, never reloaded
            await expect(reader.locator(f"#points-table tr[data-point='{followup_id}']")).to_be_visible()
            await reader.screenshot(path=str(README_SHOTS / "event-page.png"), full_page=False)
        finally:
            await reader_context.close()


async def test_a_script_tag_in_a_name_or_comment_is_text_on_every_page(page, mongo_url, amqp_url, unique_name,
                                                                     tmp_path):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        name = f"ivo://{XSS}"
        headers = {"Authorization": f"Bearer {running.demo['token']}"}
        async with running.http.post(f"{running.url}/api/v1/events", headers=headers,
                                     json={"ivorn": name, "ra": DEMO_RA_DEG, "dec": DEMO_DEC_DEG}) as response:
            assert response.status == 201, await response.text()
            alert_id = (await response.json())["id"]
        await running.probe.wait_for("lightcurve.event.stored.v1", lambda m: m.event_ivorn == name)
        demo = {**running.demo, "event": name}
        status, body = await post_upload(running, demo, running.catalogue, dryRun=0, comment=XSS)
        assert status == 200, body
        await running.probe.wait_for("lightcurve.updated.v1", lambda m: m.event_ivorn == name)
        await log_in(page, running.url, running.demo["admin_token"])
        json_params = {"format": "json", "hashtag": running.demo["token"]}
        async with running.http.get(f"{running.url}/observatories", params=json_params) as response:
            observatory_id = (await response.json())[0]["id"]
        shown = {f"/event/{alert_id}": name, "/list_of_alerts": name, "/list_of_alerts?observed_only=1": name,
                 "/list_of_followups": name, f"/observatories/{observatory_id}": name,
                 f"/uploader?event={quote(name)}": None, "/observatories": None, "/admin/observatories": None,
                 "/": None, "/manual": None, "/newevent": None, "/delpoint": None}
        for path, text in shown.items():
            response = await page.goto(f"{running.url}{path}")
            assert response is not None and response.status == 200, path
            if text is not None:
                await expect(page.get_by_text(text).first).to_be_visible()
            # escaped wherever it is written (text, attributes and the pages' own script data alike)
            assert XSS not in await page.content(), path
        assert dialogs == []
