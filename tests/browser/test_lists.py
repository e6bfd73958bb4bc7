"""The list pages, the observatory page, the new-event, delete-point and admin forms, and the API docs, in
Chromium against the services on the real broker and database."""
from __future__ import annotations

import json
import re

import pytest
from playwright.async_api import expect

from tests.browser.conftest import log_in
from tests.support.flows import demo_system, post_upload

pytestmark = [pytest.mark.integration, pytest.mark.browser]
XSS = "<script>alert(1)</script>"


async def add_events(running, n: int) -> list[str]:
    """``n`` events through the REST API (the last one named with a script tag), stored by lightcurve."""
    ivorns = [f"ivo://test/list-{i:02d}" for i in range(1, n)] + [f"ivo://test/{XSS}"]
    headers = {"Authorization": f"Bearer {running.demo['token']}"}
    for i, ivorn in enumerate(ivorns):
        async with running.http.post(f"{running.url}/api/v1/events", headers=headers,
                                     json={"ivorn": ivorn, "ra": 10 + i, "dec": -5 - i / 10}) as response:
            assert response.status == 201, await response.text()
    await running.probe.wait_count("lightcurve.event.stored.v1", lambda m: m.event_ivorn in ivorns, n)
    return ivorns


async def test_alerts_list_pages_searches_and_shows_names_as_text(page, mongo_url, amqp_url, unique_name,
                                                                   tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        ivorns = await add_events(running, 25)
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: dialogs.append(dialog.message))

        await page.goto(f"{running.url}/list_of_alerts")
        await expect(page.get_by_text("26 events", exact=True)).to_be_visible()
        rows = page.locator("main table tbody tr")
        await expect(rows).to_have_count(20)
        await expect(rows.first).to_contain_text(XSS)  # the newest: its IVORN shown as text
        assert await rows.first.get_by_role("link", name="LC").get_attribute("href") == "/get_alert_lc?alert_id=26"
        assert await rows.first.get_by_role("link", name="data").get_attribute("href") == \
            "/get_alert_lc_data?alert_id=26"

        await page.get_by_role("link", name="Next →").first.click()
        await expect(page.get_by_text("21–26 of 26 events").first).to_be_visible()
        await expect(rows).to_have_count(6)
        await expect(rows.first).to_contain_text(ivorns[4])  # the 21st newest: id 6
        await expect(page.get_by_role("link", name="Next →")).to_have_count(0)

        await page.get_by_label("Search by name").fill("list-07")
        await page.get_by_role("button", name="Search").click()
        await expect(page.get_by_text("1 event matching “list-07”")).to_be_visible()
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("ivo://test/list-07")

        await page.get_by_label("Search by name").fill("no such event")
        await page.get_by_role("button", name="Search").click()
        await expect(page.get_by_text("No event matches “no such event”")).to_be_visible()

        await page.goto(f"{running.url}/list_of_alerts?observed_only=1")
        await expect(page.get_by_text("0 events", exact=True)).to_be_visible()
        await expect(page.get_by_text("No event has follow-up data yet")).to_be_visible()
        assert dialogs == []

        json_params = {"format": "json", "num": 3, "hashtag": running.demo["token"]}
        async with running.http.get(f"{running.url}/list_of_alerts", params=json_params) as answer:
            scripts = await answer.json()
        assert [r["id"] for r in scripts] == [26, 25, 24]
        assert set(scripts[0]) == {"id", "ivorn", "published", "ra", "dec", "nfollowup"}


async def test_a_stored_upload_shows_in_the_lists_and_the_observatory_zero_point_plot(
        page, mongo_url, amqp_url, unique_name, tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        status, body = await post_upload(running, running.demo, running.catalogue, dryRun=0)
        assert status == 200, body
        answer = json.loads(body)
        await running.probe.wait_for("lightcurve.updated.v1", lambda m: m.followup_id == answer["followup_id"])

        await page.goto(f"{running.url}/list_of_alerts?observed_only=1&sort=points")
        await expect(page.get_by_text("1 event", exact=True)).to_be_visible()
        await expect(page.locator("main table tbody tr td").nth(5)).to_have_text("1")

        await page.goto(f"{running.url}/list_of_followups")
        await expect(page.get_by_text("1 point", exact=True)).to_be_visible()
        row = page.locator("main table tbody tr").first
        await expect(row).to_contain_text(running.demo["event"])
        await expect(row).to_contain_text(f"{answer['mag']:.3f}")

        await page.goto(f"{running.url}/observatories")
        await expect(page.get_by_text("1 observatory", exact=True)).to_be_visible()
        await page.locator("main table tbody").get_by_role("link").first.click()
        await expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("Demo"))
        plot = page.locator("#zp-plot")
        # drawn by Plotly (its 4 MB script may take a while to parse on a busy machine)
        await expect(plot.locator(".main-svg").first).to_be_visible(timeout=30_000)
        await expect(plot.locator(".scatterlayer .point")).to_have_count(1, timeout=30_000)
        await expect(page.locator("main table tbody tr").last).to_contain_text(f"{answer['zeropoint']:.3f}")
        await page.screenshot(path=str(tmp_path / "observatory.png"), full_page=True)

        await log_in(page, running.url, running.demo["token"], "/delpoint")
        await page.get_by_label("Follow-up id").fill(str(answer["followup_id"]))
        await page.get_by_role("button", name="Delete the point").click()  # the box is not ticked: refused
        await expect(page.get_by_label("Follow-up id")).to_be_visible()
        await page.get_by_label("I want to delete this point for good").check()
        await page.get_by_role("button", name="Delete the point").click()
        await expect(page.get_by_role("status")).to_contain_text(f"Point {answer['followup_id']} of")
        await running.probe.wait_for("observation.deleted.v1", lambda m: m.followup_id == answer["followup_id"])


