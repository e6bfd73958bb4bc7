"""The reference-catalogue store on a real MongoDB-protocol server (nx-27017 unless CPCS_TEST_MONGO_URL)."""
from __future__ import annotations

import asyncio
import warnings

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io.fits.verify import VerifyWarning
from astropy.table import Table, vstack
from typer.testing import CliRunner

from shared.refcat.cli import app
from shared.refcat.importer import import_file, import_simulated_field
from shared.refcat.presets import RefcatError, StarColumns, get_preset
from shared.refcat.store import BLOCKS, SURVEYS, RefcatStore, SurveyInfo
from shared.refcat.surveys import DEMO_SURVEY
from shared.simfield import SYNTHETIC_VERSION, simulate_field, write_reference_csv

pytestmark = pytest.mark.integration

GAIA_DR2_LDAC = ("catalogues", "lco_cpt1m013_kb76_w_GAIA-DR2_refcat_LDAC.cat")
GAIA_DR3_ECSV = ("refcats", "astroquery_gaia_dr3_cone_5rows.ecsv")


def _brute_force(ref, ra0: float, dec0: float, radius_deg: float) -> np.ndarray:
    """Indices of the reference rows within the radius, by astropy's own separation."""
    coords = SkyCoord(np.asarray(ref["RAJ2000"], dtype=float), np.asarray(ref["DEJ2000"], dtype=float), unit="deg")
    return np.flatnonzero(coords.separation(SkyCoord(ra0, dec0, unit="deg")).deg <= radius_deg)


def _assert_same_stars(stars, ref, expected: np.ndarray, band: str = "r", column: str = "r'mag") -> None:
    assert len(stars) == expected.size
    got = np.lexsort((stars.dec_deg, stars.ra_deg))
    want = np.lexsort((np.asarray(ref["DEJ2000"])[expected], np.asarray(ref["RAJ2000"])[expected]))
    np.testing.assert_array_equal(stars.ra_deg[got], np.asarray(ref["RAJ2000"], dtype=float)[expected][want])
    np.testing.assert_array_equal(stars.dec_deg[got], np.asarray(ref["DEJ2000"], dtype=float)[expected][want])
    np.testing.assert_allclose(stars.mags[band][got], np.asarray(ref[column], dtype=float)[expected][want])


async def test_cone_returns_exactly_the_stars_within_the_radius(mongo_db):
    field = simulate_field(ra_deg=150.0, dec_deg=2.0, radius_arcmin=40, n_stars=3000, seed=21)
    store = RefcatStore(mongo_db)
    assert await import_simulated_field(store, field) == 3000
    ref = field.reference
    for ra0, dec0, radius in [(150.0, 2.0, 10 / 60), (150.2, 2.1, 0.2), (149.6, 1.8, 0.25), (150.0, 2.0, 0.7)]:
        [stars] = await store.cone(ra0, dec0, radius)
        assert stars.survey == DEMO_SURVEY and stars.version == SYNTHETIC_VERSION
        _assert_same_stars(stars, ref, _brute_force(ref, ra0, dec0, radius))
        assert set(stars.mags) == set(stars.mag_errs) == {"B", "V", "g", "r", "i"}
        # masked B values of the reference came back as NaN
        np.testing.assert_array_equal(np.isnan(stars.mags["B"]).sum(),
                                      np.ma.count_masked(ref["Bmag"][_brute_force(ref, ra0, dec0, radius)]))
    assert await store.cone(200.0, 2.0, 0.2) == []


async def test_cone_across_ra_zero_and_near_the_pole(mongo_db):
    store = RefcatStore(mongo_db)
    wrap = simulate_field(ra_deg=0.05, dec_deg=-10.0, radius_arcmin=30, n_stars=800, seed=22)
    pole = simulate_field(ra_deg=45.0, dec_deg=89.8, radius_arcmin=30, n_stars=800, seed=23)
    both = vstack([wrap.reference, pole.reference], metadata_conflicts="silent")
    await store.import_table(both, "APASS", version="synthetic-test", synthetic=True)
    for ra0, dec0, radius in [(359.95, -10.0, 0.2), (0.1, -10.1, 0.3), (180.0, 89.9, 0.2), (45.0, 89.8, 0.5),
                              (300.0, 89.75, 0.1)]:
        [stars] = await store.cone(ra0, dec0, radius)
        expected = _brute_force(both, ra0, dec0, radius)
        assert expected.size > 20
        _assert_same_stars(stars, both, expected)
    crossing = (await store.cone(359.95, -10.0, 0.2))[0].ra_deg
    assert (crossing > 359).any() and (crossing < 1).any()


