"""Bulk import into the store on the real database server: streaming formats (CSV, ECSV, Parquet, a
Parquet folder, HATS, VOTable by UCD), the resume journal, block compaction, coverage maps, proper
motions, derived bands, and the query options (box, bands, magnitude limits)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from typer.testing import CliRunner

from shared.refcat import coverage as cov
from shared.refcat.astrometry import propagate
from shared.refcat.cli import app
from shared.refcat.importer import import_file, open_source
from shared.refcat.presets import RefcatError
from shared.refcat.store import BLOCKS, RefcatStore

pytestmark = pytest.mark.integration

HATS = Path(__file__).resolve().parents[1] / "data" / "refcat" / "hats_refcat2_small"
COLUMNS = ["RA_ICRS", "DE_ICRS", "pmRA", "pmDE", "gmag", "e_gmag", "rmag", "e_rmag", "imag", "e_imag"]


def refcat2_rows(n: int, seed: int, ra0: float = 40.0, dec0: float = 10.0, half: float = 1.0) -> dict:
    """ATLAS-RefCat2-layout stars in a square around (ra0, dec0), in random order."""
    rng = np.random.default_rng(seed)
    r = rng.uniform(12, 18.5, n)
    out = {"RA_ICRS": ra0 + rng.uniform(-half, half, n) / np.cos(np.radians(dec0)),
           "DE_ICRS": dec0 + rng.uniform(-half, half, n),
           "pmRA": np.round(rng.normal(0, 20, n), 3), "pmDE": np.round(rng.normal(0, 20, n), 3)}
    for band, m in (("g", r + 0.5), ("r", r), ("i", r - 0.2)):
        out[f"{band}mag"] = np.round(m, 4)
        out[f"e_{band}mag"] = np.round(0.01 + 0.002 * (m - 12), 4)
    return out


def write_csv(path: Path, rows: dict) -> Path:
    Table(rows).write(path, format="ascii.csv", overwrite=True)
    return path


def brute(rows: dict, ra0: float, dec0: float, radius: float) -> np.ndarray:
    sep = SkyCoord(rows["RA_ICRS"], rows["DE_ICRS"], unit="deg").separation(SkyCoord(ra0, dec0, unit="deg")).deg
    return np.flatnonzero(sep <= radius)


class Interrupt(Exception):
    pass


def stop_after(chunks: int):
    seen = []

    def progress(n):
        seen.append(n)
        if len(seen) > chunks:
            raise Interrupt("operator pressed Ctrl-C")
    return progress, seen


@pytest.mark.parametrize("kind", ["csv", "parquet"])
async def test_interrupted_import_resumes_after_the_last_stored_chunk(mongo_db, tmp_path, kind):
    if kind == "csv":  # the CSV reader cuts chunks of at least 1 MB of text (~11,000 rows here)
        total = 40_000
        rows = refcat2_rows(total, seed=41)
        path = write_csv(tmp_path / "refcat2.csv", rows)
        chunk_rows, buffer_rows, interrupt_after = 300, 5000, 2
    else:
        total = 3000
        rows = refcat2_rows(total, seed=41)
        path = tmp_path / "refcat2.parquet"
        pq.write_table(pa.table(rows), path, row_group_size=700)
        chunk_rows, buffer_rows, interrupt_after = 250, 500, 5
    n_chunks = sum(1 for _ in open_source(path, chunk_rows=chunk_rows).chunks())
    store = RefcatStore(mongo_db, buffer_rows=buffer_rows)
    progress, seen = stop_after(interrupt_after)
    with pytest.raises(Interrupt):
        await import_file(store, path, survey="ATLAS", version="synthetic-t", chunk_rows=chunk_rows, progress=progress)
    record = await store.get_survey("ATLAS", with_coverage=True)
    assert record["status"] == "importing" and record["journal"]["chunks_done"] >= 1
    assert await store.cone(40.0, 10.0, 0.5) == []  # an unfinished import is invisible
    done_before = record["journal"]["chunks_done"]

    with pytest.raises(RefcatError, match="is running or was interrupted"):
        await import_file(store, path, survey="ATLAS", version="synthetic-t", chunk_rows=chunk_rows + 1)
    resumed, seen2 = stop_after(10**6)
    stored = await import_file(store, path, survey="ATLAS", version="synthetic-t", chunk_rows=chunk_rows,
                               progress=resumed)
    assert len(seen2) == n_chunks - done_before  # only the chunks after the journal's were read again
    assert stored == total - record["journal"]["rows"]
    record = await store.get_survey("ATLAS", with_coverage=True)
    assert record["rows"] == total and record["status"] == "ready" and "journal" not in record
    [stars] = await store.cone(40.0, 10.0, 0.6)
    want = brute(rows, 40.0, 10.0, 0.6)
    assert len(stars) == want.size
    np.testing.assert_allclose(np.sort(stars.mags["r"]), np.sort(rows["rmag"][want]))
    # compaction: one block per pixel although the random-order stars came in several flushes
    blocks = await mongo_db[BLOCKS].find({"survey": "ATLAS"}, {"hp": 1, "flush": 1}).to_list(None)
    assert len(blocks) == len({b["hp"] for b in blocks}) == record["blocks"]


async def test_parquet_folder_hats_and_coverage(mongo_db, tmp_path):
    store = RefcatStore(mongo_db)
    rows = refcat2_rows(2000, seed=42)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i in range(4):
        part = {k: v[i * 500:(i + 1) * 500] for k, v in rows.items()}
        pq.write_table(pa.table(part), folder / f"part-{i}.parquet")
    source = open_source(folder)
    assert source.format == "parquet" and source.total == 2000
    assert await import_file(store, folder, survey="ATLAS", version="synthetic-p", chunk_rows=300) == 2000
    [stars] = await store.cone(40.0, 10.0, 0.5)
    assert len(stars) == brute(rows, 40.0, 10.0, 0.5).size and stars.pmra is not None and stars.epoch == 2015.5

    pytest.importorskip("hats", reason="HATS catalogues are read with the hats package")
    hats = open_source(HATS)
    assert hats.format == "hats" and hats.total == 1500 and "RA_ICRS" in hats.colnames()
    n = await import_file(store, HATS, survey="RefCat2-HATS", preset="atlas-refcat2", version="synthetic-h",
                          chunk_rows=200)
    assert n == 1500
    records = {r["name"]: r for r in await store.list_surveys()}
    assert records["RefCat2-HATS"]["proper_motions"] is True and records["RefCat2-HATS"]["rows"] == 1500
    moc = await store.coverage_of("RefCat2-HATS")
    assert cov.fraction(cov.cone(30.0, -20.0, 0.3), moc) == 1.0
    assert cov.fraction(cov.cone(40.0, 10.0, 0.3), moc) == 0.0
    assert 0 < records["RefCat2-HATS"]["sky_percent"] < 0.1
    result = await store.query(_cone(30.0, -20.0, 2.5))
    assert result.coverage["RefCat2-HATS"].status == "partial" and result.coverage["ATLAS"].status == "outside"
    assert sum(len(s) for s in result.stars) == 1500


def _cone(ra, dec, radius):
    from shared.refcat.query import cone_region

    return cone_region(ra, dec, radius)


async def test_ecsv_and_csv_stream_and_votable_by_ucd(mongo_db, tmp_path, shared_data):
    store = RefcatStore(mongo_db)
    rows = refcat2_rows(800, seed=43)
    table = Table(rows)
    table["RA_ICRS"].unit = "deg"
    table.write(tmp_path / "r.ecsv", format="ascii.ecsv", delimiter=",")
    assert await import_file(store, tmp_path / "r.ecsv", survey="ATLAS", version="synthetic-e") == 800
    assert await import_file(store, write_csv(tmp_path / "r.csv", rows), survey="ATLAS-csv", preset="refcat2",
                             version="synthetic-e") == 800
    a, b = await store.cone(40.0, 10.0, 0.7, surveys=["ATLAS", "ATLAS-csv"])
    assert len(a) == len(b) == brute(rows, 40.0, 10.0, 0.7).size

    vot = Table({"RAJ2000": rows["RA_ICRS"], "DEJ2000": rows["DE_ICRS"], "Vmag": rows["rmag"],
                 "e_Vmag": rows["e_rmag"], "Jmag": rows["imag"] - 1})
    for name, ucd in [("RAJ2000", "pos.eq.ra;meta.main"), ("DEJ2000", "pos.eq.dec;meta.main"),
                      ("Vmag", "phot.mag;em.opt.V"), ("e_Vmag", "stat.error;phot.mag;em.opt.V"),
                      ("Jmag", "phot.mag;em.IR.J")]:
        vot[name].meta["ucd"] = ucd
    vot.write(tmp_path / "mine.vot", format="votable")
    assert await import_file(store, tmp_path / "mine.vot", survey="MyVOT", version="3") == 800
    record = await store.get_survey("MyVOT")
    assert record["bands"] == ["V", "J"] and record["systems"] == {"V": "Vega", "J": "Vega"}
    with pytest.raises(RefcatError, match="carries no UCDs"):
        await import_file(store, tmp_path / "r.csv", survey="Other", preset="ucd")


async def test_proper_motions_epoch_bands_limits_box_and_derived(mongo_db, tmp_path):
    store = RefcatStore(mongo_db)
    rows = refcat2_rows(1500, seed=44)
    rows["pmRA"][:5] = 4000.0  # fast movers
    await import_file(store, write_csv(tmp_path / "a.csv", rows), survey="ATLAS", version="synthetic-m")
    [at_catalogue] = await store.cone(40.0, 10.0, 0.8)
    [later] = await store.cone(40.0, 10.0, 0.8, epoch_jyear=2035.5)
    assert at_catalogue.epoch == 2015.5 and later.epoch == 2035.5
    ra, dec = propagate(rows["RA_ICRS"], rows["DE_ICRS"], rows["pmRA"], rows["pmDE"], 20.0)
    inside = np.flatnonzero(SkyCoord(ra, dec, unit="deg").separation(SkyCoord(40.0, 10.0, unit="deg")).deg <= 0.8)
    assert len(later) == inside.size
    np.testing.assert_allclose(np.sort(later.ra_deg), np.sort(ra[inside]), atol=1e-9)

    [bright] = await store.cone(40.0, 10.0, 0.8, bands=["r", "i"], mag_limits={"r": (None, 15.0)})
    assert set(bright.mags) == {"r", "i"} and np.all(bright.mags["r"] <= 15.0)
    assert len(bright) == int(np.sum(rows["rmag"][brute(rows, 40.0, 10.0, 0.8)] <= 15.0))
    [boxed] = await store.box(39.8, 40.2, 9.9, 10.1)
    want = np.sum((rows["RA_ICRS"] >= 39.8) & (rows["RA_ICRS"] <= 40.2) & (rows["DE_ICRS"] >= 9.9)
                  & (rows["DE_ICRS"] <= 10.1))
    assert len(boxed) == want > 0

    sdss = Table({"ra": rows["RA_ICRS"], "dec": rows["DE_ICRS"], "gmag": rows["gmag"], "e_gmag": rows["e_gmag"],
                  "rmag": rows["rmag"], "e_rmag": rows["e_rmag"], "imag": rows["imag"], "e_imag": rows["e_imag"]})
    sdss.write(tmp_path / "sdss.csv", format="ascii.csv")
    await import_file(store, tmp_path / "sdss.csv", survey="SDSS", version="synthetic-s", derive=["B", "V"])
    [stars] = await store.cone(40.0, 10.0, 0.3, surveys=["SDSS"])
    assert stars.derived == frozenset({"B", "V"}) and np.all(np.isfinite(stars.mags["V"]))
    [only_v] = await store.cone(40.0, 10.0, 0.3, surveys=["SDSS"], bands=["V"])
    assert only_v.derived == frozenset({"V"}) and set(only_v.mags) == {"V"}
    with pytest.raises(RefcatError, match="no published transformation"):
        await import_file(store, tmp_path / "a.csv", survey="ATLAS2", preset="refcat2", derive=["B"])


def test_cli_list_shows_coverage_motions_and_derived_bands(mongo_url, unique_name, tmp_path):
    rows = refcat2_rows(500, seed=45)
    csv = write_csv(tmp_path / "a.csv", rows)
    Table({"ra": rows["RA_ICRS"], "dec": rows["DE_ICRS"], "gmag": rows["gmag"], "rmag": rows["rmag"],
           "imag": rows["imag"]}).write(tmp_path / "s.csv", format="ascii.csv")
    runner = CliRunner()
    common = ["--mongo-url", mongo_url, "--db", unique_name]
    try:
        result = runner.invoke(app, ["import", str(csv), "--survey", "atlas", "--version", "synthetic-c",
                                     "--buffer-stars", "100", *common])
        assert result.exit_code == 0, result.output
        result = runner.invoke(app, ["import", str(tmp_path / "s.csv"), "--survey", "SDSS", "--derive", "B,V,R,I",
                                     "--progress", *common])
        assert result.exit_code == 0, result.output
        result = runner.invoke(app, ["import", str(tmp_path / "s.csv"), "--survey", "PS1x", "--preset", "apass9",
                                     "--derive", "B", *common])
        assert result.exit_code == 2 and "no published transformation" in result.output
        result = runner.invoke(app, ["list", *common])
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[0].split()[:8] == ["survey", "version", "stars", "bands", "system", "sky", "pm", "origin"]
        atlas = next(line for line in lines if line.startswith("ATLAS"))
        assert " 500 " in atlas and "g r i" in atlas and " yes " in atlas and "%" in atlas and "import" in atlas
        blocks = asyncio_run_count(mongo_url, unique_name)
        assert blocks["blocks"] == blocks["pixels"]  # five flushes of 100 stars, merged into one block a pixel
        sdss = next(line for line in lines if line.startswith("SDSS"))
        assert "B* V* R* I*" in sdss and lines[-1].startswith("* derived")
        result = runner.invoke(app, ["cone", "40", "10", "0.3", *common])
        assert result.exit_code == 0, result.output
        assert any(line.startswith("ATLAS") and "covered" in line for line in result.output.splitlines())
        result = runner.invoke(app, ["cone", "--survey", "ATLAS", *common, "--", "200", "-50", "0.3"])
        assert "outside" in result.output and "no reference coverage from ATLAS" in result.output
    finally:
        import asyncio

        from tests.integration.test_refcat_store import _drop

        asyncio.run(_drop(mongo_url, unique_name))


def asyncio_run_count(url: str, db: str) -> dict:
    import asyncio

    from pymongo import AsyncMongoClient

    async def count():
        client = AsyncMongoClient(url, serverSelectionTimeoutMS=5000)
        try:
            docs = await client[db][BLOCKS].find({"survey": "ATLAS"}, {"hp": 1}).to_list(None)
            return {"blocks": len(docs), "pixels": len({d["hp"] for d in docs})}
        finally:
            await client.close()

    return asyncio.run(count())
