"""The event page: the interactive light curve (Plotly, drawn by static/event.js from the JSON light
curve), the table of points with their plots, original files and delete, the downloads, and the live
stream that redraws an open page when a point joins or leaves.

Everything about the light curve comes from the light-curve service's HTTP API
(``lightcurve_client``); the observations (original files, deleting) are ingest's own.
"""
from __future__ import annotations

import gzip
import hashlib
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import quote, urlencode

import aiohttp_jinja2
from aiohttp import web

from services.ingest.answers import http_status
from services.ingest.deps import DEPS
from services.ingest.errors import IngestError, InvalidInput, NotFound
from services.ingest.usecases.access import authenticate
from services.ingest.usecases.observations import delete_observation, find_observation
from services.ingest.web import live
from services.ingest.web.lightcurve_client import LightcurveClient
from services.ingest.web.session import User, csrf_protected, current_user, login_required
from shared.bands import BAND_COLOURS, band_colour

routes = web.RouteTableDef()
PAGE_SIZE = 100

#: The downloads of the page: (format, label, what it is).
DOWNLOADS = (
    ("csv", "CSV", "comma-separated, units and descriptions in commented header lines, UTC beside MJD"),
    ("ecsv", "ECSV", "astropy's enhanced CSV: every column's unit and description"),
    ("votable", "VOTable", "IVOA VOTable 1.4 (TOPCAT, Aladin): unit and description on every column"),
    ("json", "JSON", "the JSON rows of the REST API"),
    ("cpcs", "CPCS JSON", "the original column arrays of /get_alert_lc_data (follow-up points only)"),
    ("bhtom", "BHTOM", "MJD;Magnitude;Error;Facility;Filter;Observer (detections only)"),
)


@dataclass(frozen=True)
class Page:
    """One page of the table: the rows newest first."""

    rows: list[dict]
    number: int
    count: int
    total: int

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.count


def may_delete(user: User | None, point: dict) -> bool:
    """The observatory that uploaded a follow-up point, or an admin, may delete it."""
    if user is None or point.get("kind") != "followup":
        return False
    return user.is_admin or (user.observatory_id is not None and user.observatory_id == point.get("observatory_id"))


def page_number(request: web.Request) -> int:
    raw = request.query.get("page", "1")
    if not raw.isdigit():
        raise InvalidInput(f"page must be a positive whole number, got {raw!r}")
    return int(raw)


def error_page(request: web.Request, exc: IngestError) -> web.Response:
    response = aiohttp_jinja2.render_template("event_error.html", request, {"reason": str(exc)})
    response.set_status(http_status(exc))
    return response


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