async def test_survey_filter_list_and_delete(mongo_db, shared_data):
    store = RefcatStore(mongo_db)
    field = simulate_field(ra_deg=219.72, dec_deg=-9.95, radius_arcmin=15, n_stars=500, seed=24)
    await import_simulated_field(store, field)
    n = await import_file(store, shared_data.joinpath(*GAIA_DR2_LDAC), survey="GaiaDR2")
    assert n == 249
    # a second survey from the same stars through an explicit mapping (names a preset does not know)
    mapped = await store.import_table(field.reference, "ra=RAJ2000,dec=DEJ2000,V=Vmag,V_err=e_Vmag",
                                      survey="MyCat", version="7")
    assert mapped == 500

    everything = await store.cone(219.72, -9.95, 0.2)
    assert [s.survey for s in everything] == ["GaiaDR2", "MyCat", DEMO_SURVEY]
    only = await store.cone(219.72, -9.95, 0.2, surveys=["gaia-dr2", "synth-demo", "apass", "nonexistent"])
    assert [s.survey for s in only] == ["GaiaDR2", DEMO_SURVEY]
    assert (await store.cone(219.72, -9.95, 0.2, surveys=["MyCat"]))[0].mags.keys() == {"V"}

    surveys = {s["name"]: s for s in await store.list_surveys()}
    assert {n: s["rows"] for n, s in surveys.items()} == {DEMO_SURVEY: 500, "GaiaDR2": 249, "MyCat": 500}
    demo = surveys[DEMO_SURVEY]
    assert demo["synthetic"] is True and "synthetic" in demo["description"].lower()
    assert demo["version"] == SYNTHETIC_VERSION
    assert surveys["GaiaDR2"]["synthetic"] is False and surveys["GaiaDR2"]["system"] == "Vega"
    assert surveys["GaiaDR2"]["bands"] == ["G"] and surveys["GaiaDR2"]["epoch"] == 2015.5
    assert demo["systems"] == {"B": "Vega", "V": "Vega", "g": "AB", "r": "AB", "i": "AB"}
    assert surveys["MyCat"]["version"] == "7" and surveys["MyCat"]["files"][0]["rows"] == 500
    assert hasattr(surveys["GaiaDR2"]["imported_at"], "year")

    assert await store.delete_survey("synth-demo") == 500
    assert [s["name"] for s in await store.list_surveys()] == ["GaiaDR2", "MyCat"]
    assert await mongo_db[BLOCKS].count_documents({"survey": DEMO_SURVEY}) == 0
    assert [s.survey for s in await store.cone(219.72, -9.95, 0.2)] == ["GaiaDR2", "MyCat"]
    with pytest.raises(RefcatError, match="no survey 'SYNTH-DEMO'"):
        await store.delete_survey(DEMO_SURVEY)


async def test_real_gaia_dr2_ldac_file(mongo_db, shared_data):
    path = shared_data.joinpath(*GAIA_DR2_LDAC)
    store = RefcatStore(mongo_db)
    assert await import_file(store, path, survey="gaiadr2") == 249
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)  # TDISP codes of the LDAC file astropy does not know
        table = Table.read(path, hdu="LDAC_OBJECTS")
    ra, dec = np.asarray(table["XWIN_WORLD"]), np.asarray(table["YWIN_WORLD"])
    centre = SkyCoord(ra, dec, unit="deg")
    ra0, dec0 = float(np.median(ra)), float(np.median(dec))
    [stars] = await store.cone(ra0, dec0, 1.0)
    assert stars.survey == "GaiaDR2" and stars.version == "DR2" and len(stars) == 249
    order = np.argsort(stars.mags["G"])
    np.testing.assert_allclose(stars.mags["G"][order], np.sort(np.asarray(table["MAG"], dtype=float)), atol=1e-5)
    assert np.all((stars.mag_errs["G"] > 0) & (stars.mag_errs["G"] < 0.5))
    within = centre.separation(SkyCoord(ra0, dec0, unit="deg")).deg <= 0.05
    assert len((await store.cone(ra0, dec0, 0.05))[0]) == within.sum() > 0


async def test_gaia_archive_ecsv(mongo_db, shared_data):
    store = RefcatStore(mongo_db)
    path = shared_data.joinpath(*GAIA_DR3_ECSV)
    assert await import_file(store, path, survey="GaiaDR3", preset="gaia-archive") == 5
    [stars] = await store.cone(280.0, -60.0, 0.05)
    assert stars.survey == "GaiaDR3" and len(stars) == 5
    assert np.all(np.isfinite(stars.mags["G"])) and np.all(stars.mag_errs["G"] > 0.0027)
    record = (await store.list_surveys())[0]
    assert record["bands"] == ["G", "BP", "RP"] and record["epoch"] == 2016.0


