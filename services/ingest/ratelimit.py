"""Rate limits on ingest's HTTP writes and failed token checks: 429 with ``Retry-After`` and a sentence.

Without them one client can try thousands of tokens a second (each answered 401, so guessing is only a
matter of time) or fill the store with events. Token buckets, refilled continuously:

- every write (a POST, PUT, PATCH or DELETE) takes one from its address's bucket and one from its token's
  (``CPCS_RATE_WRITES_PER_S``, bursts of ``CPCS_RATE_WRITES_BURST``; the upload benchmark's ~40 a second
  from one address and token is well inside the default);
- a new event (``/cgi/newevent``, ``POST /api/v1/events``, the page's form) takes one more from the
  address's and the token's event bucket (``CPCS_RATE_EVENTS_PER_MIN``, ``CPCS_RATE_EVENTS_BURST``);
- every answer 401 (an unknown token, a failed login) takes one from its address's failure bucket
  (``CPCS_RATE_FAILURES_PER_MIN``, ``CPCS_RATE_FAILURES_BURST``); while it is empty, the address's
  writes and the requests carrying a token are refused before they are checked.

The token is read from the ``Authorization`` header, the query string or the cookie before the handler
runs, and from the posted form once an adapter reads it (``limit_form_token``). An address is the
client's IP (an IPv6 client's /64), or with ``CPCS_RATE_FORWARDED_FOR`` the last address of
``X-Forwarded-For`` (behind a reverse proxy of ours). The buckets live in the ingest process: each
ingest replica counts on its own, so N replicas allow N times the rates. ``CPCS_RATE_LIMITS=false``
turns them off.
"""
from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from services.ingest.errors import IngestError, TooManyRequests
from services.ingest.http_render import plain_refusal, problem

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EVENT_PATHS = frozenset({"/cgi/newevent", "/api/v1/events", "/newevent"})
#: Keys kept per bucket set; past it the least recently seen are forgotten (they start full again).
MAX_KEYS = 100_000
_RETRY_AFTER = "rate_limit_retry_after"
_TOKEN_COUNTED = "rate_limit_token_counted"


class Buckets:
    """One token bucket per key: ``rate_per_s`` refill, at most ``burst`` held; a clock for the tests."""

    def __init__(self, rate_per_s: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = MAX_KEYS):
        self.rate, self.burst, self.clock, self.max_keys = rate_per_s, max(1, burst), clock, max_keys
        self._held: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key: (tokens, when)

    def _level(self, key: str) -> float:
        tokens, when = self._held.get(key, (float(self.burst), self.clock()))
        return min(float(self.burst), tokens + (self.clock() - when) * self.rate)

    def wait_s(self, key: str) -> float:
        """Seconds until ``key`` may take one (0 when it may now); takes nothing."""
        level = self._level(key)
        return 0.0 if level >= 1.0 else (1.0 - level) / self.rate if self.rate > 0 else math.inf

    def take(self, key: str) -> float:
        """Take one for ``key``: 0 when taken, else the seconds to wait (nothing taken)."""
        wait = self.wait_s(key)
        if wait == 0.0:
            self._put(key, self._level(key) - 1.0)
        return wait

    def spend(self, key: str) -> None:
        """Take one even if that leaves the bucket below empty (for what already happened: a failure)."""
        self._put(key, max(-float(self.burst), self._level(key) - 1.0))

    def _put(self, key: str, tokens: float) -> None:
        self._held[key] = (tokens, self.clock())
        self._held.move_to_end(key)
        while len(self._held) > self.max_keys:
            self._held.popitem(last=False)


@dataclass(frozen=True)
class Rates:
    """The settings of the limits (per address and per token; failures per address)."""

    writes_per_s: float = 100.0
    writes_burst: int = 500
    events_per_min: float = 60.0
    events_burst: int = 60
    failures_per_min: float = 30.0
    failures_burst: int = 30
    forwarded_for: bool = False


