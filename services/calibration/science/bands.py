"""Which reference bands may calibrate an observation taken through a declared filter.

The original server picked the band with the smallest scatter without any guard, and once
"standardised" an r-band frame to U. Here the declared filter (FITS ``FILTER`` keyword, the
upload's declared filter) maps to ordered *tiers* of compatible reference bands: the first tier
with a passing band wins. Optical filters never map to infrared bands and vice versa, and no
filter maps to a band on the far side of the optical range (r never to U).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["BandHint", "OPTICAL_BANDS", "INFRARED_BANDS", "UNDECLARED_EXCLUDED_BANDS", "band_hint",
           "band_hint_for_filters", "exact_band", "natural_colour"]

OPTICAL_BANDS: tuple[str, ...] = ("U", "B", "V", "R", "I", "u", "g", "r", "i", "z", "y", "G", "BP", "RP")
INFRARED_BANDS: tuple[str, ...] = ("J", "H", "K", "Ks")
#: Never chosen automatically when no filter is declared: Gaia's BP and RP are integrated
#: spectrophotometric bands, not filters anyone observes through, and BP has nearly the colour
#: dependence of V (RP of I), so the data alone cannot tell a V frame from "BP". Declared or
#: forced, they can be chosen.
UNDECLARED_EXCLUDED_BANDS: tuple[str, ...] = ("BP", "RP")

# Gaia G is a very broad white-light band close to r: acceptable (second tier) for r, V and i.
_R = (("r", "R"), ("G",))
_G = (("g", "V"),)  # Gaia G is r-like: G - g spans 1 mag over the usual colours
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
    "BP": (("BP",),), "RP": (("RP",),),
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


_CLEAR_KEYS = frozenset(k for k, v in _FOLDED.items() if v is _CLEAR)


def exact_band(hint: BandHint) -> str | None:
    """The reference band that *is* the declared filter (``"r"`` for r, rp, SDSS-r'...).

    Other compatible bands (R for r, g for V, G for r...) differ from it by a colour term. None
    for clear/unfiltered declarations and filter lists, where no band is the filter.
    """
    if hint.key in _CLEAR_KEYS or "+" in hint.key:
        return None
    return hint.tiers[0][0]


def band_hint_for_filters(filters: Sequence[str] | str | None) -> BandHint | None:
    """Compatible bands for an observatory's list of filters (when the upload declares none).

    Tier *k* of the result is the union of tier *k* of every recognised filter, so a band is
    preferred as much as it is for any filter of the list, and no band outside every filter's
    compatible set is ever allowed (an observatory with r and i filters never gets U).

    Parameters
    ----------
    filters : str or sequence of str
        Filter names; a string is split at commas, semicolons and whitespace.

    Returns
    -------
    BandHint or None
        None when no name is recognised.
    """
    if filters is None:
        return None
    names = re.split(r"[,;\s]+", filters) if isinstance(filters, str) else [str(f) for f in filters]
    hints = [h for h in (band_hint(n) for n in names if str(n).strip()) if h is not None]
    if not hints:
        return None
    if len(hints) == 1:
        return hints[0]
    depth = max(len(h.tiers) for h in hints)
    tiers: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for k in range(depth):
        tier: list[str] = []
        for h in hints:
            if k < len(h.tiers):
                tier.extend(b for b in h.tiers[k] if b not in seen and b not in tier)
        seen.update(tier)
        if tier:
            tiers.append(tuple(tier))
    keys = "+".join(dict.fromkeys(h.key for h in hints))
    return BandHint(declared=", ".join(h.declared for h in hints), key=keys, tiers=tuple(tiers))


# The colour that best describes a band's bandpass differences, in order of preference
# (blue band, red band); the first pair whose bands the survey has is used.
_NATURAL_COLOURS: dict[str, tuple[tuple[str, str], ...]] = {
    "U": (("U", "B"), ("u", "g")), "B": (("B", "V"), ("g", "r")), "V": (("B", "V"), ("g", "r"), ("V", "R")),
    "R": (("V", "R"), ("R", "I"), ("g", "r")), "I": (("R", "I"), ("V", "I"), ("r", "i")),
    "u": (("u", "g"), ("U", "B")), "g": (("g", "r"), ("B", "V")), "r": (("g", "r"), ("r", "i")),
    "i": (("r", "i"), ("i", "z")), "z": (("i", "z"), ("r", "i")), "y": (("z", "y"),),
    "G": (("BP", "RP"), ("g", "r"), ("B", "V")), "BP": (("BP", "RP"),), "RP": (("BP", "RP"),),
    "J": (("J", "H"), ("J", "K"), ("J", "Ks")), "H": (("J", "H"), ("H", "K"), ("H", "Ks")),
    "K": (("J", "K"), ("H", "K")), "Ks": (("J", "Ks"), ("H", "Ks")),
}


def natural_colour(band: str, available: Iterable[str]) -> tuple[str, str] | None:
    """The colour used for a band's colour term, from the bands a survey provides.

    Parameters
    ----------
    band : str
        The reference band being calibrated, e.g. ``"r"``.
    available : iterable of str
        The survey's bands.

    Returns
    -------
    tuple of str or None
        ``(blue, red)`` such that the colour is ``blue - red`` (e.g. ``("g", "r")``), or None.
    """
    have = set(available)
    for blue, red in _NATURAL_COLOURS.get(band, ()):
        if blue in have and red in have:
            return blue, red
    return None