async def test_csv_import_in_chunks_and_binary_blocks(mongo_db, tmp_path):
    field = simulate_field(ra_deg=10.0, dec_deg=40.0, radius_arcmin=30, n_stars=2000, seed=25)
    path = write_reference_csv(field, tmp_path / "apass.csv")
    lists = RefcatStore(mongo_db, block_rows=50)
    assert await import_file(lists, path, survey="APASS", version="synthetic-x", chunk_rows=300) == 2000
    record = (await lists.list_surveys())[0]
    assert record["synthetic"] is True and record["rows"] == 2000
    assert record["blocks"] == await mongo_db[BLOCKS].count_documents({"survey": "APASS"})
    binary = RefcatStore(mongo_db, encoding="binary")
    await binary.import_table(field.reference, "APASS", survey="ATLAS-copy", version="synthetic-x",
                              description="binary encoded copy")
    a, b = await lists.cone(10.1, 40.1, 0.3, surveys=["APASS", "ATLAS-copy"])
    assert (a.survey, b.survey) == ("APASS", "ATLAS-copy")
    _assert_same_stars(a, field.reference, _brute_force(field.reference, 10.1, 40.1, 0.3))
    _assert_same_stars(b, field.reference, _brute_force(field.reference, 10.1, 40.1, 0.3))
    for band in a.mags:
        np.testing.assert_array_equal(np.sort(a.mags[band]), np.sort(b.mags[band]))


async def test_version_guard_append_and_rollback(mongo_db):
    store = RefcatStore(mongo_db)
    field = simulate_field(ra_deg=100.0, dec_deg=0.0, n_stars=300, seed=26)
    await store.import_table(field.reference[:100], "APASS", version="DR9")
    await store.import_table(field.reference[100:], "APASS", version="DR9")  # a second file: appended
    [record] = await store.list_surveys()
    assert record["rows"] == 300 and len(record["files"]) == 2 and record["synthetic"] is False
    with pytest.raises(RefcatError, match="already holds version 'DR9'"):
        await store.import_table(field.reference, "APASS", version="DR10")
    assert await store.import_table(field.reference, "APASS", version="DR10", replace=True) == 300
    assert (await store.list_surveys())[0]["version"] == "DR10"

    def failing_chunks():
        yield get_preset("APASS").map_table(field.reference[:150])
        raise OSError("disk went away")

    info = SurveyInfo(name="PS1", version="DR1", bands=("g",), systems={"g": "AB"})
    with pytest.raises(OSError, match="disk went away"):
        await store.import_chunks(info, failing_chunks())
    assert [s["name"] for s in await store.list_surveys()] == ["APASS"]
    assert await mongo_db[BLOCKS].count_documents({"survey": "PS1"}) == 0
    assert await mongo_db[SURVEYS].count_documents({"name": "PS1"}) == 0

    empty = StarColumns(ra=np.array([np.nan]), dec=np.array([1.0]), mags={}, errs={})
    assert await store.import_chunks(SurveyInfo(name="Empty", version="1"), [empty]) == 0


async def test_cone_argument_checks(mongo_db):
    store = RefcatStore(mongo_db)
    with pytest.raises(ValueError, match="radius"):
        await store.cone(10.0, 10.0, 10.0)
    with pytest.raises(ValueError, match="centre"):
        await store.cone(10.0, 91.0, 0.1)
    assert await store.cone(10.0, 10.0, 0.1) == []


