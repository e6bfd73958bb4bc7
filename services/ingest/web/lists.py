"""The list pages: alerts (all, or observed only), follow-up points and observatories, 20 rows a page,
with totals, a name search and a choice of sort.

What the light-curve service owns (its copy of the events, the points) comes from its JSON API
(``/api/v1/lists/*``) over the front door's client session; the CPCS scripts' ``format=json`` answers
are still forwarded unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from services.ingest import proxy
from services.ingest.deps import DEPS
from services.ingest.errors import IngestError, InvalidInput, NotFound
from services.ingest.http_render import plain_refusal
from services.ingest.read_policy import require_data_reader
from services.ingest.usecases.observatories import observatory_rows
from services.ingest.web.errors import page
from services.ingest.web.lightcurve_client import LightcurveClient

PER_PAGE = 20
routes = web.RouteTableDef()


async def lightcurve_json(request: web.Request, path: str, params: dict[str, str | int]) -> dict:
    """A JSON answer of the light-curve service's API (:meth:`LightcurveClient.get_json`)."""
    return await LightcurveClient.of(request).get_json(path, params)


def refusal_page(request: web.Request, exc: IngestError, title: str = "Not possible") -> web.Response:
    """A page with the reason of a refused request, with the status the error maps to."""
    return page(request, "list_error.html", {"title": title, "reason": str(exc)}, refusal=exc)


@dataclass(frozen=True)
class Listing:
    """What a list page was asked for: the page, the search text and the sort."""

    page: int
    q: str
    sort: str
    order: str

    @classmethod
    def of(cls, request: web.Request, sorts: tuple[str, ...]) -> Listing:
        query = request.query
        raw = query.get("page", "1").strip() or "1"
        if not raw.isdigit() or int(raw) < 1:
            raise InvalidInput(f"page must be a whole number from 1, got {raw!r}")
        sort = query.get("sort", sorts[0])
        if sort not in sorts:
            raise InvalidInput(f"sort must be one of {', '.join(sorts)}, got {sort!r}")
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise InvalidInput(f"order must be asc or desc, got {order!r}")
        return cls(int(raw), query.get("q", "").strip()[:200], sort, order)

    def params(self) -> dict[str, str | int]:
        return {"page": self.page, "per_page": PER_PAGE, "q": self.q, "sort": self.sort, "order": self.order}


def pager(request: web.Request, listing: Listing, total: int, per_page: int = PER_PAGE) -> dict:
    """Links to the previous and next pages (keeping the other query parameters), and where we are."""
    pages = max(1, -(-total // per_page))

    def link(page: int) -> str:
        return f"{request.path}?{urlencode({**request.query, 'page': page})}"

    first = (listing.page - 1) * per_page + 1 if total else 0
    return {"page": listing.page, "pages": pages, "total": total, "first": first,
            "last": min(total, listing.page * per_page),
            "previous": link(listing.page - 1) if listing.page > 1 else None,
            "next": link(listing.page + 1) if listing.page < pages else None}


def check_page(listing: Listing, total: int, per_page: int = PER_PAGE) -> None:
    """``NotFound`` for a page past the last one (an empty list has its page 1)."""
    pages = max(1, -(-total // per_page))
    if listing.page > pages:
        raise NotFound(f"there is no page {listing.page}: the list has {pages} page{'s' if pages > 1 else ''}")


def sort_links(request: web.Request, listing: Listing, labels: dict[str, str]) -> list[dict]:
    """One link per sort key; choosing the current key again flips the order."""
    links = []
    for key, label in labels.items():
        current = key == listing.sort
        order = ("asc" if listing.order == "desc" else "desc") if current else "desc"
        query = {**request.query, "sort": key, "order": order, "page": 1}
        links.append({"label": label, "href": f"{request.path}?{urlencode(query)}", "current": current,
                      "order": listing.order if current else None})
    return links


def wants_json(request: web.Request) -> bool:
    return request.query.get("format", "html").lower() != "html"


@routes.get("/list_of_alerts")
async def list_of_alerts(request: web.Request) -> web.StreamResponse:
    if wants_json(request):
        return await proxy.forward(request)
    observed_only = request.query.get("observed_only") == "1"
    try:
        listing = Listing.of(request, ("date", "points"))
        answer = await lightcurve_json(request, "/api/v1/lists/alerts",
                                       listing.params() | ({"observed_only": 1} if observed_only else {}))
        check_page(listing, answer["total"])
    except IngestError as exc:
        return refusal_page(request, exc, "Alerts")
    return aiohttp_jinja2.render_template("list_alerts.html", request, {
        "rows": answer["rows"], "listing": listing, "observed_only": observed_only,
        "pager": pager(request, listing, answer["total"]),
        "sorts": sort_links(request, listing, {"date": "Date", "points": "Number of points"})})


@routes.get("/list_of_followups")
async def list_of_followups(request: web.Request) -> web.StreamResponse:
    if wants_json(request):
        return await proxy.forward(request)
    try:
        listing = Listing.of(request, ("date", "mjd", "points"))
        answer = await lightcurve_json(request, "/api/v1/lists/followups", listing.params())
        check_page(listing, answer["total"])
    except IngestError as exc:
        return refusal_page(request, exc, "Follow-up data")
    return aiohttp_jinja2.render_template("list_followups.html", request, {
        "rows": answer["rows"], "listing": listing, "pager": pager(request, listing, answer["total"]),
        "sorts": sort_links(request, listing, {"date": "Calibration date", "mjd": "MJD",
                                               "points": "Number of stars"})})


def observatory_page_rows(rows: list[dict], listing: Listing) -> tuple[int, list[dict]]:
    """(total, one page) of the observatories matching the search, by name or by number of observations."""
    q = listing.q.lower()
    chosen = [r for r in rows if q in str(r["name"]).lower()] if q else list(rows)
    key = (lambda r: (r["observations"], r["id"])) if listing.sort == "points" else (lambda r: r["id"])
    chosen.sort(key=key, reverse=listing.order == "desc")
    start = (listing.page - 1) * PER_PAGE
    return len(chosen), chosen[start:start + PER_PAGE]


@routes.get("/observatories")
async def observatories(request: web.Request) -> web.StreamResponse:
    if request.query.get("format") == "json":
        try:
            await require_data_reader(request)
        except IngestError as exc:
            return plain_refusal(exc)
        return web.json_response(await observatory_rows(request.app[DEPS].store))
    rows = await observatory_rows(request.app[DEPS].store)
    try:
        listing = Listing.of(request, ("date", "points"))
        total, page_rows = observatory_page_rows(rows, listing)
        check_page(listing, total)
    except IngestError as exc:
        return refusal_page(request, exc, "Observatories")
    return aiohttp_jinja2.render_template("list_observatories.html", request, {
        "rows": page_rows, "listing": listing, "pager": pager(request, listing, total),
        "sorts": sort_links(request, listing, {"date": "Date added", "points": "Number of observations"})})
