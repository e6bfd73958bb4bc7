"""What the pages read from the light-curve service, over its HTTP API (server to server), never its
collections: one small client on ingest's shared aiohttp session (``services.ingest.proxy.SESSION``)."""
from __future__ import annotations

from urllib.parse import quote

import aiohttp
from aiohttp import web

from services.ingest.deps import DEPS
from services.ingest.errors import InvalidInput, NotFound, Unavailable
from services.ingest.proxy import SESSION


class LightcurveClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str):
        self.session, self.base_url = session, base_url.rstrip("/")

    @classmethod
    def of(cls, request: web.Request) -> LightcurveClient:
        return cls(request.app[SESSION], request.app[DEPS].settings.lightcurve_url)

    async def lightcurve(self, event: str | int) -> dict:
        """The JSON light curve (``ivorn``, ``id``, ``points`` by MJD, ``event``, ``total``, ``counts``,
        ``bands``) of an event given by its numeric id, IVORN or alias. NotFound for an unknown event,
        InvalidInput for a malformed id, Unavailable when the light-curve service does not answer."""
        return await self._get(event, {})

    async def newest(self, event: str | int, *, offset: int, limit: int) -> dict:
        """The same with one page of ``points``, newest first (``total`` counts them all)."""
        return await self._get(event, {"order": "newest", "offset": str(offset), "limit": str(limit)})

    async def _get(self, event: str | int, params: dict[str, str]) -> dict:
        return await self.get_json(f"/api/v1/events/{quote(str(event), safe='')}/lightcurve", params)

    async def get_json(self, path: str, params: dict[str, str] | dict[str, str | int]) -> dict:
        """A JSON answer of the light-curve service's API at ``path``; its refusal as ``NotFound`` (404) or
        ``InvalidInput`` (another 4xx, with its reason), ``Unavailable`` when it fails or does not answer."""
        try:
            async with self.session.get(f"{self.base_url}{path}", params=params) as response:
                if response.status == 200:
                    return await response.json()
                reason = (await response.text()).strip() or f"the light-curve service answered {response.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(f"the light-curve service is not answering: {exc}") from exc
        if response.status == 404:
            raise NotFound(reason)
        if response.status < 500:
            raise InvalidInput(reason)
        raise Unavailable(f"the light-curve service failed: {reason}")
