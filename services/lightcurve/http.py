"""Lightcurve's HTTP read API: CPCS read endpoints, /api/v1 light curves, calibration plots."""
from __future__ import annotations

import asyncio
import html
import json
import re
from collections import OrderedDict
from functools import partial
from urllib.parse import unquote, urlencode

from aiohttp import web

from services.lightcurve.alerts import AlertPointCollection
from services.lightcurve.plots import OBSERVATION_ID, PlotRequests
from services.lightcurve.settings import LightcurveSettings
from services.lightcurve.store import FOLLOWUP_SORTS as FOLLOWUP_ORDERS
from services.lightcurve.store import LightcurveStore
from services.lightcurve.views import FORMATS, all_rows, bhtom_text, cpcs_columns, csv_text, ecsv_text, votable_bytes
from shared.bands import band_colour
from shared.contracts import PlotDeclinedV1
from shared.messaging import broker_outage_types

STORE = web.AppKey("store", LightcurveStore)
SETTINGS = web.AppKey("settings", LightcurveSettings)
ALERT_POINTS = web.AppKey("alert_points", AlertPointCollection)
PLOTS = web.AppKey("plots", PlotRequests)
routes = web.RouteTableDef()


async def find_event(store: LightcurveStore, *, name: str | None, alert_id: str | None) -> dict:
    if alert_id:
        if not alert_id.strip().isdigit():
            raise web.HTTPBadRequest(text=f"alert_id must be an integer, got {alert_id!r}\n")
        event = await store.event(alert_id=int(alert_id))
    elif name:
        event = await store.event(ivorn=name.strip())
    else:
        raise web.HTTPBadRequest(text="give alert_name=ivo://... or alert_id=N\n")
    if event is None:
        raise web.HTTPNotFound(text=f"there is no event {name or alert_id}\n")
    return event


@routes.get("/get_alert_lc_data")
async def get_alert_lc_data(request: web.Request) -> web.Response:
    store = request.app[STORE]
    event = await find_event(store, name=request.query.get("alert_name"), alert_id=request.query.get("alert_id"))
    return web.json_response(cpcs_columns(event["_id"], await store.points_of(event["_id"])))


@routes.get("/api/v1/events/{event_id:.+}/lightcurve")
async def lightcurve(request: web.Request) -> web.Response:
    """The light curve in one of ``FORMATS``; ``download=1`` makes it a file named after the event (and
    the CSV one for people: an ECSV header of units and descriptions in comment lines, UTC beside MJD);
    ``order=newest`` with ``offset`` and ``limit`` gives one page of the JSON rows, newest first."""
    fmt = request.query.get("format", "json").lower()
    if fmt not in FORMATS:
        raise web.HTTPBadRequest(text=f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}\n")
    newest = request.query.get("order") == "newest"
    offset, limit = _slice(request) if newest else (0, 0)
    store, key = request.app[STORE], unquote(request.match_info["event_id"])
    event = await find_event(store, name=None if key.isdigit() else key, alert_id=key if key.isdigit() else None)
    points, version = await store.points_and_version(event["_id"])
    alert_points = await request.app[ALERT_POINTS].of_event(event["_id"])
    cache = request.app[CURVES]
    state = None if version is None else (event["_id"], version, tuple((p["_id"], p.get("mag")) for p in alert_points))
    download = request.query.get("download") == "1"
    headers = {"Content-Disposition": f'attachment; filename="{file_stem(event)}{SUFFIX[fmt]}"'} if download else {}
    if fmt == "cpcs":
        return web.json_response(cpcs_columns(event["_id"], points), headers=headers)
    if fmt == "csv" and not download:
        return web.Response(text=csv_text(points, alert_points), content_type="text/csv")
    rows = cache.get(state, "rows", lambda: all_rows(points, alert_points))
    if fmt == "json" and newest:
        newest_rows = rows[::-1][offset:offset + limit]
        return web.Response(text=_dumps(_curve_json(event, newest_rows, rows) | {"offset": offset}),
                            content_type="application/json", headers=headers)
    if fmt == "json":
        body = cache.get(state, "json", lambda: _dumps(_curve_json(event, rows, rows)).encode())
        return web.Response(body=body, content_type="application/json", headers=headers)
    if fmt == "bhtom":
        return web.Response(text=bhtom_text(rows), content_type="text/plain", headers=headers)
    loop = asyncio.get_running_loop()
    if fmt == "votable":
        body = await loop.run_in_executor(None, partial(votable_bytes, rows, ivorn=event["_id"]))
        return web.Response(body=body, content_type="application/x-votable+xml", headers=headers)
    text = await loop.run_in_executor(None, partial(ecsv_text, rows, ivorn=event["_id"],
                                                    delimiter="," if fmt == "csv" else " "))
    return web.Response(text=text, content_type="text/csv" if fmt == "csv" else "text/x-ecsv", headers=headers)


