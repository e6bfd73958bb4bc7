"""An observatory's page: its details, its points (20 a page) and its zero point per band over time, a
plot of the instrument's health at a glance (Plotly, from the light-curve service's stored points)."""
from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from services.ingest.deps import DEPS
from services.ingest.errors import IngestError, InvalidInput, NotFound
from services.ingest.web.lists import Listing, check_page, lightcurve_json, pager, refusal_page, sort_links
from shared.bands import band_colour

routes = web.RouteTableDef()


def zeropoint_series(points: list[dict]) -> list[dict]:
    """One series per band (and catalogue): MJD, zero point and its error, follow-up ids, and the band's
    colour (the same as on the light curves), for the plot."""
    series: dict[str, dict] = {}
    for p in points:
        name = f"{p.get('filter') or '?'} ({p.get('survey') or '?'})"
        s = series.setdefault(name, {"name": name, "colour": band_colour(p.get("filter")), "mjd": [], "zp": [],
                                     "zp_err": [], "id": []})
        s["mjd"].append(p["mjd"])
        s["zp"].append(p["zp"])
        s["zp_err"].append(p.get("zp_err"))
        s["id"].append(p["id"])
    return sorted(series.values(), key=lambda s: s["name"])


@routes.get("/observatories/{observatory_id}")
async def observatory_page(request: web.Request) -> web.StreamResponse:
    raw = request.match_info["observatory_id"]
    try:
        if not raw.isdigit():
            raise InvalidInput(f"an observatory id is a whole number, got {raw!r}")
        observatory = await request.app[DEPS].store.get_observatory(int(raw))
        if observatory is None:
            raise NotFound(f"there is no observatory {raw}")
        listing = Listing.of(request, ("date", "mjd", "points"))
        points = await lightcurve_json(request, f"/api/v1/observatories/{raw}/points", listing.params())
        check_page(listing, points["total"])
        zeropoints = await lightcurve_json(request, f"/api/v1/observatories/{raw}/zeropoints", {})
    except IngestError as exc:
        return refusal_page(request, exc, "Observatory")
    series = zeropoint_series(zeropoints["points"])
    return aiohttp_jinja2.render_template("observatory.html", request, {
        "observatory": observatory, "rows": points["rows"], "listing": listing,
        "pager": pager(request, listing, points["total"]), "series": series,
        "n_zeropoints": len(zeropoints["points"]),
        "sorts": sort_links(request, listing, {"date": "Calibration date", "mjd": "MJD", "points": "Number of stars"})})
