"""Online reference catalogues: recorded archive answers replayed through astroquery's real code paths
(VizieR over HTTPS, the Gaia archive's TAP service, the SDSS SkyServer), cached into the store on the
real database server; archives that refuse, fail or never answer.

The recordings (tests/data/refcat/, synthetic stars in the archives' formats, see make_recordings.py)
are served by a local aiohttp server on 127.0.0.1; astroquery is pointed at it through its own server
settings (``Vizier(vizier_server=...)``, ``GaiaClass(gaia_tap_server=...)``, the SDSS
``skyserver_baseurl`` configuration item). VizieR is always HTTPS in astroquery, so that server has a
throw-away certificate for 127.0.0.1 that requests is told to trust (``REQUESTS_CA_BUNDLE``).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pytest
from aiohttp import web
from astropy.table import Table

from shared.refcat import coverage as cov
from shared.refcat.astrometry import propagate
from shared.refcat.healpix import separation_deg
from shared.refcat.providers import ARCHIVES, OnlineSettings, ReferenceSource
from shared.refcat.store import RefcatStore
from shared.simfield import simulate_field

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data" / "refcat"
APASS_VOT = DATA / "vizier_apass9_ra150_dec2.vot"
GAIA_VOT = DATA / "gaia_tap_dr3_ra150_dec2.vot"
SDSS_CSV = DATA / "sdss_dr17_ra150_dec2.csv"
RA0, DEC0 = 150.0, 2.0


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, written as PEM files."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class RecordedArchives:
    """VizieR (HTTPS), Gaia TAP and SDSS SkyServer (HTTP) answering with the recordings; every request
    is kept (path, form or query fields). ``fail_next`` makes the next n answers HTTP 503."""

    def __init__(self):
        self.requests: list[tuple[str, dict]] = []
        self.fail_next = 0
        self.runners: list[web.AppRunner] = []
        self.https_port = self.http_port = 0

    async def _answer(self, request: web.Request, body: bytes, content_type: str) -> web.Response:
        fields = dict(request.query)
        if request.method == "POST":
            sent = (await request.read()).decode()
            if "\n" in sent:  # VizieR: an ASU script, one "-key=value" per line
                fields = dict(line.split("=", 1) for line in sent.splitlines() if "=" in line)
            else:
                fields = {k: v[0] for k, v in parse_qs(sent).items()}
        self.requests.append((request.path, fields))
        if self.fail_next:
            self.fail_next -= 1
            return web.Response(status=503, text="Service Unavailable")
        return web.Response(body=body, content_type=content_type)

    async def start(self, cert: Path, key: Path) -> None:
        async def vizier(request):
            return await self._answer(request, APASS_VOT.read_bytes(), "text/xml")

        async def gaia(request):
            return await self._answer(request, GAIA_VOT.read_bytes(), "text/xml")

        async def sdss(request):
            return await self._answer(request, SDSS_CSV.read_bytes(), "text/plain")

        https = web.Application()
        https.router.add_post("/viz-bin/votable", vizier)
        http = web.Application()
        http.router.add_post("/tap-server/tap/sync", gaia)
        http.router.add_get("/dr17/en/tools/search/x_results.aspx", sdss)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        for app, tls in ((https, context), (http, None)):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
            await site.start()
            self.runners.append(runner)
            port = site._server.sockets[0].getsockname()[1]
            if tls:
                self.https_port = port
            else:
                self.http_port = port

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


class SilentServer:
    """Accepts connections and never answers (a hung archive)."""

    def __init__(self):
        self.writers: list[asyncio.StreamWriter] = []
        self.server = None
        self.port = 0

    async def start(self) -> None:
        async def hold(reader, writer):
            self.writers.append(writer)
            await reader.read()  # until the client gives up

        self.server = await asyncio.start_server(hold, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for writer in self.writers:
            writer.close()
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def archives(tmp_path, monkeypatch):
    cert, key = _self_signed(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = RecordedArchives()
    await server.start(cert, key)
    try:
        yield server
    finally:
        await server.stop()


def _settings(archives: RecordedArchives, *surveys: str, **kw) -> OnlineSettings:
    return OnlineSettings(enabled=frozenset(surveys), vizier_server=f"127.0.0.1:{archives.https_port}",
                          gaia_server=f"http://127.0.0.1:{archives.http_port}/",
                          sdss_server=f"http://127.0.0.1:{archives.http_port}", **kw)


def _within(path: Path, ra_col: str, dec_col: str, radius: float) -> int:
    table = Table.read(path, format="votable", use_names_over_ids=True) if path.suffix == ".vot" else \
        Table.read(path, format="ascii.csv", comment="#")
    return int((separation_deg(RA0, DEC0, np.asarray(table[ra_col]), np.asarray(table[dec_col])) <= radius).sum())


async def test_vizier_answer_is_replayed_cached_by_tile_and_then_served_locally(mongo_db, archives):
    source = ReferenceSource(RefcatStore(mongo_db), _settings(archives, "APASS"))
    first = await source.cone(RA0, DEC0, 0.25)
    assert first.coverage["APASS"].status == "fetched", first.coverage
    [stars] = first.stars
    assert stars.survey == "APASS" and stars.version == "DR9"
    assert len(stars) == _within(APASS_VOT, "RAJ2000", "DEJ2000", 0.25) > 5
    assert set(stars.mags) == {"B", "V", "g", "r", "i"} and np.all(stars.mag_errs["V"] > 0)
    [(path, form)] = archives.requests
    assert path == "/viz-bin/votable" and form["-source"] == "II/336/apass9"
    assert form["-c"] == "150.00000000+2.00000000" and form["-out.max"] == "50000" and "'" in form["-out"]

    again = await source.cone(RA0, DEC0, 0.25)
    assert again.coverage["APASS"].status == "covered" and len(archives.requests) == 1
    assert np.array_equal(np.sort(again.stars[0].ra_deg), np.sort(stars.ra_deg))
    inner = await source.cone(RA0 + 0.05, DEC0, 0.1)
    assert inner.coverage["APASS"].status == "covered" and len(archives.requests) == 1

    record = await source.store.get_survey("APASS", with_coverage=True)
    assert record["origins"] == ["archive:vizier:II/336/apass9"] and record["fetches"] == 1
    assert cov.fraction(cov.cone(RA0, DEC0, 0.25), cov.from_text(record["moc"])) == 1.0
    # the store alone (calibration's old call) now answers the same field
    [local] = await RefcatStore(mongo_db).cone(RA0, DEC0, 0.25)
    assert len(local) == len(stars)


async def test_gaia_tap_answer_with_proper_motions_and_epoch(mongo_db, archives):
    source = ReferenceSource(RefcatStore(mongo_db), _settings(archives, "GaiaDR3"))
    result = await source.cone(RA0, DEC0, 0.3, epoch_jyear=2016.0)
    assert result.coverage["GaiaDR3"].status == "fetched"
    [(path, form)] = archives.requests
    assert path == "/tap-server/tap/sync" and "gaiadr3.gaia_source" in form["QUERY"]
    assert "CIRCLE('ICRS', 150.00000000, 2.00000000" in form["QUERY"] and "phot_g_mean_mag < 19.0" in form["QUERY"]
    [stars] = result.stars
    assert stars.epoch == 2016.0 and stars.pmra is not None
    assert set(stars.mags) == {"G", "BP", "RP"} and np.all(stars.mag_errs["G"] >= 0.0027)

    moved = (await source.cone(RA0, DEC0, 0.3, epoch_jyear=2026.5)).stars[0]
    assert moved.epoch == 2026.5 and len(moved) == len(stars)
    order_a, order_b = np.argsort(stars.pmra), np.argsort(moved.pmra)
    ra, dec = propagate(stars.ra_deg[order_a], stars.dec_deg[order_a], stars.pmra[order_a], stars.pmdec[order_a], 10.5)
    np.testing.assert_allclose(moved.ra_deg[order_b], ra, atol=1e-10)
    np.testing.assert_allclose(moved.dec_deg[order_b], dec, atol=1e-10)
    fastest = order_a[-1]
    shift_arcsec = separation_deg(stars.ra_deg[fastest], stars.dec_deg[fastest], moved.ra_deg[order_b[-1]],
                                  moved.dec_deg[order_b[-1]]) * 3600
    pm = np.hypot(stars.pmra[fastest], stars.pmdec[fastest])
    assert shift_arcsec == pytest.approx(pm * 10.5 / 1000, rel=1e-6) and shift_arcsec > 0.05
    assert len(archives.requests) == 1


async def test_sdss_skyserver_answer_with_derived_bands(mongo_db, archives):
    spec = ARCHIVES["SDSS"]
    from dataclasses import replace

    source = ReferenceSource(RefcatStore(mongo_db), _settings(archives, "SDSS"),
                             archives={"SDSS": replace(spec, derive=("B", "V", "R", "I"))})
    result = await source.cone(RA0, DEC0, 0.3)
    assert result.coverage["SDSS"].status == "fetched", result.coverage
    [(path, query)] = archives.requests
    assert path.endswith("x_results.aspx") and "fGetNearbyObjEq(150.00000000, 2.00000000" in query["cmd"]
    assert query["format"] == "csv"
    [stars] = result.stars
    assert len(stars) == _within(SDSS_CSV, "ra", "dec", 0.3)
    assert stars.derived == frozenset("BVRI") and {"u", "g", "r", "i", "z"} < set(stars.mags)
    g, r, eg, er = stars.mags["g"], stars.mags["r"], stars.mag_errs["g"], stars.mag_errs["r"]
    np.testing.assert_allclose(stars.mags["B"], g + 0.3130 * (g - r) + 0.2271, atol=1e-9)
    np.testing.assert_allclose(stars.mag_errs["B"], np.sqrt((1.313 * eg) ** 2 + (0.313 * er) ** 2 + 0.0107 ** 2),
                               atol=1e-9)
    record = await source.store.get_survey("SDSS")
    assert record["derived"] == {"B": "sdss", "V": "sdss", "R": "sdss", "I": "sdss"}


async def test_three_archives_in_one_call_and_a_retry_after_http_503(mongo_db, archives):
    settings = _settings(archives, "APASS", "GaiaDR3", "SDSS", retries=2, backoff_s=0.05)
    source = ReferenceSource(RefcatStore(mongo_db), settings)
    archives.fail_next = 1
    result = await source.cone(RA0, DEC0, 0.2)
    assert {n: c.status for n, c in result.coverage.items()} == {"APASS": "fetched", "GaiaDR3": "fetched",
                                                                 "SDSS": "fetched"}
    assert [s.survey for s in result.stars] == ["APASS", "GaiaDR3", "SDSS"]
    assert len(archives.requests) == 4  # one of the three was answered 503 first and asked again


async def test_field_outside_a_footprint_or_coverage_makes_no_query(mongo_db, archives):
    class CountingStore(RefcatStore):
        fetches = 0

        async def fetch_blocks(self, *args, **kwargs):
            CountingStore.fetches += 1
            return await super().fetch_blocks(*args, **kwargs)

    store = CountingStore(mongo_db)
    field = simulate_field(ra_deg=RA0, dec_deg=DEC0, radius_arcmin=20, n_stars=300, seed=31)
    await store.import_table(field.reference, "APASS", version="synthetic-x")

    south = await ReferenceSource(store, _settings(archives, "PS1")).cone(200.0, -60.0, 0.2)
    assert south.coverage["PS1"].status == "outside"
    assert "outside the survey's footprint" in south.coverage["PS1"].message
    assert south.coverage["APASS"].status == "outside" and "outside the survey's coverage" in \
        south.coverage["APASS"].message
    assert south.stars == [] and CountingStore.fetches == 0
    north = await ReferenceSource(store, _settings(archives, "SkyMapper")).cone(RA0, 40.0, 0.2)
    assert north.coverage["SkyMapper"].status == "outside" and north.stars == []
    assert archives.requests == [] and CountingStore.fetches == 0

    half = await ReferenceSource(store).cone(RA0 + 0.4, DEC0, 0.2)
    assert half.coverage["APASS"].status == "partial" and 0 < half.coverage["APASS"].fraction < 1
    assert "covers only" in half.coverage["APASS"].message and CountingStore.fetches == 1


@pytest.mark.parametrize("survey", ["APASS", "GaiaDR3"])
async def test_archive_that_never_answers_gives_a_clear_outcome_in_time(mongo_db, survey):
    silent = SilentServer()
    await silent.start()
    try:
        settings = OnlineSettings(enabled=frozenset({survey}), timeout_s=1.5, retries=3, backoff_s=0.1,
                                  vizier_server=f"127.0.0.1:{silent.port}", gaia_server=f"http://127.0.0.1:{silent.port}/")
        source = ReferenceSource(RefcatStore(mongo_db), settings)
        started = time.monotonic()
        result = await source.cone(RA0, DEC0, 0.2)
        elapsed = time.monotonic() - started
    finally:
        await silent.stop()
    outcome = result.coverage[survey]
    assert outcome.status == "unreachable" and result.stars == []
    assert outcome.message.startswith(f"no reference coverage from {survey}: archive unreachable")
    assert elapsed < 1.5 + 1.0, elapsed
    assert await RefcatStore(mongo_db).get_survey(survey) is None  # nothing cached


async def test_refused_connection_is_retried_with_backoff_then_reported(mongo_db, unused_tcp_port):
    pauses = []

    async def sleep(seconds):
        pauses.append(seconds)

    settings = OnlineSettings(enabled=frozenset({"SDSS"}), timeout_s=10, retries=2, backoff_s=0.2,
                              sdss_server=f"http://127.0.0.1:{unused_tcp_port}")
    result = await ReferenceSource(RefcatStore(mongo_db), settings, sleep=sleep).cone(RA0, DEC0, 0.2)
    outcome = result.coverage["SDSS"]
    assert outcome.status == "unreachable" and "cannot connect" in outcome.message
    assert "after 3 attempts" in outcome.message and pauses == [0.2, 0.4]


async def test_online_access_is_off_by_default(mongo_db):
    assert OnlineSettings.from_env({}).enabled == frozenset()
    settings = OnlineSettings.from_env({"CPCS_REFCAT_ONLINE": "apass, GaiaDR3", "CPCS_REFCAT_TIMEOUT_S": "5"})
    assert settings.is_enabled("APASS") and settings.is_enabled("gaiadr3") and not settings.is_enabled("PS1")
    assert settings.timeout_s == 5.0
    with pytest.raises(ValueError, match="Hipparcos, which has no archive"):
        OnlineSettings.from_env({"CPCS_REFCAT_ONLINE": "Hipparcos"})
    result = await ReferenceSource(RefcatStore(mongo_db)).cone(RA0, DEC0, 0.2)
    assert result.stars == [] and result.coverage == {}
