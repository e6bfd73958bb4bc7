"""Survey names, versions and repeated imports on the real database server, through the CLI functions an
operator runs (``cpcs refcat import ...``): an alias imports into its canonical survey and a forceFilter
with the alias finds it; versions never mix; the same or an overlapping file never duplicates a star; the
demo's synthetic field has its own survey, so real APASS imports after ``make up``."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table, vstack
from typer.testing import CliRunner

from services.calibration.science.calibrate import calibrate
from services.demo import DEMO_DEC_DEG, DEMO_RA_DEG, DEMO_VERSION, load_demo
from shared.catalogue import read_catalogue
from shared.refcat.cli import app
from shared.refcat.store import BLOCKS, RefcatStore
from shared.refcat.surveys import DEMO_SURVEY
from shared.simfield import simulate_field
from tests.support.system import delete_topology, settings_for

pytestmark = pytest.mark.integration

#: A real VizieR answer: UCAC4 around (299.3, +35.1) with its APASS B V g r i columns (1,607 rows).
UCAC4_APASS = ("refcats", "vizier_ucac4_ra299.3_dec35.1.csv")
UCAC4_ROWS = 1607


@pytest.fixture
async def demo_settings(mongo_url, amqp_url, mongo_db):
    """Settings for loading the demo into ``mongo_db``; the exchange it announces the event on is removed after."""
    from shared.messaging import Broker

    settings = settings_for(mongo_url, amqp_url, mongo_db.name)
    yield settings
    broker = Broker(amqp_url, settings.exchange)
    await broker.start()
    try:
        await delete_topology(broker, settings.exchange)
    finally:
        await broker.close()


@pytest.fixture
def cli(mongo_url, mongo_db):
    """``cpcs refcat ARGS`` against the test's database: (exit code, output)."""
    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, [*args, "--mongo-url", mongo_url, "--db", mongo_db.name])
        return result.exit_code, result.output
    return run


@pytest.fixture
def ucac4(shared_data):
    return shared_data.joinpath(*UCAC4_APASS)


async def _star_count(mongo_db, survey: str) -> int:
    blocks = await mongo_db[BLOCKS].find({"survey": survey}, {"n": 1}).to_list(None)
    return sum(int(b["n"]) for b in blocks)


def _refcat2_csv(field, path):
    """A simulated field written in the ATLAS-RefCat2 VizieR layout (what `--survey REFCAT2` expects)."""
    ref = field.reference
    Table({"RA_ICRS": ref["RAJ2000"], "DE_ICRS": ref["DEJ2000"], "gmag": ref["g'mag"], "e_gmag": ref["e_g'mag"],
           "rmag": ref["r'mag"], "e_rmag": ref["e_r'mag"], "imag": ref["i'mag"], "e_imag": ref["e_i'mag"]}
          ).write(path, format="ascii.csv", overwrite=True)
    return path


async def test_refcat2_alias_import_then_force_filter_refcat2_is_accepted(mongo_db, tmp_path, cli):
    field = simulate_field(ra_deg=40.0, dec_deg=10.0, radius_arcmin=10, n_stars=600, seed=31, zeropoint_mag=25.0,
                           band="i", target_mag=16.8)
    csv = _refcat2_csv(field, tmp_path / "refcat2_field.csv")
    code, out = cli("import", str(csv), "--survey", "REFCAT2", "--synthetic")
    assert code == 0, out
    assert "imported 600 stars" in out and "into survey ATLAS RefCat2" in out
    store = RefcatStore(mongo_db)
    record = await store.get_survey("refcat2")
    assert record["name"] == "ATLAS" and record["version"] == "RefCat2" and record["synthetic"] is True

    [refs] = await store.cone(40.0, 10.0, 0.25, surveys=["REFCAT2"])
    assert refs.survey == "ATLAS"
    stars = read_catalogue(field.catalogue_text.encode(), filename="field_i.cat")
    truth = field.truth
    for forced in ("REFCAT2/i", "refcat2/i", "ATLAS-RefCat2/i", "ATLAS/i"):
        res = calibrate(stars, [refs], target_ra_deg=truth["target_ra_deg"], target_dec_deg=truth["target_dec_deg"],
                        force_filter=forced, declared_filter="i")
        assert res.status == "calibrated", (forced, res.reason)
        assert (res.survey, res.band, res.filter, res.mode) == ("ATLAS", "i", "ATLAS/i", "FORCED")
        assert res.requested_filter == forced
        assert res.mag == pytest.approx(truth["target_mag"], abs=max(0.05, 3 * res.total_err))
    refused = calibrate(stars, [refs], target_ra_deg=truth["target_ra_deg"], target_dec_deg=truth["target_dec_deg"],
                        force_filter="PS1/i", declared_filter="i")
    assert refused.status == "failed" and "filter 'PS1/i' is not available" in refused.reason
    assert "ATLAS/i" in refused.reason


