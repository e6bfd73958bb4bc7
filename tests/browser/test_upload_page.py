"""The upload form and its result page in the browser, on the real services, broker and database:
dry run, the plots loading on first view, "Store this point", a second upload of the stored file
refused with the reason, a comment shown as text, and /cgi/upload answering a browser with the page."""
from __future__ import annotations

import io
import re
from urllib.parse import quote

import aiohttp
import pytest
from playwright.async_api import expect

from services.demo import DEMO_MJD
from tests.browser.conftest import SCREENSHOTS, log_in
from tests.support.catalogues import shifted
from tests.support.flows import cpcs_form, demo_system

pytestmark = [pytest.mark.integration, pytest.mark.browser]

COMMENT = "<script>alert(1)</script> seeing 2\""
#: Screenshots of the pages, to look at (Playwright makes the folder).
SHOTS = SCREENSHOTS / "upload"
ALL_IMAGES_LOADED = ("() => { const imgs = Array.from(document.querySelectorAll('.plots img'));"
                     " return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }")


async def fill_upload(page, catalogue: str, *, dry_run: bool, comment: str = "") -> None:
    await page.get_by_label("MJD of mid-exposure").fill(str(DEMO_MJD))
    await page.get_by_label("Exposure [s]").fill("60")
    await page.get_by_label("Filter of the observation").fill("V")
    await page.get_by_label("Matching radius").select_option("2")
    if comment:
        await page.get_by_label("Comment").fill(comment)
    await page.get_by_label("Catalogue file").set_input_files(catalogue)
    checkbox = page.get_by_label("Dry run (store nothing)")
    assert await checkbox.is_checked()  # ticked by default
    if not dry_run:
        await checkbox.uncheck()
    await page.get_by_role("button", name="Upload and calibrate").click()
    await page.wait_for_load_state()


async def test_dry_run_then_store_then_refused_again(page, mongo_url, amqp_url, unique_name, tmp_path):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        event = running.demo["event"]
        await log_in(page, running.url, running.demo["token"], next_path=f"/uploader?event={quote(event)}")
        assert await page.get_by_label("Event").input_value() == event
        force = page.get_by_label("Force survey/band")
        options = await force.locator("option").all_inner_texts()
        assert options[0].startswith("automatic") and any("SYNTH-DEMO" in o for o in options[1:]), options
        assert running.demo["token"] not in await page.content()
        await page.screenshot(path=str(SHOTS / "uploader.png"), full_page=True)

        await fill_upload(page, running.demo["catalogue"], dry_run=True, comment=COMMENT)
        assert await page.title() == "Calibration result · CPCS"
        assert "Hi Demo" in await page.locator(".lead").inner_text()
        assert re.search(r"\d+\.\d{3} ± \d\.\d{3} mag", await page.locator("#magnitude").inner_text())
        assert re.fullmatch(r"SYNTH-DEMO/\w+ \(AUTO\)", await page.locator("#filter").inner_text())
        assert re.fullmatch(r"-?\d+\.\d{3} ± \d\.\d{3}", await page.locator("#zeropoint").inner_text())
        assert int((await page.locator("#stars").inner_text()).split()[0]) > 10
        assert "dry run" in await page.locator("#stored").inner_text()
        assert await page.locator("#comment").inner_text() == COMMENT  # shown as text, never run
        await page.wait_for_function(ALL_IMAGES_LOADED, timeout=45_000)
        await page.screenshot(path=str(SHOTS / "result-dry-run.png"), full_page=True)
        assert dialogs == []

        await page.get_by_role("button", name="Store this point").click()
        await page.wait_for_load_state()
        stored = await page.locator("#stored").inner_text()
        followup_id = int(stored.rsplit(" ", 1)[1])
        assert await page.locator("#comment").inner_text() == COMMENT
        await page.wait_for_function(ALL_IMAGES_LOADED, timeout=45_000)
        await running.probe.wait_for("lightcurve.updated.v1", lambda m: m.followup_id == followup_id)
        params = {"alert_name": event, "hashtag": running.demo["token"]}
        async with running.http.get(f"{running.url}/get_alert_lc_data", params=params) as response:
            assert response.status == 200
            assert followup_id in (await response.json())["id"]

        await page.goto(f"{running.url}/uploader?event={quote(event)}")
        await fill_upload(page, running.demo["catalogue"], dry_run=False)
        assert await page.title() == "The upload was refused · CPCS"
        reason = await page.get_by_role("alert").inner_text()
        assert f"already uploaded for {event} as point {followup_id}" in reason
        await page.screenshot(path=str(SHOTS / "refused.png"), full_page=True)
        assert dialogs == []


