"""Settings of the alert feeds, read from the environment (prefix ``CPCS_VOEVENT_``) once at start."""
from __future__ import annotations

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.ingest.voevents.policy import VoeventPolicy


def _items(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class VoeventSettings(BaseSettings):
    """``vtp_remotes``: VOEvent brokers to subscribe to, ``host:port`` separated by commas (none by
    default). ``roles`` and ``streams``: comma-separated; see ``VoeventPolicy``."""

    model_config = SettingsConfigDict(env_prefix="CPCS_VOEVENT_", extra="ignore")

    roles: str = "observation"
    streams: str = ""
    max_error_arcsec: float = 60.0
    max_packet_kb: int = 512

    vtp_remotes: str = ""
    vtp_local_ivorn: str = "ivo://cpcs-ng/ingest"
    vtp_alive_timeout_s: float = 150.0  # brokers send iamalive every 60 s
    vtp_backoff_initial_s: float = 0.5
    vtp_backoff_max_s: float = 60.0

    @model_validator(mode="after")
    def _remotes_read(self) -> VoeventSettings:
        self.remotes()  # a remote that is not host:port is refused at start, naming it
        return self

    def policy(self) -> VoeventPolicy:
        return VoeventPolicy(roles=frozenset(r.lower() for r in _items(self.roles)),
                             streams=tuple(_items(self.streams)), max_error_arcsec=self.max_error_arcsec)

    def remotes(self) -> list[tuple[str, int]]:
        found = []
        for item in _items(self.vtp_remotes):
            host, _, port = item.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"CPCS_VOEVENT_VTP_REMOTES: {item!r} is not host:port")
            found.append((host, int(port)))
        return found

    @property
    def max_packet_bytes(self) -> int:
        return self.max_packet_kb * 1024