def test_cli_import_list_delete(mongo_url, unique_name, tmp_path, shared_data):
    field = simulate_field(ra_deg=30.0, dec_deg=-20.0, n_stars=400, seed=27)
    csv = write_reference_csv(field, tmp_path / "demo.csv")
    runner = CliRunner()
    common = ["--mongo-url", mongo_url, "--db", unique_name]
    try:
        result = runner.invoke(app, ["import", str(csv), "--survey", "apass", "--version", SYNTHETIC_VERSION, *common])
        assert result.exit_code == 0, result.output
        assert "imported 400 stars" in result.output and "APASS" in result.output
        result = runner.invoke(app, ["import", str(shared_data.joinpath(*GAIA_DR2_LDAC)), "--survey", "GaiaDR2",
                                     *common])
        assert result.exit_code == 0, result.output
        result = runner.invoke(app, ["import", str(csv), "--survey", "Custom", "--columns",
                                     "ra=RAJ2000,dec=DEJ2000,r=r'mag,r_err=e_r'mag", *common])
        assert result.exit_code == 0, result.output

        result = runner.invoke(app, ["list", *common])
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[0].split()[:3] == ["survey", "version", "stars"]
        apass = next(line for line in lines if line.startswith("APASS"))
        assert SYNTHETIC_VERSION in apass and " 400 " in apass and "yes" in apass
        assert any(line.startswith("GaiaDR2") and " 249 " in line for line in lines)

        # operator mistakes: one sentence on stderr, exit status 2, no traceback
        for args, words in [
            (["import", str(csv), "--survey", "Hipparcos"], "no preset for survey 'Hipparcos'"),
            (["import", str(csv), "--survey", "PS1"], "none of its magnitude columns"),
            (["import", str(csv), "--survey", "X", "--columns", "ra=RAJ2000,dec=DEJ2000,V=nope"],
             "V magnitude (tried nope)"),
            (["import", str(tmp_path / "missing.csv"), "--survey", "APASS"], "does not exist"),
            (["import", str(shared_data / "catalogues" / "lco_LDAC_CORRUPT_missing_END.fits"), "--survey",
              "GaiaDR2"], "cannot read"),
            (["import", str(csv), "--survey", "APASS", "--version", "DR9"], "already holds version"),
            (["delete", "nothing"], "no survey 'nothing'"),
        ]:
            result = runner.invoke(app, [*args, *common])
            assert result.exit_code == 2, (args, result.output)
            assert words.lower() in result.output.lower() and "Traceback" not in result.output, result.output
            assert len(result.output.strip().splitlines()) == 1

        result = runner.invoke(app, ["delete", "apass", *common])
        assert result.exit_code == 0 and "deleted survey APASS (400 stars)" in result.output
        result = runner.invoke(app, ["list", "--json", *common])
        assert '"APASS"' not in result.output and '"GaiaDR2"' in result.output
    finally:
        asyncio.run(_drop(mongo_url, unique_name))


def test_cli_unreachable_server_is_one_sentence(tmp_path):
    field = simulate_field(ra_deg=30.0, dec_deg=-20.0, n_stars=10, seed=28)
    csv = write_reference_csv(field, tmp_path / "demo.csv")
    result = CliRunner().invoke(app, ["import", str(csv), "--survey", "APASS", "--mongo-url",
                                      "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300"])
    assert result.exit_code == 2
    assert "No MongoDB server answers" in result.output


async def _drop(url: str, name: str) -> None:
    from pymongo import AsyncMongoClient

    client = AsyncMongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


async def test_blocks_read_once_are_answered_from_memory_until_the_survey_changes(mongo_db):
    """A field asked for again is served from memory; an import that changes the survey's record (here by
    another store object, as another service would) is seen as soon as the record is read again."""
    field = simulate_field(ra_deg=150.0, dec_deg=2.0, radius_arcmin=20, n_stars=1500, seed=31)
    reader, writer = RefcatStore(mongo_db), RefcatStore(mongo_db)
    assert await import_simulated_field(writer, field) == 1500
    [first] = await reader.cone(150.0, 2.0, 0.2)
    stored = await mongo_db[BLOCKS].find({}, {"_id": 0}).to_list(None)
    await mongo_db[BLOCKS].delete_many({})  # behind the store's back: only memory can answer now
    [again] = await reader.cone(150.0, 2.0, 0.2)
    np.testing.assert_array_equal(again.ra_deg, first.ra_deg)
    await mongo_db[BLOCKS].insert_many(stored)

    more = simulate_field(ra_deg=150.05, dec_deg=2.02, radius_arcmin=5, n_stars=200, seed=32)
    await writer.import_table(more.reference, "apass9", survey=DEMO_SURVEY, version=SYNTHETIC_VERSION,
                              synthetic=True, source_name="more")
    reader.invalidate_records()  # the records' TTL has passed
    [after] = await reader.cone(150.0, 2.0, 0.2)
    assert len(after) > len(first)
    ref = vstack([field.reference, more.reference], metadata_conflicts="silent")
    _assert_same_stars(after, ref, _brute_force(ref, 150.0, 2.0, 0.2))


async def test_the_block_memory_is_bounded_in_stars(mongo_db):
    field = simulate_field(ra_deg=150.0, dec_deg=2.0, radius_arcmin=40, n_stars=3000, seed=33)
    store = RefcatStore(mongo_db, block_cache_rows=500)
    await import_simulated_field(store, field)
    for ra0 in (149.6, 150.0, 150.4):
        await store.cone(ra0, 2.0, 0.3)
    assert 0 < store._cached_rows <= 500 + max(int(d["n"]) for d in await mongo_db[BLOCKS].find({}).to_list(None))
