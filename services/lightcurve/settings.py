"""The lightcurve service's settings: the shared broker and database parts and where it listens."""
from __future__ import annotations

from shared.settings import ServiceSettings


class LightcurveSettings(ServiceSettings):
    """``CPCS_HTTP_HOST``/``CPCS_LIGHTCURVE_PORT``: where its pages and JSON are served (ingest forwards
    observers there, ``CPCS_LIGHTCURVE_URL`` on ingest's side)."""

    http_host: str = "127.0.0.1"
    lightcurve_port: int = 8081