def _curve_json(event: dict, rows: list[dict], every: list[dict]) -> dict:
    """The JSON light curve: ``rows`` (all of them, or one page), with the counts and the colour of each
    band of ``every`` point (``shared.bands``, the same on every page)."""
    followup = sum(1 for r in every if r["kind"] == "followup")
    return {"ivorn": event["_id"], "id": event["alert_id"], "points": rows, "event": event_summary(event),
            "total": len(every), "counts": {"followup": followup, "alert": len(every) - followup},
            "bands": {band: band_colour(band) for band in sorted({str(r["filter"]) for r in every})}}


def _slice(request: web.Request) -> tuple[int, int]:
    try:
        offset, limit = int(request.query.get("offset", 0)), int(request.query.get("limit", 100))
    except ValueError:
        raise web.HTTPBadRequest(text="offset and limit must be integers\n") from None
    if offset < 0 or not 1 <= limit <= 10000:
        raise web.HTTPBadRequest(text="offset must be 0 or more and limit between 1 and 10000\n")
    return offset, limit


class CurveCache:
    """What was made of the last few light curves (rows, JSON bodies), under the state they were made
    of: the event, its points' version and its alert points. A state of None is never cached."""

    def __init__(self, size: int = 16):
        self.size, self._made = size, OrderedDict()

    def get(self, state, what: str, make):
        if state is None:
            return make()
        key = (state, what)
        if key not in self._made:
            for old in [k for k in self._made if k[0][0] == state[0] and k[0] != state]:
                del self._made[old]  # an older version of this event's curve
            self._made[key] = make()
            while len(self._made) > self.size:
                self._made.popitem(last=False)
        self._made.move_to_end(key)
        return self._made[key]


CURVES = web.AppKey("curves", CurveCache)


#: The download's file name after the event's: ``<stem><suffix>``.
SUFFIX = {"json": ".json", "csv": ".csv", "ecsv": ".ecsv", "votable": ".vot", "cpcs": "_cpcs.json",
          "bhtom": "_bhtom.csv"}


def file_stem(event: dict) -> str:
    """A file name after the event: ``ivo://Gaia16aye`` -> ``Gaia16aye`` (only letters, digits, ``._-``)."""
    name = str(event.get("name") or event["_id"]).removeprefix("ivo://")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or f"event{event.get('alert_id', '')}"
    return stem[:80]


def event_summary(event: dict) -> dict:
    """What readers need to judge the curve: the event's names, position, and whether it is a target."""
    return {"name": event.get("name"), "aliases": list(event.get("aliases") or []), "ra": event.get("ra_deg"),
            "dec": event.get("dec_deg"), "error_radius_deg": event.get("error_radius_deg"),
            "target_usable": event.get("target_usable", True), "no_target_reason": event.get("no_target_reason"),
            "source": event.get("source", ""), "url": event.get("url", ""),
            "n_packets": event.get("n_packets", 0)}


@routes.get("/list_of_alerts")
async def list_of_alerts(request: web.Request) -> web.Response:
    store = request.app[STORE]
    offset, num = _paging(request)
    _, events = await store.list_events(q="", observed_only=request.query.get("observed_only") == "1", sort="date",
                                        ascending=False, offset=offset, limit=num)
    rows = [{"id": e["alert_id"], "ivorn": e["_id"], "published": e["published"].isoformat(),
             "ra": e["ra_deg"], "dec": e["dec_deg"], "nfollowup": e["nfollowup"]} for e in events]
    if request.query.get("format") == "json":
        return web.json_response(rows, headers=_next_link(request, offset, num, len(rows)))
    return _table("List of alerts", rows, link=lambda r: f"/get_alert_lc?alert_id={r['id']}")


@routes.get("/list_of_followups")
async def list_of_followups(request: web.Request) -> web.Response:
    offset, num = _paging(request)
    points = await request.app[STORE].recent_points(offset=offset, limit=num)
    rows = [{"id": p["_id"], "ivorn": p["event_ivorn"], "observatory": p["observatory"], "mjd": p["mjd"],
             "mag": p["mag"], "mag_err": -1 if p["is_limit"] else p["mag_err"], "calib_err": p["calib_err"],
             "npoints": p.get("npoints"), "catalog": p["survey"], "filter": p["filter"], "mode": p["mode"],
             "calibration_date": p["calibrated_at"].isoformat(), "plot": f"/plots/{p['observation_id']}.png"}
            for p in points]
    if request.query.get("format") == "json":
        return web.json_response(rows, headers=_next_link(request, offset, num, len(rows)))
    return _table("List of follow-up data", rows, link=lambda r: r["plot"])


