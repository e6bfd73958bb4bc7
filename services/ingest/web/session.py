"""Login into an encrypted session cookie, the signed-in user of a request, and CSRF tokens.

The cookie (aiohttp-session's ``EncryptedCookieStorage``, Fernet) holds the hashtag, the observatory's
name and id, whether it is an admin, and the session's CSRF token; it is HttpOnly, SameSite=Lax, and
Secure when the public URL is https. Every form of the pages carries the CSRF token; a POST without it,
or with another session's, is refused with 403.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import wraps
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session, new_session
from aiohttp_session import setup as setup_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from services.ingest.deps import DEPS
from services.ingest.errors import Forbidden, NotAuthenticated
from services.ingest.usecases.access import authenticate
from services.ingest.web.errors import page, refusals_as_pages, see_other

COOKIE = "cpcs_session"
routes = web.RouteTableDef()


@dataclass(frozen=True)
class User:
    """Who is signed in: the token's observatory (or its user name), and whether it is an admin."""

    token: str
    name: str
    observatory_id: int | None
    is_admin: bool

    @property
    def masked_token(self) -> str:
        """The token as pages may show it: its readable prefix and the last four digits."""
        return f"{self.token[:-32]}…{self.token[-4:]}" if len(self.token) > 36 else "…" + self.token[-4:]


def session_key(secret: str | None) -> bytes:
    """The 32-byte Fernet key: derived from ``CPCS_SESSION_SECRET`` when given, else new for this process
    (sessions then end when ingest restarts)."""
    if not secret:
        return secrets.token_bytes(32)
    return hashlib.sha256(secret.encode()).digest()


def setup(app: web.Application, *, secret: str | None, secure: bool, max_age_s: int) -> None:
    storage = EncryptedCookieStorage(session_key(secret), cookie_name=COOKIE,
                                     httponly=True, samesite="Lax", secure=secure, max_age=max_age_s)
    setup_session(app, storage)
    app.middlewares.append(refusals_as_pages)
    app.add_routes(routes)


async def current_user(request: web.Request) -> User | None:
    session = await get_session(request)
    token = session.get("token")
    if not token:
        return None
    return User(token=token, name=session.get("name", ""), observatory_id=session.get("observatory_id"),
                is_admin=bool(session.get("is_admin")))


async def csrf_token(request: web.Request) -> str:
    """This session's CSRF token (made on first use)."""
    session = await get_session(request)
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


async def check_csrf(request: web.Request, form) -> None:
    """``Forbidden`` (403) unless the form's ``csrf_token`` is this session's."""
    session = await get_session(request)
    expected, given = session.get("csrf", ""), form.get("csrf_token", "")
    if not expected or not isinstance(given, str) or not hmac.compare_digest(
            expected.encode(), given.encode("utf-8", "surrogatepass")):
        raise Forbidden("the form's security token is missing or expired: reload the page and send it again")


def login_required(handler):
    """The page needs a signed-in user: otherwise a redirect to the login page, coming back after."""
    @wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        if await current_user(request) is None:
            raise see_other(f"/login?next={quote(_local(str(request.rel_url)), safe='')}")
        return await handler(request)
    return wrapper


def _local(target: str) -> str:
    """Only a path on this site may be a ``next`` target (never another host)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@routes.get("/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    return aiohttp_jinja2.render_template("login.html", request, {
        "next": _local(request.query.get("next", "/")), "error": None})


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    await check_csrf(request, form)
    target = _local(str(form.get("next", "/")))
    token = str(form.get("hashtag", "")).strip()
    try:
        record = await authenticate(request.app[DEPS].store, token, unknown="this hashtag is not known")
    except NotAuthenticated as exc:
        return page(request, "login.html", {"next": target, "error": str(exc)}, refusal=exc)
    name = record.get("user") or ""
    if record.get("observatory_id") is not None:
        observatory = await request.app[DEPS].store.get_observatory(record["observatory_id"])
        name = (observatory or {}).get("name") or name
    session = await new_session(request)
    session.update({"token": token, "name": name or "admin", "observatory_id": record.get("observatory_id"),
                    "is_admin": bool(record.get("is_admin")), "csrf": secrets.token_urlsafe(24)})
    raise see_other(target)


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    await check_csrf(request, form)
    session = await get_session(request)
    session.invalidate()
    raise see_other("/")


def csrf_protected(handler):
    """A POST handler of a page: refuses a form without this session's CSRF token (403)."""
    @wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        await check_csrf(request, await request.post())
        return await handler(request)
    return wrapper
