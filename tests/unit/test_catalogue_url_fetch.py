"""An AMQP upload's ``catalogue_url`` cannot make ingest a way into its own network: the token is checked
before anything is fetched, loopback and private addresses are refused (unless the operator allows them)
without a request being made, redirects are checked again and capped, the size and the time are bounded,
and a failure says one sentence whatever the port or the server answered. Real HTTP servers on loopback
stand for the internal services."""
from __future__ import annotations

import asyncio
import ipaddress

import pytest
from aiohttp import web

from services.ingest.amqp_intake import NOT_READABLE, AmqpIntake
from services.ingest.deps import IngestDeps
from services.ingest.errors import InvalidInput
from services.ingest.fetch import UNREACHABLE, forbidden_address
from services.ingest.results import ResultWaiters
from services.ingest.settings import IngestSettings
from tests.support.servers import free_port
from tests.unit.test_amqp_intake_handlers import FIELDS, Delivery, FakeBroker, FakeUploads

SECRET = b"internal-admin-console-v7 SECRET"
TOKENS = {"secret-token": {"observatory_id": 3, "allow_upload": True},
          "reader-token": {"observatory_id": None, "allow_upload": False}}


class FakeTokens:
    """The ``FindToken`` port: the records of ``TOKENS``, and how often it was asked."""

    def __init__(self):
        self.asked = 0

    async def find_token(self, token):
        self.asked += 1
        return TOKENS.get(token)