class RateLimits:
    """The buckets of one ingest process."""

    def __init__(self, rates: Rates, *, clock: Callable[[], float] = time.monotonic):
        self.rates = rates
        self.writes = Buckets(rates.writes_per_s, rates.writes_burst, clock=clock)
        self.events = Buckets(rates.events_per_min / 60.0, rates.events_burst, clock=clock)
        self.failures = Buckets(rates.failures_per_min / 60.0, rates.failures_burst, clock=clock)

    def address_of(self, request: web.Request) -> str:
        text = request.remote or ""
        if self.rates.forwarded_for:
            forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
            text = forwarded[-1] if forwarded else text
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return f"addr:{text}"
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                return f"addr:{address.ipv4_mapped}"
            return f"addr:{ipaddress.ip_network(f'{address}/64', strict=False)}"  # one client's network
        return f"addr:{address}"

    def before(self, request: web.Request, token: str) -> TooManyRequests | None:
        """The refusal of a request over a limit (its wait stored on the request), or None."""
        address = self.address_of(request)
        is_write = request.method in WRITE_METHODS
        if is_write or token:
            wait = self.failures.wait_s(address)
            if wait:
                return _refusal(request, wait, "too many requests with unknown tokens or failed logins came from "
                                               "your address")
        if not is_write:
            return None
        keys = [address] + ([f"token:{token}"] if token else [])
        request[_TOKEN_COUNTED] = bool(token)
        for buckets, what in self._buckets_of(request):
            for key in keys:
                wait = buckets.take(key)
                if wait:
                    whose = "this token" if key.startswith("token:") else "your address"
                    return _refusal(request, wait, f"too many {what} from {whose}")
        return None

    def form_token(self, request: web.Request, token: str) -> TooManyRequests | None:
        """The refusal of a write whose token only its form carries (counted once per request)."""
        if not token or request.method not in WRITE_METHODS or request.get(_TOKEN_COUNTED, True):
            return None
        request[_TOKEN_COUNTED] = True
        for buckets, what in self._buckets_of(request):
            wait = buckets.take(f"token:{token}")
            if wait:
                return _refusal(request, wait, f"too many {what} from this token")
        return None

    def after(self, request: web.Request, status: int) -> None:
        if status == 401:
            self.failures.spend(self.address_of(request))

    def _buckets_of(self, request: web.Request) -> list[tuple[Buckets, str]]:
        out = [(self.writes, "writes")]
        if request.path in EVENT_PATHS:
            out.append((self.events, "new events"))
        return out


def _refusal(request: web.Request, wait_s: float, who: str) -> TooManyRequests:
    seconds = max(1, math.ceil(wait_s)) if math.isfinite(wait_s) else 3600
    request[_RETRY_AFTER] = seconds
    return TooManyRequests(f"{who}; try again in {seconds} s", retry_after_s=seconds)


def header_token(request: web.Request) -> str:
    """The token a request carries outside its body: a Bearer header, the query string, the cookie."""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    for source in (request.query, request.cookies):
        value = source.get("hashtag")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


LIMITS = web.AppKey("rate_limits", RateLimits)


def answer(request: web.Request, refusal: IngestError) -> web.Response:
    response = problem(refusal) if request.path.startswith("/api/") else plain_refusal(refusal)
    response.headers["Retry-After"] = str(request.get(_RETRY_AFTER, 1))
    return response


@web.middleware
async def rate_limits(request: web.Request, handler) -> web.StreamResponse:
    limits = request.app.get(LIMITS)
    if limits is None:
        return await handler(request)
    refusal = limits.before(request, header_token(request))
    if refusal is not None:
        return answer(request, refusal)
    response = await handler(request)
    limits.after(request, response.status)
    if _RETRY_AFTER in request and "Retry-After" not in response.headers and not response.prepared:
        response.headers["Retry-After"] = str(request[_RETRY_AFTER])
    return response


def limit_form_token(request: web.Request, form: Mapping) -> None:
    """Called by the form reader once the form is read: ``TooManyRequests`` over the token's limit."""
    limits = request.app.get(LIMITS)
    token = form.get("hashtag")
    if limits is not None and isinstance(token, str):
        refusal = limits.form_token(request, token.strip())
        if refusal is not None:
            raise refusal


def rates_of(settings) -> Rates | None:
    """The rates of ingest's settings (``CPCS_RATE_*``), None when they are turned off."""
    if not settings.rate_limits:
        return None
    return Rates(writes_per_s=settings.rate_writes_per_s, writes_burst=settings.rate_writes_burst,
                 events_per_min=settings.rate_events_per_min, events_burst=settings.rate_events_burst,
                 failures_per_min=settings.rate_failures_per_min, failures_burst=settings.rate_failures_burst,
                 forwarded_for=settings.rate_forwarded_for)


def setup(app: web.Application, rates: Rates | None) -> None:
    """Turn the limits on for ``app`` (None: off)."""
    if rates is not None:
        app[LIMITS] = RateLimits(rates)
