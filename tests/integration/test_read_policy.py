"""The front door's read policy, CSRF rule and security headers, on the real services: pages and plots
are public, the data needs a token or a signed-in session (unless CPCS_PUBLIC_DATA=true), an
observation's details are its observatory's and the admins', a POST whose hashtag comes only from a
cookie is refused, and every answer carries the security headers."""
from __future__ import annotations

import json
import re
from urllib.parse import quote

import aiohttp
import pytest

from services.ingest.web.headers import SECURITY_HEADERS
from tests.support.flows import demo_system, post_upload

pytestmark = pytest.mark.integration
DATA_PATHS = ("/api/v1/events/{event}/lightcurve", "/api/v1/events/{event}/lightcurve?format=csv",
              "/api/v1/events/{event}/lightcurve?format=votable&download=1", "/get_alert_lc_data?alert_name={event}",
              "/list_of_alerts?format=json", "/list_of_followups?format=json", "/api/v1/lists/alerts",
              "/api/v1/lists/followups", "/api/v1/observatories/1/points", "/api/v1/observatories/1/zeropoints",
              "/api/v1/events", "/api/v1/observatories", "/observatories?format=json")
PUBLIC_PAGES = ("/", "/list_of_alerts", "/list_of_followups", "/observatories", "/event/1", "/event/1/plot-data",
                "/get_alert_lc?alert_id=1", "/manual", "/login")


async def status_of(http: aiohttp.ClientSession, url: str, **kwargs) -> tuple[int, str, dict]:
    async with http.get(url, **kwargs) as response:
        return response.status, await response.text(), dict(response.headers)


