"""Observatories and their upload tokens (CPCS /cgi/newuser), and the list of observatories."""
from __future__ import annotations

from dataclasses import dataclass

from services.ingest.errors import InvalidInput
from services.ingest.store import IngestStore
from services.ingest.tokens import clean_prefix, new_token
from services.ingest.usecases.events import coordinate


@dataclass(frozen=True)
class NewUser:
    observatory: dict
    token: str  # shown once; only its sha256 is stored


async def create_observatory(store: IngestStore, *, name: str, lon: str = "", lat: str = "", prefix: str = "",
                             allow_upload: bool = True, allow_voevents: bool = False) -> NewUser:
    """A new observatory (longitude and latitude in decimal degrees, optional) and a token for it."""
    name = name.strip()
    if not name:
        raise InvalidInput("obsName is missing: give the observatory's name")
    lon_deg = coordinate(lon, "lon", -180, 360) if lon else None
    lat_deg = coordinate(lat, "lat", -90, 90) if lat else None
    observatory = await store.create_observatory(name, lon_deg, lat_deg)
    token = new_token(prefix or name)
    await store.add_token(token, observatory_id=observatory["_id"], user=prefix or name,
                          allow_upload=allow_upload, allow_voevents=allow_voevents)
    return NewUser(observatory, token)


async def observatory_rows(store: IngestStore) -> list[dict]:
    """Every observatory with its position and number of observations."""
    return [{"id": o["_id"], "name": o["name"], "longitude": o.get("lon_deg"), "latitude": o.get("lat_deg"),
             "observations": await store.count_observations(o["_id"])}
            for o in await store.list_observatories()]


async def observatories_with_tokens(store: IngestStore) -> list[dict]:
    """Every observatory with the readable prefixes of its tokens (``Name_…``) and what each may do; the
    tokens themselves are not stored."""
    tokens: dict[int | None, list[dict]] = {}
    for record in await store.list_tokens():
        tokens.setdefault(record.get("observatory_id"), []).append({
            "prefix": clean_prefix(record.get("user") or ""), "is_admin": bool(record.get("is_admin")),
            "allow_upload": bool(record.get("allow_upload", True)),
            "allow_voevents": bool(record.get("allow_voevents")), "created_at": record.get("created_at")})
    rows = [o | {"tokens": tokens.get(o["_id"], [])} for o in await store.list_observatories()]
    return rows + [{"_id": None, "name": "(no observatory: admin and service tokens)", "lon_deg": None,
                    "lat_deg": None, "tokens": tokens[None]}] if tokens.get(None) else rows
