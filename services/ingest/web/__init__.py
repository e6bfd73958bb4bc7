"""The web application: server-rendered pages for observers and readers, over ingest's use cases.

``setup(app, deps)`` adds templates (Jinja2, autoescaped), the login session (an encrypted cookie),
the static files and every page's routes to the front door. Pages call the same use cases as the CPCS
and REST adapters; what the light-curve service owns they read from its HTTP API.
"""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from services.ingest.settings import IngestSettings
from services.ingest.web import (
    admin,
    event_page,
    headers,
    lists,
    manual,
    observatory_page,
    products,
    render,
    session,
    upload,
)

STATIC = Path(__file__).with_name("static")
#: The pages' own route tables (added by ``setup``).
PAGE_TABLES = (lists.routes, observatory_page.routes, admin.routes, manual.routes)
#: The route tables of the pages (the login's are added by ``session.setup``).
ROUTE_TABLES = (session.routes, *PAGE_TABLES, products.routes, upload.routes, event_page.routes)


def setup(app: web.Application, settings: IngestSettings) -> None:
    headers.setup(app)
    secret = settings.session_secret.get_secret_value() if settings.session_secret else None
    session.setup(app, secret=secret, secure=settings.public_url.startswith("https://"),
                  max_age_s=settings.session_max_age_s)
    render.setup(app)
    # Before the forward of the light-curve paths (added later by the app): these pages answer browsers,
    # and forward ``format=json`` themselves. Before the /static folder too, which would otherwise answer
    # /static/plotly.min.js (with 404).
    for table in PAGE_TABLES:
        app.add_routes(table)
    app.router.add_static("/static/swagger-ui", manual.SWAGGER_UI, name="swagger-ui", append_version=False)
    event_page.setup(app)  # before /static: it serves /static/plotly.min.js from the plotly package
    app.router.add_static("/static", STATIC, name="static", append_version=False)
    app.add_routes(products.routes)
    app.add_routes(upload.routes)
