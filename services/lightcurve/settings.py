"""The lightcurve service's settings: the shared broker and database parts and where it listens."""
from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class LightcurveSettings(ServiceSettings):
    """``CPCS_HTTP_HOST``/``CPCS_LIGHTCURVE_PORT``: where its pages and JSON are served (ingest forwards
    observers there, ``CPCS_LIGHTCURVE_URL`` on ingest's side). ``CPCS_ANNOUNCE_WAIT_S``: how long a result
    or deletion waits (retried with backoff) for ingest's announcement of its observation, which travels
    on another queue, before it is refused as untrusted."""

    http_host: str = "127.0.0.1"
    lightcurve_port: int = 8081
    announce_wait_s: float = Field(default=900.0, ge=0)