#: Sort keys of the paged lists (``sort=``), each newest or largest first unless ``order=asc``.
ALERT_SORTS = ("date", "points")
FOLLOWUP_SORTS = tuple(FOLLOWUP_ORDERS)
MAX_PER_PAGE = 100


def _listing(request: web.Request, sorts: tuple[str, ...]) -> tuple[int, int, str, str, bool]:
    """(page, per_page, q, sort, ascending) of a paged list, or 400 with the reason."""
    query = request.query
    try:
        page, per_page = int(query.get("page", 1)), int(query.get("per_page", 20))
    except ValueError:
        raise web.HTTPBadRequest(text="page and per_page must be integers\n") from None
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise web.HTTPBadRequest(text=f"page must be 1 or more and per_page between 1 and {MAX_PER_PAGE}\n")
    sort, order = query.get("sort", sorts[0]), query.get("order", "desc")
    if sort not in sorts:
        raise web.HTTPBadRequest(text=f"sort must be one of {', '.join(sorts)}, got {sort!r}\n")
    if order not in ("asc", "desc"):
        raise web.HTTPBadRequest(text=f"order must be asc or desc, got {order!r}\n")
    q = query.get("q", "").strip()
    if len(q) > 200:
        raise web.HTTPBadRequest(text="the search text is longer than 200 characters\n")
    return page, per_page, q, sort, order == "asc"


def _page_answer(total: int, page: int, per_page: int, q: str, sort: str, ascending: bool, rows: list) -> dict:
    return {"total": total, "page": page, "per_page": per_page, "pages": max(1, -(-total // per_page)),
            "q": q, "sort": sort, "order": "asc" if ascending else "desc", "rows": rows}


def alert_row(event: dict) -> dict:
    published = event.get("published")
    return {"id": event["alert_id"], "ivorn": event["_id"], "name": event.get("name"),
            "published": published.isoformat() if published else None, "ra": event.get("ra_deg"),
            "dec": event.get("dec_deg"), "nfollowup": event["nfollowup"], "source": event.get("source", ""),
            "url": event.get("url", "")}


def followup_row(point: dict) -> dict:
    calibrated = point.get("calibrated_at")
    return {"id": point["_id"], "ivorn": point["event_ivorn"], "observatory": point["observatory"],
            "observatory_id": point["observatory_id"], "mjd": point["mjd"], "mag": point["mag"],
            "mag_err": point.get("mag_err"), "calib_err": point.get("calib_err"), "is_limit": point["is_limit"],
            "zp": point.get("zp"), "npoints": point.get("npoints"), "catalog": point.get("survey"),
            "filter": point.get("filter"), "mode": point.get("mode"),
            "calibration_date": calibrated.isoformat() if calibrated else None,
            "plot": f"/plots/{point['observation_id']}.png"}


@routes.get("/api/v1/lists/alerts")
async def alerts_page(request: web.Request) -> web.Response:
    """One page of the events: totals, a name search, sorted by date or by number of points."""
    page, per_page, q, sort, ascending = _listing(request, ALERT_SORTS)
    total, events = await request.app[STORE].list_events(
        q=q, observed_only=request.query.get("observed_only") == "1", sort=sort, ascending=ascending,
        offset=(page - 1) * per_page, limit=per_page)
    return web.json_response(_page_answer(total, page, per_page, q, sort, ascending,
                                          [alert_row(e) for e in events]))


@routes.get("/api/v1/lists/followups")
async def followups_page(request: web.Request) -> web.Response:
    """One page of the follow-up points: totals, a search by event or observatory name, sorted."""
    page, per_page, q, sort, ascending = _listing(request, FOLLOWUP_SORTS)
    total, points = await request.app[STORE].list_points(q=q, sort=sort, ascending=ascending,
                                                         offset=(page - 1) * per_page, limit=per_page)
    return web.json_response(_page_answer(total, page, per_page, q, sort, ascending,
                                          [followup_row(p) for p in points]))


def _observatory_id(request: web.Request) -> int:
    raw = request.match_info["observatory_id"]
    if not raw.isdigit():
        raise web.HTTPBadRequest(text=f"the observatory id must be an integer, got {raw!r}\n")
    return int(raw)


@routes.get("/api/v1/observatories/{observatory_id}/points")
async def observatory_points(request: web.Request) -> web.Response:
    """One page of an observatory's follow-up points (newest first; ``sort`` as the follow-up list)."""
    observatory_id = _observatory_id(request)
    page, per_page, q, sort, ascending = _listing(request, FOLLOWUP_SORTS)
    total, points = await request.app[STORE].list_points(q=q, sort=sort, ascending=ascending,
                                                         offset=(page - 1) * per_page, limit=per_page,
                                                         observatory_id=observatory_id)
    return web.json_response(_page_answer(total, page, per_page, q, sort, ascending,
                                          [followup_row(p) for p in points]))


@routes.get("/api/v1/observatories/{observatory_id}/zeropoints")
async def observatory_zeropoints(request: web.Request) -> web.Response:
    """The zero point of every calibrated point of an observatory, by MJD (an instrument's health)."""
    observatory_id = _observatory_id(request)
    points = await request.app[STORE].zeropoints_of(observatory_id)
    return web.json_response({"observatory_id": observatory_id, "points": [
        {"id": p["_id"], "mjd": p["mjd"], "filter": p.get("filter"), "survey": p.get("survey"), "zp": p["zp"],
         "zp_err": p.get("zp_err")} for p in points]})


@routes.get("/plots/{name}")
async def plot(request: web.Request) -> web.Response:
    """An observation's calibration plot; one not drawn yet is asked of calibration and waited for."""
    observation_id = request.match_info["name"].removesuffix(".png")
    if not OBSERVATION_ID.fullmatch(observation_id):
        raise web.HTTPNotFound(text="no plot: not an observation id\n")
    store = request.app[STORE]
    png = await store.plot(observation_id)
    if png is None:
        png = await _drawn_on_request(request, observation_id)
    return web.Response(body=png, content_type="image/png")


async def _drawn_on_request(request: web.Request, observation_id: str) -> bytes:
    requests = request.app.get(PLOTS)
    if requests is None:  # no broker to ask through (a read-only test application)
        raise web.HTTPNotFound(text="no plot for this observation\n")
    retry = {"Retry-After": "5"}
    try:
        answer = await requests.ask(observation_id)
    except broker_outage_types()[0] as exc:
        raise web.HTTPServiceUnavailable(text=f"the plot cannot be asked for now (message broker: {exc}); "
                                              "try again in a minute\n", headers={"Retry-After": "60"}) from exc
    if answer is None:
        raise web.HTTPServiceUnavailable(text=f"the plot was not drawn within {requests.wait_s:.0f} s (calibration "
                                              "is busy or not running); try again shortly\n", headers=retry)
    if isinstance(answer, PlotDeclinedV1):
        raise web.HTTPNotFound(text=f"no plot: {answer.reason}\n")
    png = await request.app[STORE].plot(observation_id)
    if png is None:  # deleted between its drawing and this read
        raise web.HTTPNotFound(text="no plot for this observation (deleted meanwhile)\n")
    return png


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "service": "lightcurve"})


