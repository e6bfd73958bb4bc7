"""Write the recorded archive answers and the small HATS catalogue the refcat tests replay.

Every star here is SYNTHETIC (seeded numpy, this project's own code): the files copy the *format* of
the archives' answers (VizieR VOTable with its RESOURCE/TABLE names, FIELD names, UCDs and units;
the Gaia archive TAP VOTable with gaia_source column names; the SDSS SkyServer CSV with its "#Table1"
first line), not their data. Regenerate with

    .venv/bin/python tests/data/refcat/make_recordings.py

(the HATS catalogue needs the lsdb package, which the tests themselves do not).
"""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
from astropy.io.votable.tree import Field, Info, Resource, TableElement, VOTableFile

HERE = Path(__file__).resolve().parent
CENTRE = (150.0, 2.0)  # the field every recording is around
SPREAD_DEG = 0.8  # stars out to this distance: covers the cone that circumscribes the field's tiles


def _positions(rng, n: int, ra0: float, dec0: float, radius: float):
    rho = radius * np.sqrt(rng.uniform(size=n))
    pa = rng.uniform(0, 2 * np.pi, n)
    dec = dec0 + rho * np.cos(pa)
    ra = ra0 + rho * np.sin(pa) / np.cos(np.radians(dec0))
    return ra, dec


def _mags(rng, n: int):
    r = rng.uniform(12.0, 17.5, n)
    gr = np.clip(rng.normal(0.55, 0.25, n), -0.2, 1.5)
    ri = 0.42 * gr - 0.03
    return {"g": r + gr, "r": r, "i": r - ri, "z": r - ri - 0.3 * gr, "B": r + gr + 0.39 * gr + 0.21 - 0.0,
            "V": r + gr - 0.59 * gr - 0.01}


def _votable(resource_name: str, table_name: str, table_id: str, fields: list[dict], columns: dict,
             infos: list[tuple[str, str]] = ()) -> bytes:
    vot = VOTableFile()
    resource = Resource(name=resource_name, type="results")
    vot.resources.append(resource)
    for name, value in infos:
        resource.infos.append(Info(name=name, value=value))
    table = TableElement(vot, name=table_name, ID=table_id)
    resource.tables.append(table)
    table.fields.extend(Field(vot, **spec) for spec in fields)
    n = len(next(iter(columns.values())))
    table.create_arrays(n)
    for spec in fields:
        table.array[spec["name"]] = columns[spec["name"]]
    out = io.BytesIO()
    vot.to_xml(out)
    return out.getvalue()


def vizier_apass(rng) -> bytes:
    n = 400
    ra, dec = _positions(rng, n, *CENTRE, SPREAD_DEG)
    m = _mags(rng, n)
    cols = {"RAJ2000": ra, "DEJ2000": dec}
    fields = [
        dict(name="RAJ2000", ID="RAJ2000", datatype="double", unit="deg", ucd="pos.eq.ra;meta.main", width=10,
             precision="6"),
        dict(name="DEJ2000", ID="DEJ2000", datatype="double", unit="deg", ucd="pos.eq.dec;meta.main", width=10,
             precision="6"),
    ]
    for band, col, ucd in [("V", "Vmag", "phot.mag;em.opt.V"), ("B", "Bmag", "phot.mag;em.opt.B"),
                           ("g", "g'mag", "phot.mag;em.opt.B"), ("r", "r'mag", "phot.mag;em.opt.R"),
                           ("i", "i'mag", "phot.mag;em.opt.I")]:
        values = np.round(m[band] + rng.normal(0, 0.02, n), 3)
        errs = np.round(np.full(n, 0.02) + 0.01 * (values - 12) / 5, 3)
        ident = col.replace("'", "_")
        fields.append(dict(name=col, ID=ident, datatype="float", unit="mag", ucd=ucd, width=6, precision="3"))
        fields.append(dict(name=f"e_{col}", ID=f"e_{ident}", datatype="float", unit="mag",
                           ucd="stat.error;phot.mag", width=6, precision="3"))
        cols[col], cols[f"e_{col}"] = values.astype(np.float32), errs.astype(np.float32)
    return _votable("II/336", "II/336/apass9", "II_336_apass9", fields, cols,
                    infos=[("matches", str(n)), ("QUERY_STATUS", "OK")])


