"""One fixed colour per photometric band, the same on every page, plot and download of a light curve.

Close to the colour a person expects of the band (g green, r red, i dark red, B blue, V yellow-green,
Gaia G grey-blue, ...); a band not in the table gets a stable colour of its own from its name.
"""
from __future__ import annotations

import hashlib

BAND_COLOURS: dict[str, str] = {
    "u": "#6a3d9a", "U": "#6a3d9a",
    "B": "#1f4fd8", "g": "#1b9e3e", "V": "#9acd32", "r": "#d62728", "R": "#e8590c",
    "i": "#8b0000", "I": "#7f3b08", "z": "#4d2600", "Z": "#4d2600", "y": "#3b2a1a",
    "G": "#4b6584", "BP": "#3867d6", "RP": "#c0392b",
    "J": "#b15928", "H": "#6b4226", "K": "#3e2723", "Ks": "#3e2723",
    "w": "#7f8c8d", "c": "#00a8a8", "o": "#ff8c00", "clear": "#555555", "CV": "#555555",
}

_FALLBACK = ("#17becf", "#bcbd22", "#e377c2", "#8c564b", "#9467bd", "#ff7f0e", "#2ca02c", "#7f7f7f")


def band_colour(band: str | None) -> str:
    """The band's colour (a stable pick from a small palette for a band not in the table)."""
    name = (band or "").strip()
    if name in BAND_COLOURS:
        return BAND_COLOURS[name]
    for key in (name.lower(), name.upper(), name.split("/")[-1]):
        if key in BAND_COLOURS:
            return BAND_COLOURS[key]
    return _FALLBACK[int(hashlib.sha1(name.encode()).hexdigest(), 16) % len(_FALLBACK)]