async def test_apassdr9_alias_never_merges_into_another_version(mongo_db, ucac4, cli):
    store = RefcatStore(mongo_db)
    field = simulate_field(ra_deg=299.3, dec_deg=35.1, radius_arcmin=5, n_stars=54, seed=32)
    await store.import_table(field.reference, "apass", version=DEMO_VERSION, synthetic=True, source_name="simfield")
    before = await store.get_survey("APASS")

    code, out = cli("import", str(ucac4), "--survey", "APASSDR9", "--preset", "apass9")
    assert code == 2 and "already holds version 'synthetic-demo-1', not 'DR9'" in out, out
    code, out = cli("import", str(ucac4), "--survey", "APASSDR9", "--version", "DR10")
    assert code == 2 and "means APASS DR9" in out, out
    code, out = cli("import", str(ucac4), "--survey", "APASS", "--version", DEMO_VERSION, "--real")
    assert code == 2 and "would mix synthetic and real stars" in out, out
    after = await store.get_survey("APASS")
    assert (after["rows"], after["version"], len(after["files"])) == (54, DEMO_VERSION, 1) == \
        (before["rows"], before["version"], len(before["files"]))
    assert await _star_count(mongo_db, "APASS") == 54

    code, out = cli("import", str(ucac4), "--survey", "APASSDR9", "--preset", "apass9", "--replace")
    assert code == 0 and f"imported {UCAC4_ROWS} stars" in out and "into survey APASS DR9" in out, out
    record = await store.get_survey("APASS")
    assert (record["version"], record["synthetic"], record["rows"]) == ("DR9", False, UCAC4_ROWS)
    assert [f["version"] for f in record["files"]] == ["DR9"]
    assert await _star_count(mongo_db, "APASS") == UCAC4_ROWS


async def test_importing_the_same_file_twice_leaves_the_star_count_unchanged(mongo_db, ucac4, cli):
    code, out = cli("import", str(ucac4), "--survey", "APASS")
    assert code == 0 and f"imported {UCAC4_ROWS} stars" in out, out
    store = RefcatStore(mongo_db)
    [first] = await store.cone(299.3, 35.1, 0.5, surveys=["APASS"])
    for alias in ("APASS", "apassdr9"):  # again, also under an alias of the same survey
        code, out = cli("import", str(ucac4), "--survey", alias)
        assert code == 0, out
        assert "imported 0 stars" in out and f"({UCAC4_ROWS} stars the survey already held were skipped)" in out
    record = await store.get_survey("APASS")
    assert record["rows"] == UCAC4_ROWS == await _star_count(mongo_db, "APASS")
    assert [f["duplicates_skipped"] for f in record["files"]] == [0, UCAC4_ROWS, UCAC4_ROWS]
    [again] = await store.cone(299.3, 35.1, 0.5, surveys=["APASS"])
    assert len(again) == len(first) > 0
    np.testing.assert_array_equal(np.sort(again.ra_deg), np.sort(first.ra_deg))


async def test_an_overlapping_file_adds_only_the_stars_not_yet_stored(mongo_db, ucac4, tmp_path, cli):
    rows = Table.read(ucac4, format="ascii.csv")
    first, second = rows[:1000], rows[600:].copy()
    # the overlap as another export writes it: positions off by 0.02 arcsec (still the same stars) ...
    overlap = np.arange(400)
    cos_d = np.cos(np.radians(np.asarray(second["DEJ2000"], dtype=float)))
    second["RAJ2000"] = np.asarray(second["RAJ2000"], dtype=float)
    second["RAJ2000"][overlap] += 0.02 / 3600.0 / cos_d[overlap]
    # ... and a real neighbour 0.3 arcsec from a stored star, which is another star
    neighbour = rows[10:11].copy()
    neighbour["DEJ2000"] = np.asarray(neighbour["DEJ2000"], dtype=float) + 0.3 / 3600.0
    second = vstack([second, neighbour])
    first.write(tmp_path / "part1.csv", format="ascii.csv")
    second.write(tmp_path / "part2.csv", format="ascii.csv")

    code, out = cli("import", str(tmp_path / "part1.csv"), "--survey", "APASS")
    assert code == 0 and "imported 1000 stars" in out, out
    code, out = cli("import", str(tmp_path / "part2.csv"), "--survey", "APASS")
    assert code == 0, out
    assert f"imported {UCAC4_ROWS - 1000 + 1} stars" in out
    assert "(400 stars the survey already held were skipped)" in out
    store = RefcatStore(mongo_db)
    assert (await store.get_survey("APASS"))["rows"] == UCAC4_ROWS + 1 == await _star_count(mongo_db, "APASS")
    [stars] = await store.cone(299.3, 35.1, 0.4, surveys=["APASS"])
    ra, dec = np.asarray(rows["RAJ2000"], dtype=float), np.asarray(rows["DEJ2000"], dtype=float)
    inside = SkyCoord(ra, dec, unit="deg").separation(SkyCoord(299.3, 35.1, unit="deg")).deg <= 0.4
    extra = SkyCoord(float(neighbour["RAJ2000"][0]), float(neighbour["DEJ2000"][0]), unit="deg").separation(
        SkyCoord(299.3, 35.1, unit="deg")).deg <= 0.4
    assert len(stars) == int(inside.sum()) + int(extra)


