"""Malformed input answers 4xx with a sentence, never 5xx: an oversize form, a broken multipart part header,
integers beyond 64 bits, JSON nested thousands deep."""
from __future__ import annotations

import io

import pytest

from tests.support.flows import demo_system

pytestmark = pytest.mark.integration


async def raw_post(url: str, path: str, body: bytes, content_type: str, token: str) -> tuple[int, str]:
    import aiohttp

    headers = {"Content-Type": content_type, "Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}{path}", data=io.BytesIO(body), headers=headers) as response:
            return response.status, await response.text()


async def test_malformed_requests_get_a_4xx_with_the_reason(mongo_url, amqp_url, unique_name, tmp_path, monkeypatch):
    monkeypatch.setenv("CPCS_MAX_UPLOAD_MB", "1")
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        url, token = running.url, running.demo["token"]
        boundary = "b0undary"
        big = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"sexCat\"; filename=\"a.cat\"\r\n\r\n".encode()
               + b"1 2 3\n" * 400_000 + f"\r\n--{boundary}--\r\n".encode())
        cases = {
            "oversize form": ("/cgi/upload", big, f"multipart/form-data; boundary={boundary}"),
            "broken part header": ("/cgi/upload",
                                   f"--{boundary}\r\nContent-Disposition form-data\x00\r\n\r\nx\r\n"
                                   f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"),
            "huge followup id": ("/cgi/delpoint", f"followupid={'9' * 30}&hashtag={token}".encode(),
                                 "application/x-www-form-urlencoded"),
            "deep JSON": ("/api/v1/events", b"[" * 5000 + b"]" * 5000, "application/json"),
            "huge coordinate": ("/api/v1/events", b'{"ivorn": "ivo://x", "ra": 1' + b"0" * 400 + b', "dec": 1}',
                                "application/json"),
        }
        answers = {}
        for name, (path, body, content_type) in cases.items():
            status, text = await raw_post(url, path, body, content_type, token)
            answers[name] = (status, text[:120])
        assert all(400 <= s < 500 for s, _ in answers.values()), answers
        assert all(t.strip() for _, t in answers.values()), answers  # each says why
        assert "limit of 1 MB" in answers["oversize form"][1] and answers["oversize form"][0] == 413
        assert "could not be read" in answers["broken part header"][1]
        assert "too large" in answers["huge followup id"][1] and "nested too deeply" in answers["deep JSON"][1]
        for path, params in (("/api/v1/events", {"offset": "9" * 30, "hashtag": token}),
                             ("/get_alert_lc_data", {"alert_id": "9" * 30, "hashtag": token}),
                             ("/get_alert_lc", {"alert_id": "9" * 30}), ("/event/" + "9" * 30, {}),
                             ("/observatories/" + "9" * 30, {}), ("/list_of_alerts", {"page": "9" * 30})):
            async with running.http.get(f"{url}{path}", params=params) as response:
                assert 400 <= response.status < 500, (path, response.status, await response.text())