def gaia_tap(rng) -> bytes:
    n = 500
    ra, dec = _positions(rng, n, *CENTRE, SPREAD_DEG)
    g = rng.uniform(11.0, 18.9, n)
    cols = {
        "source_id": (3_838_000_000_000_000_000 + rng.integers(0, 10**12, n)).astype(np.int64),
        "ra": ra, "dec": dec,
        "pmra": np.round(rng.normal(-4, 8, n), 4), "pmdec": np.round(rng.normal(-3, 8, n), 4),
        "phot_g_mean_mag": g.astype(np.float32),
        "phot_g_mean_flux_over_error": (3000 * 10 ** (-0.2 * (g - 12))).astype(np.float32),
        "phot_bp_mean_mag": (g + 0.4).astype(np.float32),
        "phot_bp_mean_flux_over_error": (900 * 10 ** (-0.2 * (g - 12))).astype(np.float32),
        "phot_rp_mean_mag": (g - 0.5).astype(np.float32),
        "phot_rp_mean_flux_over_error": (1200 * 10 ** (-0.2 * (g - 12))).astype(np.float32),
    }
    cols["pmra"][:3] = [850.0, -1200.0, 3000.0]  # a few fast movers
    fields = [
        dict(name="source_id", ID="source_id", datatype="long", ucd="meta.id;meta.main"),
        dict(name="ra", ID="ra", datatype="double", unit="deg", ucd="pos.eq.ra;meta.main"),
        dict(name="dec", ID="dec", datatype="double", unit="deg", ucd="pos.eq.dec;meta.main"),
        dict(name="pmra", ID="pmra", datatype="double", unit="mas / yr", ucd="pos.pm;pos.eq.ra"),
        dict(name="pmdec", ID="pmdec", datatype="double", unit="mas / yr", ucd="pos.pm;pos.eq.dec"),
        dict(name="phot_g_mean_mag", ID="phot_g_mean_mag", datatype="float", unit="mag", ucd="phot.mag;em.opt"),
        dict(name="phot_g_mean_flux_over_error", ID="phot_g_mean_flux_over_error", datatype="float",
             ucd="stat.snr;phot.flux;em.opt"),
        dict(name="phot_bp_mean_mag", ID="phot_bp_mean_mag", datatype="float", unit="mag", ucd="phot.mag;em.opt.B"),
        dict(name="phot_bp_mean_flux_over_error", ID="phot_bp_mean_flux_over_error", datatype="float",
             ucd="stat.snr;phot.flux;em.opt.B"),
        dict(name="phot_rp_mean_mag", ID="phot_rp_mean_mag", datatype="float", unit="mag", ucd="phot.mag;em.opt.R"),
        dict(name="phot_rp_mean_flux_over_error", ID="phot_rp_mean_flux_over_error", datatype="float",
             ucd="stat.snr;phot.flux;em.opt.R"),
    ]
    return _votable("results", "result_S1700000000000", "result_S1700000000000", fields, cols,
                    infos=[("QUERY_STATUS", "OK")])


def sdss_csv(rng) -> bytes:
    n = 300
    ra, dec = _positions(rng, n, *CENTRE, SPREAD_DEG)
    m = _mags(rng, n)
    m["u"] = m["g"] + 1.2
    lines = ["#Table1", "objID,ra,dec," + ",".join(f"psfMag_{b},psfMagErr_{b}" for b in "ugriz")]
    for k in range(n):
        values = [f"{1237648720693755918 + k}", f"{ra[k]:.7f}", f"{dec[k]:.7f}"]
        for b in "ugriz":
            values += [f"{m[b][k] + rng.normal(0, 0.02):.5f}", f"{0.01 + 0.02 * (m[b][k] - 12) / 6:.5f}"]
        lines.append(",".join(values))
    return ("\n".join(lines) + "\n").encode()


def hats_catalogue(rng, folder: Path) -> None:
    """A small ATLAS-RefCat2-layout HATS catalogue (several partitions) written by lsdb."""
    import lsdb
    import pandas as pd

    n = 1500
    ra, dec = _positions(rng, n, 30.0, -20.0, 2.0)
    m = _mags(rng, n)
    df = pd.DataFrame({"RA_ICRS": ra, "DE_ICRS": dec, "pmRA": np.round(rng.normal(0, 5, n), 3),
                       "pmDE": np.round(rng.normal(0, 5, n), 3)})
    for b in "griz":
        df[f"{b}mag"] = np.round(m[b], 4)
        df[f"e_{b}mag"] = np.round(0.01 + 0.01 * (m[b] - 12) / 5, 4)
    if folder.exists():
        shutil.rmtree(folder)
    catalog = lsdb.from_dataframe(df, ra_column="RA_ICRS", dec_column="DE_ICRS", catalog_name="refcat2_small",
                                  lowest_order=3, highest_order=6, partition_rows=400, margin_threshold=None)
    catalog.write_catalog(folder)


def main() -> None:
    rng = np.random.default_rng(20261121)
    (HERE / "vizier_apass9_ra150_dec2.vot").write_bytes(vizier_apass(rng))
    (HERE / "gaia_tap_dr3_ra150_dec2.vot").write_bytes(gaia_tap(rng))
    (HERE / "sdss_dr17_ra150_dec2.csv").write_bytes(sdss_csv(rng))
    hats_catalogue(rng, HERE / "hats_refcat2_small")


if __name__ == "__main__":
    main()
