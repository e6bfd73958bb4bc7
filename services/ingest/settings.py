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
    ``CPCS_SESSION_MAX_AGE_S``: how long a login lasts. ``voevent``: the alert feeds (``CPCS_VOEVENT_*``).

    ``CPCS_FETCH_*``: an AMQP upload's ``catalogue_url`` is fetched only from public addresses unless
    ``CPCS_FETCH_ALLOW_PRIVATE`` (every address) or ``CPCS_FETCH_ALLOW_HOSTS`` (a comma-separated list of
    hosts or addresses) allows more; ``CPCS_FETCH_TIMEOUT_S`` bounds the whole fetch,
    ``CPCS_FETCH_MAX_REDIRECTS`` the redirects followed. ``CPCS_MAX_UNPACKED_MB``: the largest a gzip or
    bzip2 upload may be once unpacked (a bigger one is refused as soon as it gets there).

    ``CPCS_PUBLIC_DATA``: the data (JSON, CSV and the other light-curve formats, the API's lists, an
    observatory's points) answers without a token too; by default only the pages and plots are public,
    as in the original (``services/ingest/read_policy.py``).

    ``CPCS_INTAKE_AMQP_URL``: the broker address, user and password external publishers (observatories,
    feed bridges) use; that user may publish only ``upload.submitted.v1`` and ``voevent.received.v1``
    (``shared/broker_users.py``; ``cpcs up`` creates it and shows the address).

    ``CPCS_RATE_*``: the rate limits of HTTP writes and failed token checks, per address and per token, in
    each ingest process (``services/ingest/ratelimit.py``); ``CPCS_RATE_LIMITS=false`` turns them off.

    ``CPCS_OUTBOX_INTERVAL_S``: how often the outbox relay publishes the messages of stored uploads the
    broker has not confirmed yet; ``CPCS_RECONCILE_INTERVAL_S``: how often it looks for observations not
    final ``CPCS_RECONCILE_AFTER_S`` after they were received (or last re-driven) and publishes their
    message again (``services/ingest/outbox.py``)."""

    http_host: str = "127.0.0.1"
    ingest_port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    lightcurve_url: str = "http://127.0.0.1:8081"
    upload_wait_s: float = 30.0
    max_upload_mb: float = 45.0  # nx-27017 answers at most 48 MB in one message; raise it on real MongoDB
    admin_token: SecretStr | None = None
    session_secret: SecretStr | None = None
    session_max_age_s: int = 7 * 24 * 3600
    fetch_allow_private: bool = False
    fetch_allow_hosts: str = ""
    fetch_timeout_s: float = Field(default=30.0, gt=0)
    fetch_max_redirects: int = Field(default=3, ge=0, le=20)
    max_unpacked_mb: float = Field(default=512.0, gt=0)
    public_data: bool = False
    rate_limits: bool = True
    rate_writes_per_s: float = Field(default=100.0, gt=0)
    rate_writes_burst: int = Field(default=500, ge=1)
    rate_events_per_min: float = Field(default=60.0, gt=0)
    rate_events_burst: int = Field(default=60, ge=1)
    rate_failures_per_min: float = Field(default=30.0, gt=0)
    rate_failures_burst: int = Field(default=30, ge=1)
    rate_forwarded_for: bool = False
    intake_amqp_url: SecretStr | None = None
    outbox_interval_s: float = Field(default=1.0, gt=0)
    reconcile_interval_s: float = Field(default=30.0, gt=0)
    reconcile_after_s: float = Field(default=300.0, gt=0)
    voevent: VoeventSettings = Field(default_factory=VoeventSettings)  # CPCS_VOEVENT_*, its own model
