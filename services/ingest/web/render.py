"""Templates: one Jinja2 environment (autoescape on), the base layout's context, number formats."""
from __future__ import annotations

import math
from datetime import UTC, datetime

import aiohttp_jinja2
import jinja2
from aiohttp import web
from astropy.time import Time

from services.ingest.web.session import csrf_token, current_user

#: The menu of every page: (path, label).
MENU = (("/list_of_alerts", "Alerts"), ("/list_of_followups", "Follow-ups"), ("/observatories", "Observatories"),
        ("/uploader", "Upload"), ("/newevent", "New event"), ("/manual", "Manual"), ("/api/docs", "API"))


async def base_context(request: web.Request) -> dict:
    """What base.html needs on every page: the menu, who is signed in, the CSRF token of the forms."""
    return {"menu": MENU, "user": await current_user(request), "csrf_token": await csrf_token(request),
            "path": request.path}


def mag(value, digits: int = 3) -> str:
    """A magnitude (or an error) rounded for people; an em dash for nothing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{float(value):.{digits}f}"


def mjd(value, digits: int = 5) -> str:
    return "—" if value is None else f"{float(value):.{digits}f}"


def utc(value) -> str:
    """An MJD or a datetime as ISO UTC to the second."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str):
        return value.replace("T", " ")[:19]
    return Time(float(value), format="mjd", scale="utc").to_value("iso", subfmt="date_hms")[:19]


def setup(app: web.Application) -> jinja2.Environment:
    env = aiohttp_jinja2.setup(app, loader=jinja2.PackageLoader("services.ingest.web", "templates"),
                               autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                               context_processors=[base_context], undefined=jinja2.StrictUndefined)
    env.filters.update(mag=mag, mjd=mjd, utc=utc)
    return env
