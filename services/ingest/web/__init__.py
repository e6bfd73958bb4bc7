"""The web application: server-rendered pages for observers and readers, over ingest's use cases.

``setup(app, deps)`` adds templates (Jinja2, autoescaped), the login session (an encrypted cookie),
the static files and every page's routes to the front door. Pages call the same use cases as the CPCS
and REST adapters; what the light-curve service owns they read from its HTTP API.
"""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from services.ingest.settings import IngestSettings
from services.ingest.web import event_page, render, session

STATIC = Path(__file__).with_name("static")


def setup(app: web.Application, settings: IngestSettings) -> None:
    secret = settings.session_secret.get_secret_value() if settings.session_secret else None
    session.setup(app, secret=secret, secure=settings.public_url.startswith("https://"),
                  max_age_s=settings.session_max_age_s)
    render.setup(app)
    event_page.setup(app)  # before /static: it serves /static/plotly.min.js from the plotly package
    app.router.add_static("/static", STATIC, name="static", append_version=False)
