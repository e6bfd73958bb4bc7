"""Read paths owned by the lightcurve service, forwarded so observers need one URL."""
from __future__ import annotations

import aiohttp
from aiohttp import web

from services.ingest.deps import DEPS
from services.ingest.errors import IngestError, Unavailable
from services.ingest.http_render import not_forwarded, plain_refusal, problem
from services.ingest.read_policy import require_data_reader

SESSION = web.AppKey("lightcurve_session", aiohttp.ClientSession)
#: Upstream headers a forwarded answer keeps (a download's file name, the CPCS lists' next page).
PASSED_HEADERS = ("Content-Disposition", "Link", "Retry-After")
#: /get_alert_lc is the event page (ingest's own page, reading the light curve through the API).
FORWARDED = ("/get_alert_lc_data", "/list_of_alerts", "/list_of_followups",
             "/api/v1/lists/alerts", "/api/v1/lists/followups", "/api/v1/observatories/{observatory_id}/points",
             "/api/v1/observatories/{observatory_id}/zeropoints")


#: The forwarded paths anyone may read (``read_policy``): the calibration plots.
PUBLIC_PREFIXES = ("/plots/",)


async def forward(request: web.Request) -> web.Response:
    """The light-curve service's answer, for a reader the read policy lets through (401 otherwise: REST
    ``{"error", "status"}`` under ``/api/``, the CPCS paths' one line of text elsewhere)."""
    if not request.path.startswith(PUBLIC_PREFIXES):
        try:
            await require_data_reader(request)
        except IngestError as exc:
            return problem(exc) if request.path.startswith("/api/") else plain_refusal(exc)
    base = request.app[DEPS].settings.lightcurve_url
    try:
        async with request.app[SESSION].get(f"{base}{request.rel_url}") as upstream:
            body = await upstream.read()
            headers = {k: upstream.headers[k] for k in PASSED_HEADERS if k in upstream.headers}
            return web.Response(body=body, status=upstream.status, headers=headers,
                                content_type=upstream.content_type, charset=upstream.charset)
    except aiohttp.ClientError as exc:
        return not_forwarded(Unavailable(f"the light-curve service is not answering: {exc}"))


def add_routes(app: web.Application) -> None:
    for path in FORWARDED:
        app.router.add_get(path, forward)
    app.router.add_get("/api/v1/events/{event_id:.+}/lightcurve", forward)
    app.router.add_get("/plots/{name}", forward)


async def session_ctx(app: web.Application):
    app[SESSION] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    yield
    await app[SESSION].close()
