"""Every main page works in Chromium under the Content-Security-Policy (``script-src 'self'``, no inline
script): no violation is reported, the event page's plot draws for an anonymous visitor, and the pages
a signed-in observer and an admin use (upload, admin) run their scripts too."""
from __future__ import annotations

import json
import re

import pytest
from playwright.async_api import expect

from tests.browser.conftest import log_in
from tests.support.flows import demo_system, post_upload

pytestmark = [pytest.mark.integration, pytest.mark.browser]
#: Records what the page's CSP refused, before any script of the page runs.
WATCH = ("window.__csp = []; document.addEventListener('securitypolicyviolation', "
         "(e) => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));")


async def violations(page, console: list[str]) -> list[str]:
    await page.wait_for_load_state("networkidle")
    return [*await page.evaluate("window.__csp"), *[m for m in console if "Content Security Policy" in m]]


async def test_the_main_pages_run_under_the_csp_without_a_violation(page, mongo_url, amqp_url, unique_name, tmp_path):
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    await page.add_init_script(WATCH)
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        status, body = await post_upload(running, running.demo, running.catalogue, dryRun=0)
        assert status == 200, body
        followup_id = json.loads(body)["followup_id"]
        await running.probe.wait_for("lightcurve.updated.v1", lambda m: m.followup_id == followup_id)
        anonymous = ["/", "/list_of_alerts", "/list_of_followups", "/observatories", "/observatories/1", "/manual",
                     "/api/docs", "/login", "/event/1"]
        for path in anonymous:
            response = await page.goto(f"{running.url}{path}")
            assert response.status == 200, path
            assert "script-src 'self'" in response.headers["content-security-policy"]
            if path == "/event/1":  # the anonymous visitor's plot draws (from the public plot data)
                await page.wait_for_function("document.getElementById('lightcurve').dataset.version === '1'")
                await expect(page.locator("#lightcurve .main-svg").first).to_be_visible()
            if path == "/api/docs":
                await expect(page.locator(".swagger-ui .info")).to_be_visible()
            assert await violations(page, console) == [], path
        await log_in(page, running.url, running.demo["admin_token"])
        for path in ("/uploader", "/newevent", "/delpoint", "/admin/observatories", "/event/1"):
            response = await page.goto(f"{running.url}{path}")
            assert response.status == 200, path
            assert await violations(page, console) == [], path
        # the upload form's script (moved out of the page) still fills the force-filter choices
        await page.goto(f"{running.url}/uploader")
        for event, said in (("ivo://no-such-event", "Pick a known event"),
                            (running.demo["event"], re.compile("choices at|no stars around"))):
            await page.locator("#event").fill(event)
            await page.locator("#event").dispatch_event("change")
            await expect(page.locator("#force-hint")).to_contain_text(said)
        assert await violations(page, console) == []
