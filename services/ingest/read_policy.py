"""Who may read what, as in the original CPCS: the pages and the calibration plots are public; the data
(the light curve as JSON, CSV or any other format, the CPCS column arrays, the JSON lists, an
observatory's points and zero points, the REST lists) is for callers with a known token (a hashtag in the
query, ``Authorization: Bearer|Token``, the ``hashtag`` cookie) or a signed-in session, unless
``CPCS_PUBLIC_DATA=true``. An observation's details (comment, file name, sha256) are for the observatory
that uploaded it and admins only (``may_see_observation``).
"""
from __future__ import annotations

from aiohttp import web
from aiohttp_session import get_session

from services.ingest.deps import DEPS
from services.ingest.errors import NotAuthenticated
from services.ingest.usecases.access import authenticate

#: The Authorization schemes a token may come in: ``Bearer`` (OAuth style), ``Token`` (BHTOM, TOM Toolkit,
#: Django REST framework) and ``token`` (SkyPortal); the scheme's case does not matter.
TOKEN_SCHEMES = ("bearer", "token")
NEEDS_TOKEN = ("this data is for registered observers: send your hashtag (?hashtag=..., or the header "
               "Authorization: Bearer <hashtag>) or sign in; the pages and plots are public")


def read_token(request: web.Request) -> str:
    """The token a read (GET) came with: the Authorization header, else the query's or cookie's hashtag."""
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() in TOKEN_SCHEMES and value.strip():
        return value.strip()
    for source in (request.query, request.cookies):
        given = source.get("hashtag")
        if isinstance(given, str) and given.strip():
            return given.strip()
    return ""


async def reader(request: web.Request) -> dict | None:
    """The token record of who is reading (a token sent, else the signed-in session's), None for nobody.
    ``NotAuthenticated`` for a token sent that is not known."""
    store = request.app[DEPS].store
    token = read_token(request)
    if token:
        return await authenticate(store, token, unknown="unknown hashtag: " + NEEDS_TOKEN)
    session_token = (await get_session(request)).get("token")
    if session_token:
        return await authenticate(store, session_token, unknown="your login is no longer valid: sign in again")
    return None


async def require_data_reader(request: web.Request) -> dict | None:
    """Nothing when the data is public (``CPCS_PUBLIC_DATA``); else the reader's record, or
    ``NotAuthenticated`` (401) with the sentence of what to send."""
    if request.app[DEPS].settings.public_data:
        return None
    record = await reader(request)
    if record is None:
        raise NotAuthenticated(NEEDS_TOKEN)
    return record


def may_see_observation(record: dict, observation: dict) -> bool:
    """An observation's details are its observatory's (and any admin's)."""
    if record.get("is_admin"):
        return True
    owner = record.get("observatory_id")
    return owner is not None and owner == observation.get("observatory_id")
