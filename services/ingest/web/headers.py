"""The security headers of every answer of the front door (pages, API, static files, errors, the live
stream): a Content-Security-Policy that runs only this site's own script files (no inline script, no
other host: Plotly and Swagger UI are served from here) and lets no other site frame the pages,
``X-Content-Type-Options: nosniff`` and a Referrer-Policy that sends no path to other sites.

Added on ``on_response_prepare``, so an answer made by any handler, middleware or raised HTTP error
carries them."""
from __future__ import annotations

from aiohttp import web

#: Styles may be inline (``style=`` attributes, and Plotly and Swagger UI set styles from script);
#: images may be data: and blob: URLs (Plotly's download and Swagger UI's icons).
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(add_security_headers)
