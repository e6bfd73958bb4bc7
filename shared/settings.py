"""Typed settings, read from the environment (prefix ``CPCS_``) once per process in ``main()``."""
from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a service needs to find the broker, the database and its peers."""

    model_config = SettingsConfigDict(env_prefix="CPCS_", extra="ignore")

    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    mongo_url: SecretStr = SecretStr("mongodb://127.0.0.1:27017")
    mongo_db: str = "cpcs"
    exchange: str = "cpcs"
    prefetch: int = 8
    max_retries: int = 3
    retry_delay_s: float = 0.5

    http_host: str = "127.0.0.1"
    ingest_port: int = 8080
    lightcurve_port: int = 8081
    lightcurve_url: str = "http://127.0.0.1:8081"
    public_url: str = "http://127.0.0.1:8080"

    upload_wait_s: float = 30.0
    max_upload_mb: float = 45.0  # nx-27017 answers at most 48 MB in one message; raise it on real MongoDB
    admin_token: SecretStr | None = None

    refcat_margin_arcmin: float = 2.0
    process_workers: int = 1
