"""Logging in and out with the hashtag, the session cookie's flags, and the CSRF token of the forms."""
from __future__ import annotations

import aiohttp
import pytest

from tests.browser.conftest import log_in
from tests.support.flows import demo_system

pytestmark = [pytest.mark.integration, pytest.mark.browser]


async def test_login_session_and_logout(page, mongo_url, amqp_url, unique_name, tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        await page.goto(f"{running.url}/")
        assert await page.get_by_role("link", name="Log in").is_visible()
        await log_in(page, running.url, running.demo["token"])
        who = page.locator("header .who")
        assert "Logged in as Demo" in await who.inner_text()
        assert running.demo["token"] not in await page.content()
        cookie = next(c for c in await page.context.cookies() if c["name"] == "cpcs_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert running.demo["token"] not in cookie["value"]  # encrypted, not the hashtag in clear
        await page.get_by_role("button", name="Log out").click()
        await page.wait_for_load_state()
        assert await page.get_by_role("link", name="Log in").is_visible()


async def test_wrong_hashtag_is_refused_with_the_reason(page, mongo_url, amqp_url, unique_name, tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        await log_in(page, running.url, "Nobody_0123456789abcdef0123456789abcdef")
        assert "this hashtag is not known" in await page.get_by_role("alert").inner_text()
        assert await page.get_by_role("link", name="Log in").is_visible()


async def test_a_form_posted_without_its_csrf_token_is_refused(mongo_url, amqp_url, unique_name, tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{running.url}/login") as response:
                assert response.status == 200
            async with http.post(f"{running.url}/login", data={"hashtag": running.demo["token"]},
                                 allow_redirects=False) as response:
                assert response.status == 403
                assert "security token" in await response.text()