async def test_new_event_with_sexagesimal_coordinates(page, mongo_url, amqp_url, unique_name, tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        await log_in(page, running.url, running.demo["token"], "/newevent")
        await page.get_by_label("IVORN or name").fill("ivo://test/sexagesimal")
        await page.get_by_label("RA").fill("19:40:01.15")
        await page.get_by_label("Dec").fill("+30:07:53.3")
        await page.get_by_role("button", name="Create the event").click()
        status = page.get_by_role("status")
        await expect(status).to_contain_text("ivo://test/sexagesimal created")
        await expect(status).to_contain_text("RA 295.00479°, Dec 30.13147°")
        href = await status.get_by_role("link", name="Its light curve").get_attribute("href")
        assert re.fullmatch(r"/get_alert_lc\?alert_id=\d+", href or "")

        await page.goto(f"{running.url}/newevent")
        await page.get_by_label("IVORN or name").fill("ivo://test/bad")
        await page.get_by_label("RA").fill("25:99:00")
        await page.get_by_label("Dec").fill("+30:07:53.3")
        await page.get_by_role("button", name="Create the event").click()
        await expect(page.get_by_role("alert")).to_contain_text("neither decimal degrees nor sexagesimal")


async def test_admin_page_refuses_others_and_creates_an_observatory(page, mongo_url, amqp_url, unique_name,
                                                                    tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        await log_in(page, running.url, running.demo["token"])
        response = await page.goto(f"{running.url}/admin/observatories")
        assert response is not None and response.status == 403
        await expect(page.get_by_role("alert")).to_contain_text("this page is for admins")

        await page.get_by_role("button", name="Log out").click()
        await log_in(page, running.url, running.demo["admin_token"], "/admin/observatories")
        table = page.locator("main table tbody")
        await expect(table).to_contain_text("Demo_…")
        assert running.demo["token"] not in await page.content()
        await page.get_by_label("Name", exact=True).fill("Test 1 m")
        await page.get_by_label("Longitude [° east]").fill("20.5")
        await page.get_by_label("Latitude [°]").fill("-32.4")
        await page.get_by_label("Hashtag prefix").fill("Test1m")
        await page.get_by_role("button", name="Create").click()
        token = await page.get_by_label("New hashtag").input_value()
        assert re.fullmatch(r"Test1m_[0-9a-f]{32}", token)
        await expect(table).to_contain_text("Test 1 m")
        await page.goto(f"{running.url}/admin/observatories")
        assert token not in await page.content()  # shown once
        json_params = {"format": "json", "hashtag": running.demo["token"]}
        async with running.http.get(f"{running.url}/observatories", params=json_params) as answer:
            assert "Test 1 m" in [o["name"] for o in await answer.json()]


async def test_api_docs_show_the_operations(page, mongo_url, amqp_url, unique_name, tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        await page.goto(f"{running.url}/api/docs")
        operations = page.locator("#swagger-ui .opblock")
        await expect(operations.first).to_be_visible(timeout=30_000)
        assert await operations.count() > 20
        await expect(page.locator("#swagger-ui").get_by_role("link", name="/cgi/upload", exact=True)).to_be_visible()
        await page.screenshot(path=str(tmp_path / "api_docs.png"))


async def test_cgi_newevent_html_answer_escapes_the_ivorn(mongo_url, amqp_url, unique_name, tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        async with running.http.post(f"{running.url}/cgi/newevent", data={
                "EventID": f"ivo://test/{XSS}", "ra": "12.5", "dec": "-3.25", "hashtag": running.demo["token"],
                "outputFormat": "html"}) as response:
            body = await response.text()
        assert response.status == 200
        assert XSS not in body and "ivo://test/&lt;script&gt;alert(1)&lt;/script&gt;" in body
