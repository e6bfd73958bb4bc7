"""What the fuzz stage found, each as a regression test on the in-process services: unreadable requests are a
4xx with a sentence (never a 500), and the stack answers the next request as before."""

from __future__ import annotations

import io

import pytest

from tests.fuzz.cases import multipart, upload_fields
from tests.support.flows import demo_system

pytestmark = pytest.mark.integration

MP = "multipart/form-data; boundary=fuzzb0undary"


async def post(running, path: str, body: bytes, headers: dict) -> tuple[int, str, str]:
    import aiohttp

    # a connection of its own: an answer sent before the body was read ends the connection
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        async with http.post(
            f"{running.url}{path}", data=io.BytesIO(body), headers=headers, skip_auto_headers=["Content-Type"]
        ) as response:
            return response.status, response.content_type, await response.text()


async def test_what_the_fuzz_stage_found_is_a_4xx_with_the_reason(mongo_url, amqp_url, unique_name, tmp_path):
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        demo = running.demo
        admin = {"Authorization": f"Bearer {demo['admin_token']}"}
        form = multipart(
            upload_fields(type("C", (), {"event": demo["event"], "token": demo["token"]})()),
            {"sexCat": ("t.cat", running.catalogue[:2000])},
        )
        event = b'{"ivorn": "ivo://FoundByFuzz", "ra": 10.0, "dec": -20.0}'
        cases = {
            # a JSON body in a charset nobody knows: LookupError from request.json()
            "unknown JSON charset": (
                "/api/v1/events",
                event,
                admin | {"Content-Type": "application/json; charset=klingon"},
                400,
                "charset",
            ),
            # NaN is not JSON (Python's parser takes it)
            "NaN in JSON": (
                "/api/v1/events",
                event.replace(b"10.0", b"NaN"),
                admin | {"Content-Type": "application/json"},
                400,
                "NaN",
            ),
            "JSON not UTF-8": (
                "/api/v1/events",
                b'{"ivorn": "ivo://\xff"}',
                admin | {"Content-Type": "application/json"},
                400,
                "not valid",
            ),
            # a body that says it is gzip and is not: RequestPayloadError while reading
            "bad gzip body": (
                "/api/v1/events",
                b"not gzip at all",
                admin | {"Content-Type": "application/json", "Content-Encoding": "gzip"},
                400,
                "read",
            ),
            "bad gzip packet": (
                "/api/v1/voevents",
                b"not gzip",
                admin | {"Content-Type": "application/xml", "Content-Encoding": "gzip"},
                400,
                "read",
            ),
            # forms aiohttp cannot parse, on every kind of endpoint (the VOEvent form read request.post() itself)
            "voevent form without boundary": (
                "/api/v1/voevents",
                form,
                admin | {"Content-Type": "multipart/form-data"},
                400,
                "could not be read",
            ),
            "voevent form, wrong boundary": (
                "/api/v1/voevents",
                form,
                admin | {"Content-Type": MP.replace("fuzzb0", "x")},
                400,
                "boundary",
            ),
            "boundary over 70 chars": (
                "/cgi/upload",
                form,
                {"Content-Type": "multipart/form-data; boundary=" + "a" * 100},
                400,
                "boundary",
            ),
            "unknown transfer encoding": (
                "/cgi/upload",
                form.replace(b"Content-Type: application/octet-stream", b"Content-Transfer-Encoding: x-junk"),
                {"Content-Type": MP},
                400,
                "could not be read",
            ),
            "bad base64 part": (
                "/cgi/upload",
                form.replace(b"Content-Type: application/octet-stream", b"Content-Transfer-Encoding: base64") + b"=",
                {"Content-Type": MP},
                400,
                "could not be read",
            ),
            "form in unknown charset": (
                "/cgi/newevent",
                b"EventID=ivo://x&ra=1&dec=2",
                {"Content-Type": "application/x-www-form-urlencoded; charset=klingon"},
                400,
                "klingon",
            ),
            # a page's form: hmac.compare_digest refused a non-ASCII csrf token with TypeError
            "non-ASCII CSRF token": (
                "/logout",
                "csrf_token=\u00e9\u00e8".encode(),
                {"Content-Type": "application/x-www-form-urlencoded"},
                403,
                "security token",
            ),
        }
        answers = {}
        for name, (path, body, headers, _, _) in cases.items():
            answers[name] = await post(running, path, body, headers)
        wrong = {
            name: answers[name]
            for name, (_, _, _, status, words) in cases.items()
            if answers[name][0] != status or words.lower() not in answers[name][2].lower()
        }
        assert wrong == {}, wrong
        for name, (path, *_rest) in cases.items():  # the REST paths answer JSON problems, the others text or a page
            if path.startswith("/api/"):
                assert answers[name][1] == "application/json", (name, answers[name])
        status, _, _ = await post(running, "/api/v1/events", event, admin | {"Content-Type": "application/json"})
        assert status == 201
