"""How the pages answer a refusal: an HTML page with the reason and the status of ``answers`` (the one
mapping from domain errors to HTTP statuses), and redirects after a form."""
from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from services.ingest.answers import http_status
from services.ingest.errors import IngestError


def page(request: web.Request, template: str, context: dict, *, refusal: IngestError | None = None) -> web.Response:
    """``template`` rendered; with the status of ``refusal`` when the page shows one (a form shown again)."""
    response = aiohttp_jinja2.render_template(template, request, context)
    if refusal is not None:
        response.set_status(http_status(refusal))
    return response


def see_other(location: str) -> web.HTTPSeeOther:
    """The redirect after a form was handled (303: the browser then GETs ``location``)."""
    return web.HTTPSeeOther(location)


@web.middleware
async def refusals_as_pages(request: web.Request, handler) -> web.StreamResponse:
    """A domain error a page handler lets through becomes the problem page with its reason and status (the
    CPCS and REST handlers catch theirs and answer in their own formats)."""
    try:
        return await handler(request)
    except IngestError as exc:
        return page(request, "problem.html", {"reason": str(exc), "status": http_status(exc)}, refusal=exc)
