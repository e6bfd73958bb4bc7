"""Light curves in the formats readers use: CPCS column arrays, JSON rows, CSV, ECSV, VOTable, BHTOM.

Follow-up points (``kind: "followup"``) and the alert stream's own points (``kind: "alert"``, e.g. Gaia
G from the alert packets) share the JSON rows and the CSV; the CPCS column arrays keep follow-up points
only, as the original did.
"""
from __future__ import annotations

import csv
import io

CSV_COLUMNS = ("id", "mjd", "mag", "mag_err", "calib_err", "zp_err", "total_err", "is_limit", "limit_sigma",
               "filter", "survey", "observatory", "observatory_id", "mode", "algorithm_version", "kind")
_FOLLOWUP_KEYS = CSV_COLUMNS[1:-1]


def cpcs_columns(ivorn: str, points: list[dict]) -> dict:
    """The column arrays of the original /get_alert_lc_data (magerr = -1 for a limit)."""
    return {
        "alert_name": ivorn,
        "mjd": [p["mjd"] for p in points],
        "mag": [p["mag"] for p in points],
        "magerr": [-1.0 if p["is_limit"] else p["mag_err"] for p in points],
        "caliberr": [p["calib_err"] for p in points],
        "filter": [p["filter"] for p in points],
        "catalog": [p["survey"] for p in points],
        "observatory": [p["observatory"] for p in points],
        "observatory_id": [p["observatory_id"] for p in points],
        "id": [p["_id"] for p in points],
    }


def json_rows(points: list[dict]) -> list[dict]:
    return [{"id": p["_id"], **{k: p.get(k) for k in _FOLLOWUP_KEYS}, "observation_id": p["observation_id"],
             "kind": "followup"} for p in points]


def alert_rows(alert_points: list[dict]) -> list[dict]:
    """The alert stream's points with the keys of follow-up rows (null where they do not apply)."""
    return [{"id": p["_id"], **dict.fromkeys(_FOLLOWUP_KEYS), "mjd": p["mjd"], "mag": p["mag"],
             "mag_err": p.get("mag_err"), "is_limit": p.get("is_limit", False), "filter": p["filter"],
             "survey": p["survey"], "observation_id": None, "kind": "alert"} for p in alert_points]


def all_rows(points: list[dict], alert_points: list[dict] = ()) -> list[dict]:
    """Follow-up and alert rows together, by MJD."""
    rows = json_rows(points) + alert_rows(list(alert_points))
    return sorted(rows, key=lambda r: (r["mjd"], r["kind"], str(r["id"])))


def csv_text(points: list[dict], alert_points: list[dict] = ()) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in all_rows(points, alert_points):
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return out.getvalue()


#: Every format of ``/api/v1/events/{id}/lightcurve?format=...``.
FORMATS = ("json", "csv", "ecsv", "votable", "cpcs", "bhtom")

#: The columns of the tables for people (CSV download, ECSV, VOTable): name, unit, description.
TABLE_COLUMNS: tuple[tuple[str, str | None, str], ...] = (
    ("id", None, "point id: the follow-up id, or <packet IVORN>|<band>|<MJD> for the alert's own photometry"),
    ("mjd", "d", "mid-exposure time, Modified Julian Date (UTC)"),
    ("utc", None, "mid-exposure time, ISO 8601 UTC"),
    ("mag", "mag", "calibrated magnitude; for a limit, the limiting magnitude"),
    ("mag_err", "mag", "instrumental (photometric) error of the magnitude; empty for a limit"),
    ("calib_err", "mag", "calibration scatter of the reference stars about the fitted zero point"),
    ("zp_err", "mag", "uncertainty of the zero point at the target's colour"),
    ("total_err", "mag", "total error: mag_err, zp_err, calib_err and the colour term combined"),
    ("is_limit", None, "true: an upper limit (no detection), mag is the limiting magnitude"),
    ("limit_sigma", None, "significance of a limit, in standard deviations"),
    ("filter", None, "photometric band of the calibrated magnitude"),
    ("survey", None, "reference survey that calibrated it (the alert stream for the alert's own points)"),
    ("observatory", None, "observatory that uploaded the data"),
    ("observatory_id", None, "observatory's id on this server"),
    ("mode", None, "AUTO (band chosen by the server) or FORCED (forceFilter)"),
    ("algorithm_version", None, "version of the calibration algorithm"),
    ("kind", None, "followup (uploaded and calibrated here) or alert (the alert stream's own photometry)"),
    ("observation_id", None, "the upload's observation id (its calibration plot is /plots/<id>.png)"),
)

