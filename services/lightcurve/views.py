"""Light curves in the formats readers use: CPCS column arrays, JSON rows, CSV.

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


def render_lightcurve_png(title: str, points: list[dict], alert_points: list[dict] = ()) -> bytes:
    """Magnitude against MJD, one colour per filter, limits as downward arrows; the alert stream's own
    points (the discovery curve) as open grey squares behind them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for survey, band in sorted({(str(p["survey"]), str(p["filter"])) for p in alert_points}):
        own = [p for p in alert_points if (str(p["survey"]), str(p["filter"])) == (survey, band)]
        ax.errorbar([p["mjd"] for p in own], [p["mag"] for p in own], yerr=[p.get("mag_err") or 0 for p in own],
                    fmt="s", mfc="none", color="0.55", zorder=1, label=f"{survey} {band} (alert)")
    for band in sorted({str(p["filter"]) for p in points}):
        det = [p for p in points if str(p["filter"]) == band and not p["is_limit"]]
        lim = [p for p in points if str(p["filter"]) == band and p["is_limit"]]
        line = ax.errorbar([p["mjd"] for p in det], [p["mag"] for p in det],
                           yerr=[p["total_err"] or p["mag_err"] or 0 for p in det], fmt="o", label=band)
        colour = line[0].get_color()
        if lim:
            ax.scatter([p["mjd"] for p in lim], [p["mag"] for p in lim], marker="v", color=colour,
                       label=f"{band} limit")
    ax.invert_yaxis()
    ax.set_xlabel("MJD")
    ax.set_ylabel("magnitude")
    ax.set_title(title)
    if points or alert_points:
        ax.legend(fontsize="small")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
