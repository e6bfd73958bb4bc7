"""The original's web forms and its observatories page."""
from __future__ import annotations

import html

import aiohttp_jinja2
from aiohttp import web

from services.ingest.deps import DEPS
from services.ingest.usecases.observatories import observatory_rows

routes = web.RouteTableDef()

_STYLE = "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}</style>"


def page(title: str, body: str) -> web.Response:
    return web.Response(text=f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>{_STYLE}"
                             f"</head><body><h1>{title}</h1>{body}</body></html>", content_type="text/html")


def form(action: str, fields: list[tuple[str, str]], *, files: bool = False) -> str:
    enctype = " enctype='multipart/form-data'" if files else ""
    rows = "".join(f"<tr><th>{label}</th><td><input name='{name}' type='{'file' if name == 'sexCat' else 'text'}'>"
                   f"</td></tr>" for name, label in fields)
    return f"<form method='post' action='{action}'{enctype}><table>{rows}</table><button>Submit</button></form>"


@routes.get("/")
async def index(request: web.Request) -> web.StreamResponse:
    return aiohttp_jinja2.render_template("index.html", request, {})


@routes.get("/newevent")
async def newevent_form(request: web.Request) -> web.Response:
    return page("New event", form("/cgi/newevent", [("EventID", "IVORN"), ("ra", "RA [deg]"),
                                                   ("dec", "Dec [deg]"), ("url", "URL"), ("hashtag", "Hashtag")]))


@routes.get("/delpoint")
async def delpoint_form(request: web.Request) -> web.Response:
    return page("Delete a point", form("/cgi/delpoint", [("followupid", "Follow-up id"), ("hashtag", "Hashtag")]))


@routes.get("/observatories")
async def observatories(request: web.Request) -> web.Response:
    keys = ("id", "name", "longitude", "latitude", "observations")
    observatories = await observatory_rows(request.app[DEPS].store)
    if request.query.get("format") == "json":
        return web.json_response(observatories)
    rows = [tuple(o[k] for k in keys) for o in observatories]
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return page("List of observatories", "<table><tr><th>id</th><th>Name</th><th>Longitude</th><th>Latitude</th>"
                                        f"<th>Observations</th></tr>{body}</table>")
