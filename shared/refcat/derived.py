"""Bands computed from other bands of a survey through a published photometric transformation.

Pure functions, no I/O. The one transformation offered: Johnson-Cousins B, V, R, I from SDSS g, r, i
magnitudes, by R. Lupton (2005), "Transformations between SDSS magnitudes and other systems", derived
from stars of Stetson's (2000) standard fields matched to SDSS DR4 photometry and published on the SDSS
web pages (https://www.sdss.org/dr12/algorithms/sdssubvritransform/, "Lupton (2005)")::

    B = g + 0.3130 (g - r) + 0.2271     sigma = 0.0107
    V = g - 0.5784 (g - r) - 0.0038     sigma = 0.0054
    R = r - 0.2936 (r - i) - 0.1439     sigma = 0.0072
    I = r - 1.2444 (r - i) - 0.3820     sigma = 0.0078

(only g, r and i are needed, so the transformation also works where z is missing). ``sigma`` is the
rms scatter of the standards about each relation: it is the error floor of a derived magnitude.

Errors are propagated as standard deviations. Writing a derived band as a linear combination
``M = a_g g + a_r r + a_i i + c`` of independent measurements, its error is

    sigma_M = sqrt((a_g sigma_g)^2 + (a_r sigma_r)^2 + (a_i sigma_i)^2 + sigma_fit^2)

e.g. sigma_B = sqrt((1.3130 sigma_g)^2 + (0.3130 sigma_r)^2 + 0.0107^2). (The original server added
variances where it should have added squared standard deviations and returned the result without the
square root; this module is the correction.) A derived magnitude is NaN where any input is missing;
its error is NaN where any input error is missing.

The relations hold for ordinary stars (Lupton fitted stars with R - I < 1.15); they are not meant for
very red or very blue objects, which the zero-point fit rejects as outliers anyway.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Transformation:
    """``band = sum(coeffs[b] * mag_b) + constant``, with rms scatter ``sigma`` about the relation."""

    band: str
    coeffs: Mapping[str, float]
    constant: float
    sigma: float
    reference: str

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(self.coeffs)

    def apply(self, mags: Mapping[str, np.ndarray], errs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The derived magnitudes and their errors (standard deviations)."""
        value = np.full_like(np.asarray(mags[self.inputs[0]], dtype=float), self.constant)
        variance = np.full_like(value, self.sigma ** 2)
        for band, coeff in self.coeffs.items():
            value = value + coeff * np.asarray(mags[band], dtype=float)
            variance = variance + (coeff * np.asarray(errs[band], dtype=float)) ** 2
        return value, np.sqrt(variance)


LUPTON_2005 = "Lupton (2005), SDSS ugriz to Johnson-Cousins UBVRI, Stetson standards"

#: The transformations, by target band. Coefficients are Lupton's relations expanded to one term per
#: SDSS band (B = g + 0.3130 (g - r) + 0.2271 = 1.3130 g - 0.3130 r + 0.2271, and so on).
SDSS_TO_BVRI: dict[str, Transformation] = {
    "B": Transformation("B", {"g": 1.3130, "r": -0.3130}, 0.2271, 0.0107, LUPTON_2005),
    "V": Transformation("V", {"g": 1.0 - 0.5784, "r": 0.5784}, -0.0038, 0.0054, LUPTON_2005),
    "R": Transformation("R", {"r": 1.0 - 0.2936, "i": 0.2936}, -0.1439, 0.0072, LUPTON_2005),
    "I": Transformation("I", {"r": 1.0 - 1.2444, "i": 1.2444}, -0.3820, 0.0078, LUPTON_2005),
}

#: Which transformations a survey may use (the photometric system they were fitted on).
TRANSFORMATIONS: dict[str, dict[str, Transformation]] = {"sdss": SDSS_TO_BVRI}


def transformation_set(name: str) -> dict[str, Transformation]:
    try:
        return TRANSFORMATIONS[name]
    except KeyError:
        raise ValueError(f"unknown transformation set {name!r}; known: {', '.join(TRANSFORMATIONS)}") from None


def derive_bands(mags: Mapping[str, np.ndarray], errs: Mapping[str, np.ndarray], wanted: Mapping[str, str]
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Derived magnitudes and errors for ``wanted`` (band -> transformation set name); a band whose
    inputs are not all in ``mags``, or that is already measured there, is left out."""
    out_m: dict[str, np.ndarray] = {}
    out_e: dict[str, np.ndarray] = {}
    for band, set_name in wanted.items():
        if band in mags:
            continue
        trans = transformation_set(set_name).get(band)
        if trans is None or not all(b in mags for b in trans.inputs):
            continue
        out_m[band], out_e[band] = trans.apply(mags, errs)
    return out_m, out_e


def describe(band: str, set_name: str) -> str:
    trans = transformation_set(set_name)[band]
    terms = " ".join(f"{c:+.4f} {b}" for b, c in trans.coeffs.items())
    return f"{band} = {terms} {trans.constant:+.4f} (sigma {trans.sigma}; {trans.reference})"


__all__ = ["LUPTON_2005", "SDSS_TO_BVRI", "TRANSFORMATIONS", "Transformation", "derive_bands", "describe",
           "transformation_set"]