class Internal:
    """A loopback HTTP server standing for an internal service: every request it saw, by path."""

    def __init__(self):
        self.seen: list[str] = []
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.body = b"catalogue bytes from the web"
        self.hang = asyncio.Event()

    async def start(self, routes) -> Internal:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._record(routes))
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    def _record(self, routes):
        async def handle(request):
            self.seen.append(request.path)
            return await routes(self, request)
        return handle

    def url(self, path="/field.cat", host="127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def close(self):
        self.hang.set()
        await self.runner.cleanup()


async def answer_file(server, request):
    if request.path == "/secret":
        return web.Response(status=404, body=SECRET)
    if request.path == "/big":
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(40):  # 2.6 MB without a Content-Length: counted as it comes
            await response.write(b"x" * 65536)
        return response
    if request.path == "/to":
        raise web.HTTPFound(request.query["u"])
    if request.path == "/loop":
        raise web.HTTPFound("/loop")
    if request.path == "/slow":
        await server.hang.wait()
    return web.Response(body=server.body)


@pytest.fixture
async def internal():
    servers: list[Internal] = []

    async def start(routes=answer_file) -> Internal:
        servers.append(await Internal().start(routes))
        return servers[-1]

    yield start
    for server in servers:
        await server.close()


class Intake:
    def __init__(self, **settings):
        self.uploads, self.broker, self.tokens = FakeUploads(), FakeBroker(), FakeTokens()
        deps = IngestDeps(settings=IngestSettings(upload_wait_s=0.0, max_upload_mb=1.0, **settings), store=None,
                          uploads=self.uploads, waiters=ResultWaiters(), publish=None)
        self.intake = AmqpIntake(deps, self.broker, tokens=self.tokens)

    async def submit(self, url: str, **fields) -> dict:
        headers = {k: v for k, v in FIELDS.items() if k != "comment"} | {"catalogue_url": url} | fields
        await self.intake.on_submission(Delivery(body=b"", headers=headers))
        _, answer, _ = await self.broker.next_reply()
        return answer


async def test_a_loopback_url_is_refused_without_the_server_seeing_a_request(internal):
    server = await internal()
    intake = Intake()
    for url in (server.url(), server.url(host="localhost"), server.url(host="[::ffff:127.0.0.1]")):
        answer = await intake.submit(url)
        assert answer["status"] == 422 and "loopback address" in answer["error"], answer
    assert server.seen == [] and intake.uploads.requests == []


async def test_the_token_is_checked_before_anything_is_fetched(internal):
    server = await internal()
    intake = Intake(fetch_allow_private=True)
    assert await intake.submit(server.url(), hashtag="guessed") == {
        "error": "unknown or missing hashtag: uploads need a valid token", "status": 401}
    assert (await intake.submit(server.url(), hashtag="reader-token"))["status"] == 403
    assert server.seen == [] and intake.uploads.requests == []


async def test_an_operator_may_allow_a_private_host_and_its_file_is_fetched(internal):
    server = await internal()
    for settings in ({"fetch_allow_hosts": "example.org, 127.0.0.1"}, {"fetch_allow_private": True}):
        intake = Intake(**settings)
        answer = await intake.submit(server.url())
        assert answer["status"] == "processing", answer
        [(req, _)] = intake.uploads.requests
        assert req.data == b"catalogue bytes from the web" and req.token == "secret-token"
    assert server.seen == ["/field.cat", "/field.cat"]


async def test_a_redirect_to_a_host_not_allowed_is_refused_before_it_is_followed(internal):
    allowed, other = await internal(), await internal()
    intake = Intake(fetch_allow_hosts="127.0.0.1")
    answer = await intake.submit(allowed.url(f"/to?u={other.url(host='localhost')}"))
    assert answer["status"] == 422 and "loopback address (localhost)" in answer["error"], answer
    assert len(allowed.seen) == 1 and other.seen == []


async def test_redirects_are_capped(internal):
    server = await internal()
    intake = Intake(fetch_allow_hosts="127.0.0.1", fetch_max_redirects=2)
    answer = await intake.submit(server.url("/loop"))
    assert answer == {"error": "catalogue_url redirects more than 2 times; give the address of the file itself",
                      "status": 400}
    assert server.seen == ["/loop"] * 3


async def test_what_the_server_said_and_whether_the_port_is_open_look_the_same(internal):
    server = await internal()
    intake = Intake(fetch_allow_private=True)
    closed = f"http://127.0.0.1:{free_port()}/field.cat"
    answers = [await intake.submit(url) for url in (server.url("/secret"), closed, "http://no-such-host.invalid/x")]
    assert answers == [{"error": UNREACHABLE, "status": 400}] * 3
    assert all(b"SECRET" not in str(a).encode() and "404" not in a["error"] for a in answers)


async def test_a_fetched_file_that_cannot_be_read_is_refused_without_quoting_it(internal):
    server = await internal()
    server.body = SECRET
    intake = Intake(fetch_allow_private=True)
    intake.uploads.refusal = InvalidInput(f"line 1 ({SECRET.decode()!r}) has no columns")
    assert await intake.submit(server.url()) == {"error": NOT_READABLE, "status": 400}


async def test_the_size_and_the_time_are_bounded(internal):
    server = await internal()
    intake = Intake(fetch_allow_private=True, fetch_timeout_s=0.5)
    answer = await intake.submit(server.url("/big"))
    assert answer["status"] == 413 and "larger than the limit of 1 MB" in answer["error"]
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await intake.submit(server.url("/slow")) == {"error": UNREACHABLE, "status": 400}
    assert loop.time() - started < 5.0


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x.cat", "gopher://127.0.0.1:6379/_x",
                                 "http:///nohost", "not a url at all"])
async def test_only_http_and_https_are_fetched(url):
    answer = await Intake(fetch_allow_private=True).submit(url)
    assert answer == {"error": "catalogue_url must be an http:// or https:// address", "status": 400}


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"), ("192.168.0.1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("224.0.0.1", "multicast"),
    ("0.0.0.0", "unspecified"), ("::ffff:10.0.0.1", "private"), ("fd00::1", "private"), ("240.0.0.1", "reserved"),
    ("100.64.0.1", "private"),
])
def test_addresses_that_are_not_public_are_named(address, kind):
    assert forbidden_address(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"])
def test_public_addresses_pass(address):
    assert forbidden_address(ipaddress.ip_address(address)) is None