async def _curve_page(request: web.Request, key: str | int) -> tuple[dict, Page]:
    """The light curve with the table's page of points (newest first) the URL asks for."""
    client, number = LightcurveClient.of(request), page_number(request)
    curve = await client.newest(key, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    count = max(1, math.ceil(curve["total"] / PAGE_SIZE))
    if number > count:  # past the end (points were deleted): the last page
        number = count
        curve = await client.newest(key, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    return curve, Page(curve["points"], number, count, curve["total"])


async def _context(request: web.Request, curve: dict, page: Page) -> dict:
    user = await current_user(request)
    ivorn = curve["ivorn"]
    base = f"/api/v1/events/{curve['id']}/lightcurve"
    colours = {**BAND_COLOURS, **curve.get("bands", {})}
    return {
        "curve": curve, "event": curve["event"], "ivorn": ivorn, "alert_id": curve["id"], "page": page,
        "may_delete": lambda point: may_delete(user, point),
        "downloads": [(f"{base}?{urlencode({'format': fmt, 'download': 1})}", label, what)
                      for fmt, label, what in DOWNLOADS],
        "json_url": f"/event/{curve['id']}/plot-data",
        "live_url": f"/event/{curve['id']}/live", "points_url": f"/event/{curve['id']}/points",
        "upload_url": f"/uploader?{urlencode({'event': ivorn})}",
        "colours": colours, "colour_of": lambda band: colours.get(str(band)) or band_colour(str(band)),
        "deleted": request.query.get("deleted", ""),
        "downloads_need_login": user is None and not request.app[DEPS].settings.public_data,
        "n_followup": curve["counts"]["followup"], "n_alert": curve["counts"]["alert"],
    }


async def _page(request: web.Request, key: str | int) -> web.Response:
    try:
        context = await _context(request, *await _curve_page(request, key))
    except IngestError as exc:
        return error_page(request, exc)
    return aiohttp_jinja2.render_template("event.html", request, context)


@routes.get("/event/{alert_id}")
async def event_page(request: web.Request) -> web.StreamResponse:
    return await _page(request, request.match_info["alert_id"])


@routes.get("/get_alert_lc")
async def get_alert_lc(request: web.Request) -> web.StreamResponse:
    """The original light-curve page's address (``alert_name=`` or ``alert_id=``) shows the event page."""
    alert_id, name = request.query.get("alert_id", "").strip(), request.query.get("alert_name", "").strip()
    if alert_id and not alert_id.isdigit():
        return error_page(request, InvalidInput(f"alert_id must be an integer, got {alert_id!r}"))
    if not (alert_id or name):
        return error_page(request, InvalidInput("give alert_name=ivo://... or alert_id=N"))
    return await _page(request, alert_id or name)


@routes.get("/event/{alert_id}/points")
async def points_table(request: web.Request) -> web.StreamResponse:
    """The table of points alone (the live page swaps it in after a change)."""
    try:
        context = await _context(request, *await _curve_page(request, request.match_info["alert_id"]))
    except IngestError as exc:
        return error_page(request, exc)
    return aiohttp_jinja2.render_template("event_points.html", request, context)


#: What the plot of the event page draws of each point (and its hover shows): no more, since anyone may
#: load the page, and the data itself is for signed-in readers (``services.ingest.read_policy``).
PLOT_FIELDS = ("id", "kind", "mjd", "mag", "mag_err", "calib_err", "total_err", "is_limit", "filter", "survey",
               "observatory", "mode")


def plot_data(curve: dict) -> dict:
    """The light curve as the page's plot needs it: the drawn fields of each point, the bands' colours."""
    return {"id": curve["id"], "ivorn": curve["ivorn"], "bands": curve.get("bands", {}),
            "points": [{k: p.get(k) for k in PLOT_FIELDS} for p in curve["points"]]}


@routes.get("/event/{alert_id}/plot-data")
async def plot_points(request: web.Request) -> web.StreamResponse:
    """The plot's points of the event page (public, as the page and its table are)."""
    try:
        curve = await LightcurveClient.of(request).lightcurve(request.match_info["alert_id"])
    except IngestError as exc:
        return error_page(request, exc)
    return web.json_response(plot_data(curve), headers={"Cache-Control": "no-store"})


@routes.get("/event/{alert_id}/live")
async def live_stream(request: web.Request) -> web.StreamResponse:
    key = request.match_info["alert_id"]
    store = request.app[DEPS].store
    event = await store.find_event_by_id(int(key)) if key.isdigit() else await store.find_event(key)
    if event is None:
        return error_page(request, NotFound(f"there is no event {key}"))
    return await live.stream(request, event["_id"])


async def _point(request: web.Request) -> tuple[dict, dict]:
    """The event's light curve and the follow-up point of the URL (NotFound when it is not on it)."""
    curve = await LightcurveClient.of(request).lightcurve(request.match_info["alert_id"])
    raw = request.match_info["followup_id"]
    point = next((p for p in curve["points"] if p["kind"] == "followup" and str(p["id"]) == raw), None)
    if point is None:
        raise NotFound(f"there is no point {raw} on the light curve of {curve['ivorn']}")
    return curve, point


@routes.get("/event/{alert_id}/points/{followup_id}/delete")
@login_required
async def confirm_delete(request: web.Request) -> web.StreamResponse:
    try:
        curve, point = await _point(request)
    except IngestError as exc:
        return error_page(request, exc)
    user = await current_user(request)
    return aiohttp_jinja2.render_template("event_delete.html", request, {
        "curve": curve, "point": point, "allowed": may_delete(user, point), "event_url": f"/event/{curve['id']}"})


@routes.post("/event/{alert_id}/points/{followup_id}/delete")
@login_required
@csrf_protected
async def delete_point(request: web.Request) -> web.StreamResponse:
    deps = request.app[DEPS]
    user = await current_user(request)
    try:
        curve, point = await _point(request)
        record = await authenticate(deps.store, user.token if user else "", unknown="your login is no longer valid")
        await delete_observation(deps.store, deps.publish, record, followup_id=int(point["id"]))
    except IngestError as exc:
        return error_page(request, exc)
    return see_other(f"/event/{curve['id']}?{urlencode({'deleted': point['id']})}")


@routes.get("/observations/{observation_id}/upload")
@login_required
async def original_upload(request: web.Request) -> web.StreamResponse:
    """The bytes an observatory uploaded for an observation (the original's "D" link), to logged-in users."""
    store = request.app[DEPS].store
    try:
        observation = await find_observation(store, request.match_info["observation_id"])
        data = await store.get_bytes(observation["file_id"])
        if data is None:
            raise NotFound(f"the uploaded file of {observation['_id']} is no longer stored")
    except IngestError as exc:
        return error_page(request, exc)
    name = Path(str(observation.get("filename") or f"{observation['_id']}.dat")).name
    return web.Response(body=data, content_type="application/octet-stream", headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})


@cache
def _plotly() -> tuple[bytes, bytes, str]:
    """The plotly package's own plotly.min.js (no CDN), gzipped once, and its ETag."""
    import plotly

    data = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
    return data, gzip.compress(data, 6), f'"{hashlib.sha1(data).hexdigest()[:16]}"'


@routes.get("/static/plotly.min.js")
async def plotly_js(request: web.Request) -> web.StreamResponse:
    data, packed, etag = _plotly()
    headers = {"Cache-Control": "public, max-age=86400", "ETag": etag, "Vary": "Accept-Encoding"}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        return web.Response(body=packed, content_type="application/javascript",
                            headers={**headers, "Content-Encoding": "gzip"})
    return web.Response(body=data, content_type="application/javascript", headers=headers)


def setup(app: web.Application) -> None:
    live.setup(app)
    app.add_routes(routes)