async def sign_in(running, token: str) -> aiohttp.ClientSession:
    """A browser-like session signed in through the login form (with its CSRF token)."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.get(f"{running.url}/login") as response:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', await response.text()).group(1)
    async with http.post(f"{running.url}/login", data={"csrf_token": csrf, "hashtag": token, "next": "/"},
                         allow_redirects=False) as response:
        assert response.status == 303, await response.text()
    return http


@pytest.fixture
async def running(mongo_url, amqp_url, unique_name, tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as system:
        yield system


async def test_the_data_needs_a_token_or_a_login_and_the_pages_and_plots_do_not(running):
    event = quote(running.demo["event"], safe="")
    token = running.demo["token"]
    for path in DATA_PATHS:
        url = f"{running.url}{path.format(event=event)}"
        status, body, _ = await status_of(running.http, url)
        assert status == 401, (path, status, body[:200])
        assert "hashtag" in body and "sign in" in body, (path, body)
        if path.startswith("/api/"):
            assert json.loads(body)["status"] == 401
        for kwargs in ({"headers": {"Authorization": f"Bearer {token}"}},
                       {"params": {"hashtag": token}}, {"cookies": {"hashtag": token}}):
            status, body, _ = await status_of(running.http, url, **kwargs)
            assert status == 200, (path, kwargs, status, body[:200])
        status, body, _ = await status_of(running.http, url, params={"hashtag": "Nobody_" + "0" * 32})
        assert status == 401 and "unknown hashtag" in body, (path, body)
    async with await sign_in(running, token) as browser:
        for path in DATA_PATHS:
            status, body, _ = await status_of(browser, f"{running.url}{path.format(event=event)}")
            assert status == 200, (path, status, body[:200])
    for path in PUBLIC_PAGES:
        status, body, _ = await status_of(running.http, f"{running.url}{path}")
        assert status == 200, (path, status, body[:200])
    status, body, _ = await status_of(running.http, f"{running.url}/event/1")
    assert 'id="downloads-login"' in body  # the page says why the downloads ask for a login


async def test_the_plot_data_of_the_public_page_has_only_what_the_plot_draws(running):
    status, body = await post_upload(running, running.demo, running.catalogue, dryRun=0, comment="secret note")
    assert status == 200, body
    followup_id = json.loads(body)["followup_id"]
    await running.probe.wait_for("lightcurve.updated.v1", lambda m: m.followup_id == followup_id)
    status, body, _ = await status_of(running.http, f"{running.url}/event/1/plot-data")
    assert status == 200
    (point,) = json.loads(body)["points"]
    assert point["id"] == followup_id and point["mag"] is not None and point["kind"] == "followup"
    assert "observation_id" not in point and "secret note" not in body


async def test_with_public_data_anyone_may_read_the_data(mongo_url, amqp_url, unique_name, tmp_path, monkeypatch):
    monkeypatch.setenv("CPCS_PUBLIC_DATA", "true")
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as system:
        event = quote(system.demo["event"], safe="")
        for path in DATA_PATHS:
            status, body, _ = await status_of(system.http, f"{system.url}{path.format(event=event)}")
            assert status == 200, (path, status, body[:200])
        status, body, _ = await status_of(system.http, f"{system.url}/event/1")
        assert 'id="downloads-login"' not in body


async def test_an_observation_is_shown_to_its_observatory_and_admins_only(running):
    status, body = await post_upload(running, running.demo, running.catalogue, dryRun=0, comment="seeing 3 arcsec")
    assert status == 200, body
    followup_id = json.loads(body)["followup_id"]
    async with running.http.post(f"{running.url}/cgi/newuser", data={
            "obsName": "Other Observatory", "lon": "10", "lat": "45", "prefix": "Other",
            "hashtag": running.demo["admin_token"]}) as response:
        assert response.status == 200
        other = (await response.text()).rsplit(": ", 1)[1].strip()
    url = f"{running.url}/api/v1/observations/{followup_id}"
    for token in (running.demo["token"], running.demo["admin_token"]):
        status, body, _ = await status_of(running.http, url, headers={"Authorization": f"Bearer {token}"})
        assert status == 200, body
        shown = json.loads(body)
        assert shown["comment"] == "seeing 3 arcsec" and len(shown["sha256"]) == 64
    status, body, _ = await status_of(running.http, url, headers={"Authorization": f"Bearer {other}"})
    unknown = await status_of(running.http, f"{running.url}/api/v1/observations/999999",
                              headers={"Authorization": f"Bearer {other}"})
    assert status == 404 and "sha256" not in body and "seeing" not in body
    assert json.loads(body)["error"] == json.loads(unknown[1])["error"].replace("999999", str(followup_id))
    status, body, _ = await status_of(running.http, url)
    assert status == 401 and "hashtag" in body


async def test_a_post_with_the_hashtag_only_in_a_cookie_is_refused(running):
    token = running.demo["token"]
    cookie = {"hashtag": token}
    posts = (("/cgi/newevent", {"EventID": "ivo://csrf-test", "ra": "10", "dec": "20"}),
             ("/cgi/delpoint", {"followupid": "1"}))
    for path, fields in posts:
        async with running.http.post(f"{running.url}{path}", data=fields, cookies=cookie) as response:
            body = await response.text()
            assert response.status == 403, (path, body)
            assert "only from a cookie" in body, body
    async with running.http.post(f"{running.url}/api/v1/events", json={"ivorn": "ivo://csrf-x", "ra": 1, "dec": 1},
                                 cookies=cookie) as response:
        assert response.status == 403 and "only from a cookie" in (await response.json())["error"]
    async with running.http.delete(f"{running.url}/api/v1/observations/1", cookies=cookie) as response:
        assert response.status == 403
    async with running.http.post(f"{running.url}/cgi/newevent", cookies=cookie, data={
            "EventID": "ivo://csrf-test", "ra": "10", "dec": "20", "hashtag": token}) as response:
        assert response.status == 200, await response.text()  # the CPCS form with its hashtag is unchanged


async def test_every_answer_carries_the_security_headers(running):
    for path in ("/", "/event/1", "/static/style.css", "/static/plotly.min.js", "/api/v1/events", "/no/such/page",
                 "/api/v1/openapi.yaml", "/healthz", "/list_of_alerts?format=json"):
        _, _, headers = await status_of(running.http, f"{running.url}{path}")
        for name, value in SECURITY_HEADERS.items():
            assert headers.get(name) == value, (path, name, headers.get(name))
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp


async def test_the_cpcs_event_list_links_its_next_page(running):
    for i in range(3):
        async with running.http.post(f"{running.url}/api/v1/events", json={"ivorn": f"ivo://page-{i}", "ra": i,
                                                                            "dec": 1},
                                     headers={"Authorization": f"Bearer {running.demo['token']}"}) as response:
            assert response.status == 201
    await running.probe.wait_count("lightcurve.event.stored.v1", lambda m: m.event_ivorn.startswith("ivo://page-"), 3)
    params = {"format": "json", "num": "3", "hashtag": running.demo["token"]}  # the demo event and these 3
    async with running.http.get(f"{running.url}/list_of_alerts", params=params) as response:
        first = await response.json()
        link = response.headers["Link"]
    assert len(first) == 3 and 'rel="next"' in link and "offset=3" in link and "hashtag" not in link
    next_url = link.split(">", 1)[0].lstrip("<")
    async with running.http.get(f"{running.url}{next_url}", params={"hashtag": running.demo["token"]}) as response:
        rest = await response.json()
        assert "Link" not in response.headers
    assert len(rest) == 1 and {r["id"] for r in rest}.isdisjoint({r["id"] for r in first})


async def test_an_event_url_that_is_no_web_address_is_shown_as_text_not_linked(running):
    async with running.http.post(f"{running.url}/api/v1/events", json={
            "ivorn": "ivo://url-test", "ra": 5, "dec": 5, "url": "javascript:alert(document.cookie)"},
            headers={"Authorization": f"Bearer {running.demo['token']}"}) as response:
        assert response.status == 201, await response.text()
        alert_id = (await response.json())["id"]
    await running.probe.wait_for("lightcurve.event.stored.v1", lambda m: m.event_ivorn == "ivo://url-test")
    status, body, _ = await status_of(running.http, f"{running.url}/event/{alert_id}")
    assert status == 200 and "javascript:alert(document.cookie)" in body and 'href="javascript:' not in body