def _paging(request: web.Request) -> tuple[int, int]:
    try:
        return max(0, int(request.query.get("offset", 0))), min(1000, max(1, int(request.query.get("num", 100))))
    except ValueError:
        raise web.HTTPBadRequest(text="offset and num must be integers\n") from None


def _next_link(request: web.Request, offset: int, num: int, n_rows: int) -> dict[str, str]:
    """The CPCS lists' answer stays a bare JSON array; the next page's address is in a ``Link`` header
    (RFC 8288, ``rel="next"``, without the caller's hashtag) when this page is full."""
    if n_rows < num:
        return {}
    query = {k: v for k, v in request.query.items() if k != "hashtag"} | {"offset": str(offset + num), "num": str(num)}
    return {"Link": f'<{request.path}?{urlencode(query)}>; rel="next"'}


def _table(title: str, rows: list[dict], *, link) -> web.Response:
    head = "".join(f"<th>{html.escape(k)}</th>" for k in (rows[0] if rows else {}))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values())
                   + f"<td><a href='{html.escape(link(r))}'>view</a></td></tr>" for r in rows)
    return web.Response(text=f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
                             f"<body><h1>{title}</h1><table><tr>{head}</tr>{body}</table></body></html>",
                        content_type="text/html")


def _dumps(value) -> str:
    return json.dumps(value, default=str)


@web.middleware
async def numbers_too_large(request: web.Request, handler) -> web.StreamResponse:
    """A number in the request beyond what the database stores (64 bits) is the request's fault: 400."""
    try:
        return await handler(request)
    except OverflowError:
        raise web.HTTPBadRequest(text="a number in the request is too large (at most 2**63 - 1)\n") from None


def make_app(store: LightcurveStore, settings: LightcurveSettings,
             plots: PlotRequests | None = None) -> web.Application:
    """``plots``: how a plot not drawn yet is asked for (None: such a plot is answered 404)."""
    app = web.Application(middlewares=[numbers_too_large])
    app[STORE], app[SETTINGS] = store, settings
    if plots is not None:
        app[PLOTS] = plots
    app[ALERT_POINTS] = AlertPointCollection(store.db)
    app[CURVES] = CurveCache()
    app.add_routes(routes)
    return app
