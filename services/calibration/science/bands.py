"""Which reference bands may calibrate an observation taken through a declared filter.

The original server picked the band with the smallest scatter without any guard, and once
"standardised" an r-band frame to U. Here the declared filter (FITS ``FILTER`` keyword, the
upload's declared filter) maps to ordered *tiers* of compatible reference bands: the first tier
with a passing band wins. Optical filters never map to infrared bands and vice versa, and no
filter maps to a band on the far side of the optical range (r never to U).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["BandHint", "OPTICAL_BANDS", "INFRARED_BANDS", "band_hint"]

OPTICAL_BANDS: tuple[str, ...] = ("U", "B", "V", "R", "I", "u", "g", "r", "i", "z", "y", "G", "BP", "RP")
INFRARED_BANDS: tuple[str, ...] = ("J", "H", "K", "Ks")

# Gaia G is a very broad white-light band: acceptable (second tier) for the mid-optical filters.
_R = (("r", "R"), ("G",))
_G = (("g", "V"), ("G",))
_I = (("i", "I"), ("G",))
_V = (("V", "g"), ("G",))
_B = (("B", "g"),)
_Z = (("z",),)
_U = (("u", "U"),)
_Y = (("y",),)
_J = (("J",),)
_H = (("H",),)
_K = (("K", "Ks"),)
_CLEAR = (("G", "r", "V"), OPTICAL_BANDS)

# exact (case-sensitive) names first; then the case-insensitive table
_EXACT: dict[str, tuple[tuple[str, ...], ...]] = {
    "r": _R, "R": _R, "rp": _R, "r'": _R, "Rc": _R, "RC": _R, "rs": _R, "r2": _R,
    "g": _G, "gp": _G, "g'": _G, "G": _G,
    "i": _I, "I": _I, "ip": _I, "i'": _I, "Ic": _I, "IC": _I,
    "V": _V, "v": _V,
    "B": _B, "b": _B,
    "z": _Z, "Z": _Z, "zs": _Z, "zp": _Z, "z'": _Z,
    "u": _U, "U": _U, "up": _U, "u'": _U,
    "y": _Y,
    "J": _J, "H": _H, "K": _K, "Ks": _K, "KS": _K, "Kp": _K,
}
_FOLDED: dict[str, tuple[tuple[str, ...], ...]] = {
    "clear": _CLEAR, "clr": _CLEAR, "c": _CLEAR, "cv": _CLEAR, "cr": _CLEAR, "w": _CLEAR, "l": _CLEAR,
    "lum": _CLEAR, "luminance": _CLEAR, "none": _CLEAR, "open": _CLEAR, "empty": _CLEAR, "unknown": _CLEAR,
    "no": _CLEAR, "white": _CLEAR, "unfiltered": _CLEAR,
    "rp": _R, "r'": _R, "rc": _R, "gp": _G, "g'": _G, "ip": _I, "i'": _I, "ic": _I,
    "zs": _Z, "zp": _Z, "z'": _Z, "up": _U, "u'": _U, "ks": _K,
}
# words that qualify a filter name without naming it ("SDSS r", "Bessell-R", "r_filter")
_NOISE = {
    "sdss", "bessell", "bessel", "johnson", "cousins", "sloan", "ps1", "panstarrs", "filter", "filt", "band",
    "prime", "astrodon", "baader", "gen2", "2mass", "mko", "std", "standard", "f", "ps",
}


@dataclass(frozen=True)
class BandHint:
    """The reference bands compatible with a declared filter.

    Attributes
    ----------
    declared : str
        The filter name as declared.
    key : str
        The name it was recognised as.
    tiers : tuple of tuple of str
        Compatible bands in order of preference; each tier is tried in turn.
    """

    declared: str
    key: str
    tiers: tuple[tuple[str, ...], ...]

    @property
    def bands(self) -> tuple[str, ...]:
        """All compatible bands, in order of preference."""
        out: list[str] = []
        for tier in self.tiers:
            out.extend(b for b in tier if b not in out)
        return tuple(out)


def _lookup(token: str) -> tuple[str, tuple[tuple[str, ...], ...]] | None:
    if token in _EXACT:
        return token, _EXACT[token]
    folded = token.lower()
    if folded in _FOLDED:
        return folded, _FOLDED[folded]
    return None


def band_hint(declared: object) -> BandHint | None:
    """Map a declared filter name to compatible reference bands.

    Parameters
    ----------
    declared : object
        The declared filter, e.g. ``"r"``, ``"rp"``, ``"SDSS-r'"``, ``"Bessell R"``, ``"Clear"``.
        ``None`` or an empty string means no declaration.

    Returns
    -------
    BandHint or None
        None when nothing was declared or the name is not recognised (then every band may be
        chosen). ``"none"``, ``"clear"``, ``"unknown"``, ``"L"``, ``"w"`` map to any optical band,
        preferring G, r, V.
    """
    if declared is None:
        return None
    text = str(declared).strip().strip("\"").strip()
    if text.startswith("'") and text.endswith("'") and len(text) > 1:
        text = text[1:-1].strip()
    if not text:
        return None
    found = _lookup(text)
    if found is None:
        tokens = [t for t in re.split(r"[\s_\-/:,.()\[\]]+", text) if t]
        for tok in tokens:
            if tok.lower() in _NOISE:
                continue
            found = _lookup(tok)
            if found is not None:
                break
    if found is None:
        return None
    key, tiers = found
    return BandHint(declared=str(declared), key=key, tiers=tiers)
