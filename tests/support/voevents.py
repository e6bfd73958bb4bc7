"""VOEvent packets for tests: the real samples beside the project, and synthetic ones made here."""
from __future__ import annotations

import asyncio
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "voevents"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def synthetic_packet(n: int, *, stream: str = "ivo://cpcs.test/alerts", role: str = "observation",
                     error_deg: float = 0.0001, mag: float = 17.5) -> bytes:
    """A small VOEvent 2.0 packet for transient ``Synth<n>`` at a position of its own (one per n)."""
    ra, dec = (n * 0.137) % 360.0, -60.0 + (n * 0.0731) % 120.0
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" version="2.0" role="{role}"
    ivorn="{stream}#Synth{n:06d}-1">
  <Who><AuthorIVORN>{stream}</AuthorIVORN><Date>2019-03-0{1 + n % 9}T10:00:00</Date></Who>
  <What>
    <Param name="name" ucd="meta.id" value="Synth{n:06d}"/>
    <Param name="mag" ucd="phot.mag;em.opt.R" unit="mag" value="{mag:.2f}"/>
    <Param name="mag_err" ucd="phot.mag;stat.error" unit="mag" value="0.05"/>
  </What>
  <WhereWhen><ObsDataLocation><ObservatoryLocation id="GEOSURFACE"/><ObservationLocation>
    <AstroCoordSystem id="UTC-ICRS-TOPO"/>
    <AstroCoords coord_system_id="UTC-ICRS-TOPO">
      <Time unit="s"><TimeInstant><ISOTime>2019-03-01T09:{n % 60:02d}:00</ISOTime></TimeInstant></Time>
      <Position2D unit="deg"><Name1>RA</Name1><Name2>Dec</Name2>
        <Value2><C1>{ra:.6f}</C1><C2>{dec:.6f}</C2></Value2><Error2Radius>{error_deg}</Error2Radius>
      </Position2D>
    </AstroCoords>
  </ObservationLocation></ObsDataLocation></WhereWhen>
</voe:VOEvent>
""".encode()


async def wait_count(probe, routing_key: str, n: int, predicate=lambda m: True, *, timeout_s: float = 30.0) -> list:
    """Until the probe has seen ``n`` matching messages (under a timeout); those messages."""
    found, scanned = [], 0

    def enough() -> bool:
        nonlocal scanned
        for message in probe.seen[scanned:]:
            if message.routing_key == routing_key and predicate(message):
                found.append(message)
        scanned = len(probe.seen)
        return len(found) >= n

    async with asyncio.timeout(timeout_s), probe._changed:
        await probe._changed.wait_for(enough)
    return found