async def test_the_force_filter_choices_follow_the_event(page, mongo_url, amqp_url, unique_name, tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        async with running.http.post(f"{running.url}/cgi/newevent", data={
                "EventID": "ivo://Elsewhere2", "ra": "10.0", "dec": "-40.0", "hashtag": running.demo["token"]}) as r:
            assert r.status == 200
        await log_in(page, running.url, running.demo["token"], next_path="/uploader")
        assert await page.locator("#event-list option").evaluate_all("os => os.map(o => o.value)") == [
            "ivo://Elsewhere2", running.demo["event"]]  # newest first
        force, event = page.get_by_label("Force survey/band"), page.get_by_label("Event")
        await expect(force.locator("option")).to_have_count(1)  # no event yet: automatic only
        await event.fill(running.demo["event"])
        await event.press("Tab")
        await expect(force.locator("option", has_text="SYNTH-DEMO")).not_to_have_count(0)
        await expect(page.locator("#force-hint")).to_contain_text("survey/band choices at " + running.demo["event"])
        await event.fill("ivo://Elsewhere2")  # no reference stars there
        await event.press("Tab")
        await expect(force.locator("option")).to_have_count(1)
        await expect(page.locator("#force-hint")).to_contain_text("no stars around ivo://Elsewhere2")
        await event.fill("ivo://Nowhere")
        await event.press("Tab")
        await expect(page.locator("#force-hint")).to_contain_text("Pick a known event")


async def test_a_failed_calibration_shows_its_reason_and_plot(page, mongo_url, amqp_url, unique_name, tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        async with running.http.post(f"{running.url}/cgi/newevent", data={
                "EventID": "ivo://Elsewhere3", "ra": "10.0", "dec": "-40.0", "hashtag": running.demo["token"]}) as r:
            assert r.status == 200
        moved = tmp_path / "elsewhere.cat"
        moved.write_bytes(shifted(running.catalogue, d_ra_deg=-140.1, d_dec_deg=-42.2))
        await log_in(page, running.url, running.demo["token"], next_path="/uploader?event=ivo://Elsewhere3")
        await fill_upload(page, str(moved), dry_run=True)
        assert await page.title() == "The calibration failed · CPCS"
        assert "no reference catalogue" in await page.get_by_role("alert").inner_text()
        await page.wait_for_function(ALL_IMAGES_LOADED, timeout=45_000)  # the failed attempt's plot
        assert await page.get_by_role("link", name="Back to the upload form").get_attribute("href") == \
            "/uploader?event=ivo%3A%2F%2FElsewhere3"
        assert await page.locator("input[name=kept]").count() == 0  # nothing to store


async def test_store_button_refuses_a_dry_run_that_is_gone(page, mongo_url, amqp_url, unique_name, tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        await log_in(page, running.url, running.demo["token"],
                     next_path=f"/uploader?event={quote(running.demo['event'])}")
        await fill_upload(page, running.demo["catalogue"], dry_run=True)
        await page.locator("input[name=kept]").evaluate("e => e.value = '0123456789abcdef01234567'")
        await page.get_by_role("button", name="Store this point").click()
        await page.wait_for_load_state()
        assert "no longer kept" in await page.get_by_role("alert").inner_text()


async def test_cgi_upload_answers_a_browser_with_the_page_and_curl_with_json(mongo_url, amqp_url, unique_name,
                                                                            tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        form = cpcs_form(running.demo, running.catalogue, outputFormat="html", comment=COMMENT)
        async with running.http.post(f"{running.url}/cgi/upload", data=form,
                                     headers={"Accept": browser_accept}) as response:
            assert response.status == 200 and response.content_type == "text/html"
            body = await response.text()
        assert "Hi <strong>Demo Observatory" in body and "<h1>Calibration result" in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert(1)" not in body
        async with running.http.post(f"{running.url}/cgi/upload", data=cpcs_form(running.demo, running.catalogue),
                                     headers={"Accept": "*/*"}) as response:
            assert response.status == 200 and response.content_type == "application/json"
            assert (await response.json())["dry_run"] is True
        wrong = cpcs_form(running.demo, running.catalogue, outputFormat="",
                          hashtag="Nobody_0123456789abcdef0123456789abcdef")
        async with running.http.post(f"{running.url}/cgi/upload", data=wrong,
                                     headers={"Accept": browser_accept}) as response:
            assert response.status == 401 and response.content_type == "text/html"
            assert "unknown or missing hashtag" in await response.text()


async def test_the_form_needs_a_login(mongo_url, amqp_url, unique_name, tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{running.url}/uploader", allow_redirects=False) as response:
                assert response.status == 303 and response.headers["Location"].startswith("/login?next=")
            form = aiohttp.FormData()
            form.add_field("sexCat", io.BytesIO(running.catalogue), filename="x.cat")
            async with http.post(f"{running.url}/upload", data=form, allow_redirects=False) as response:
                assert response.status == 303
