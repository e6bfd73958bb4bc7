"""Which packets are taken, and when a position can be a photometry target. Pure."""
from __future__ import annotations

import math
from dataclasses import dataclass

from services.ingest.voevents.packet import Packet, Position


@dataclass(frozen=True)
class VoeventPolicy:
    """``roles``: packet roles that create or update events (``test`` only when asked for).
    ``streams``: IVORN prefixes taken (empty: every stream). ``max_error_arcsec``: the widest error
    circle a photometry target may have; by default the widest match radius an upload may ask for.
    """

    roles: frozenset[str] = frozenset({"observation"})
    streams: tuple[str, ...] = ()
    max_error_arcsec: float = 60.0

    def ignores(self, role: str, ivorn: str) -> str | None:
        """Why a packet with this role and IVORN is not taken, or None when it is."""
        if role not in self.roles:
            return (f"role {role!r} is not taken here (taken: {', '.join(sorted(self.roles))}; "
                    "CPCS_VOEVENT_ROLES changes it)")
        if self.streams and not any(ivorn.startswith(prefix) for prefix in self.streams):
            return f"stream {ivorn.split('#', 1)[0]} is not among the streams taken here (CPCS_VOEVENT_STREAMS)"
        return None

    def target_problem(self, packet: Packet) -> str | None:
        """Why the packet's position cannot be a photometry target, or None when it can."""
        if packet.is_retraction:
            return "the packet retracts the alert"
        return position_problem(packet.position, packet.position_problem, self.max_error_arcsec)


def position_problem(position: Position | None, reason: str | None, max_error_arcsec: float) -> str | None:
    if position is None:
        return reason or "the packet gives no position"
    ra, dec, error = position.ra_deg, position.dec_deg, position.error_radius_deg
    if not (math.isfinite(ra) and math.isfinite(dec)) or not -90 <= dec <= 90 or not -360 < ra <= 360:
        return f"the position RA={ra:g}, Dec={dec:g} is not on the sky"
    if ra == 0 and dec == 0:
        return "the position is RA=0, Dec=0, which streams send when they have no position"
    if error is not None and not (math.isfinite(error) and error >= 0):
        return (f"the error circle has a radius of {error:g} deg, which no position has: the packet is "
                "malformed, so it gives no photometry target")
    if error is not None and error * 3600 > max_error_arcsec:
        return (f"the error circle has a radius of {describe_angle(error)}; a photometry target needs "
                f"at most {max_error_arcsec:g} arcsec")
    return None


def describe_angle(degrees: float) -> str:
    if degrees >= 1:
        return f"{degrees:.4g} deg"
    if degrees * 60 >= 1:
        return f"{degrees * 60:.3g} arcmin"
    return f"{degrees * 3600:.3g} arcsec"
