"""Ingest's settings: the shared broker and database parts, its HTTP side, and the alert feeds."""
from __future__ import annotations

from pydantic import Field, SecretStr

from services.ingest.voevents.settings import VoeventSettings
from shared.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    """``CPCS_HTTP_HOST``/``CPCS_INGEST_PORT``: where it listens. ``CPCS_PUBLIC_URL``: how observers
    reach it (status URLs). ``CPCS_LIGHTCURVE_URL``: where the read paths are forwarded.
    ``CPCS_UPLOAD_WAIT_S``: how long ``/cgi/upload`` waits for the calibration before answering 202.
    ``CPCS_MAX_UPLOAD_MB``: the largest upload. ``CPCS_SESSION_SECRET``: the key of the pages' login
    cookies (any string; without it each start makes a new key, and logins end when ingest restarts);
    ``CPCS_SESSION_MAX_AGE_S``: how long a login lasts. ``voevent``: the alert feeds (``CPCS_VOEVENT_*``)."""

    http_host: str = "127.0.0.1"
    ingest_port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    lightcurve_url: str = "http://127.0.0.1:8081"
    upload_wait_s: float = 30.0
    max_upload_mb: float = 45.0  # nx-27017 answers at most 48 MB in one message; raise it on real MongoDB
    admin_token: SecretStr | None = None
    session_secret: SecretStr | None = None
    session_max_age_s: int = 7 * 24 * 3600
    voevent: VoeventSettings = Field(default_factory=VoeventSettings)  # CPCS_VOEVENT_*, its own model