_FLOATS = {"mjd", "mag", "mag_err", "calib_err", "zp_err", "total_err", "limit_sigma"}
BHTOM_HEADER = "MJD;Magnitude;Error;Facility;Filter;Observer"


def mjd_to_iso(mjds) -> list[str]:
    """MJDs (UTC) as ISO 8601 to the millisecond, e.g. ``2016-08-03T23:13:52.526``."""
    import numpy as np
    from astropy.time import Time

    values = np.asarray(list(mjds), dtype=float)
    if values.size == 0:
        return []
    return [str(s) for s in Time(values, format="mjd", scale="utc").isot]


def people_table(rows: list[dict], *, ivorn: str):
    """The light curve as an astropy Table with a unit and a description on every column."""
    import numpy as np
    from astropy.table import MaskedColumn, Table

    table = Table(meta={"event": ivorn, "description": f"light curve of {ivorn}"})
    utc = mjd_to_iso(r["mjd"] for r in rows)
    for name, unit, description in TABLE_COLUMNS:
        values = utc if name == "utc" else [r.get(name) for r in rows]
        mask = [v is None for v in values]
        if name in _FLOATS:
            data = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
        elif name == "observatory_id":
            data = np.array([0 if v is None else int(v) for v in values], dtype=np.int64)
        elif name == "is_limit":
            data = np.array([bool(v) for v in values], dtype=bool)
            mask = [False] * len(values)
        else:
            data = np.array(["" if v is None else str(v) for v in values], dtype=str)
        table[name] = MaskedColumn(data, mask=mask, unit=unit, description=description)
    return table


def ecsv_text(rows: list[dict], *, ivorn: str, delimiter: str = " ") -> str:
    """ECSV (a YAML header with unit and description of every column); with ``delimiter=","`` the body is
    a plain CSV under commented header lines, for spreadsheets."""
    out = io.StringIO()
    people_table(rows, ivorn=ivorn).write(out, format="ascii.ecsv", delimiter=delimiter)
    return out.getvalue()


def votable_bytes(rows: list[dict], *, ivorn: str) -> bytes:
    out = io.BytesIO()
    people_table(rows, ivorn=ivorn).write(out, format="votable")
    return out.getvalue()


def bhtom_text(rows: list[dict]) -> str:
    """BHTOM's photometry file: ``MJD;Magnitude;Error;Facility;Filter;Observer``, detections only (the
    format has no place for a limit); the error is total_err (mag_err where there is none)."""
    lines = [BHTOM_HEADER]
    for r in rows:
        if r.get("is_limit"):
            continue
        error = r.get("total_err") if r.get("total_err") is not None else r.get("mag_err")
        facility = r.get("observatory") or r.get("survey") or ""
        lines.append(";".join([f"{r['mjd']:.6f}", f"{r['mag']:.4f}", "" if error is None else f"{error:.4f}",
                               _bhtom_field(facility), _bhtom_field(f"{r.get('survey') or ''}/{r.get('filter') or ''}"),
                               _bhtom_field(r.get("observatory") or r.get("survey") or "")]))
    return "\n".join(lines) + "\n"


def _bhtom_field(value: str) -> str:
    return str(value).replace(";", ",").replace("\n", " ")