async def test_a_newer_version_replaces_the_survey_and_is_recorded(mongo_db, ucac4, cli):
    code, out = cli("import", str(ucac4), "--survey", "APASS")
    assert code == 0, out
    code, out = cli("import", str(ucac4), "--survey", "APASS", "--version", "DR10")
    assert code == 2 and "already holds version 'DR9', not 'DR10'" in out, out
    code, out = cli("import", str(ucac4), "--survey", "APASS", "--version", "DR10", "--replace")
    assert code == 0 and f"imported {UCAC4_ROWS} stars" in out and "APASS DR10" in out, out
    store = RefcatStore(mongo_db)
    record = await store.get_survey("APASS")
    assert (record["version"], record["rows"]) == ("DR10", UCAC4_ROWS)
    assert [(f["version"], f["rows"]) for f in record["files"]] == [("DR10", UCAC4_ROWS)]
    assert await _star_count(mongo_db, "APASS") == UCAC4_ROWS
    [stars] = await store.cone(299.3, 35.1, 0.3, surveys=["APASS"])
    assert stars.version == "DR10"


async def test_real_apass_imports_after_the_demo_is_loaded(mongo_db, demo_settings, ucac4, tmp_path, cli):
    settings = demo_settings
    info = await load_demo(out_dir=tmp_path / "demo", settings=settings)
    assert info["reference"] == f"{DEMO_SURVEY} {DEMO_VERSION}"
    code, out = cli("import", str(ucac4), "--survey", "APASS")
    assert code == 0 and f"imported {UCAC4_ROWS} stars" in out and "APASS DR9" in out, out
    await load_demo(out_dir=tmp_path / "demo", settings=settings)  # make up again: nothing doubled or touched
    store = RefcatStore(mongo_db)
    surveys = {s["name"]: s for s in await store.list_surveys()}
    assert set(surveys) == {"APASS", DEMO_SURVEY}
    assert (surveys["APASS"]["version"], surveys["APASS"]["synthetic"], surveys["APASS"]["rows"]) == \
        ("DR9", False, UCAC4_ROWS)
    demo = surveys[DEMO_SURVEY]
    assert (demo["version"], demo["synthetic"], demo["rows"]) == (DEMO_VERSION, True, 600)
    assert demo["systems"] == {"B": "Vega", "V": "Vega", "g": "AB", "r": "AB", "i": "AB"}
    # calibrating near the demo field gets the synthetic survey under its own name, never as APASS
    assert [s.survey for s in await store.cone(DEMO_RA_DEG, DEMO_DEC_DEG, 0.2)] == [DEMO_SURVEY]
    assert await store.cone(DEMO_RA_DEG, DEMO_DEC_DEG, 0.2, surveys=["APASS"]) == []
    code, out = cli("import", str(ucac4), "--survey", DEMO_SURVEY, "--version", "DR9")
    assert code == 2 and "synthetic demo field" in out, out


async def test_the_demo_moves_its_old_synthetic_apass_out_of_the_way(mongo_db, demo_settings, tmp_path):
    from services.demo import demo_field

    store = RefcatStore(mongo_db)
    await store.import_table(demo_field().reference, "apass", version=DEMO_VERSION, synthetic=True,
                             source_name="simfield")  # what `make up` stored before the demo had its own name
    await load_demo(out_dir=tmp_path / "demo", settings=demo_settings)
    assert [s["name"] for s in await store.list_surveys()] == [DEMO_SURVEY]
    assert await _star_count(mongo_db, "APASS") == 0
