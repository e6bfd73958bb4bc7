"""Which columns of a survey table are the position, the magnitudes and their errors.

Pure data and functions, no I/O. A :class:`Preset` describes one VizieR (or Gaia archive, or SCAMP
reference) table layout: the survey name used in filter strings, its bands, photometric system and
default version, and for every quantity a short list of accepted column names (VizieR spells the same
column differently between tables and output formats, e.g. ``g'mag`` / ``gmag``). An explicit mapping
(``ra=RAJ2000,dec=DEJ2000,V=Vmag,V_err=e_Vmag``) is turned into the same kind of object.

Column matching: an exact-case match wins; otherwise a case-insensitive match is accepted if it is
unambiguous and the column is not already used by another quantity. This matters for tables such as
Gaia DR3 synthetic photometry on VizieR, which holds both ``Rmag`` (Cousins R) and ``rmag`` (SDSS r).

Band names used throughout the store: ``U B V R I`` (Johnson-Kron-Cousins), ``u g r i z y``
(SDSS/Pan-STARRS-like, primes dropped: APASS ``g'`` is ``g``), ``J H K`` (2MASS; K is Ks), ``G BP RP``
(Gaia).

Magnitude sanity: values that are not finite or outside [-10, 50] (sentinels such as 99, -99, 99.999)
become NaN; errors that are not finite, negative, or >= 9 (sentinels 9.99, 99) become NaN; an error
without a magnitude becomes NaN.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from . import surveys as _surveys
from .surveys import RefcatError

#: 2.5 / ln(10): magnitude error of a flux with relative error 1.
MAG_PER_RELATIVE_FLUX = 1.0857362047581294

MAG_VALID_RANGE = (-10.0, 50.0)
ERR_MAX = 9.0


@dataclass(frozen=True)
class BandColumns:
    """Where one band's magnitude and error live; every field is a tuple of accepted column names.

    The error is taken from ``err``; failing that from a flux signal-to-noise column (``snr``:
    err = 1.0857 / snr) or from a flux and flux-error pair (``flux`` / ``flux_err``); ``err_floor`` is
    added in quadrature to a derived error (the Gaia DR3 photometric zero-point uncertainty, for example).
    ``assumed_err`` is every star's error when the catalogue gives none at all (photographic USNO-B1).
    """

    band: str
    mag: tuple[str, ...]
    err: tuple[str, ...] = ()
    system: str = "AB"  # "AB" or "Vega"
    snr: tuple[str, ...] = ()
    flux: tuple[str, ...] = ()
    flux_err: tuple[str, ...] = ()
    err_floor: float = 0.0
    assumed_err: float = 0.0


@dataclass(frozen=True)
class Preset:
    """A known table layout. ``key`` is its name for ``--preset``; the names of its survey (``survey``,
    canonical, and its aliases) live in the survey registry, :mod:`shared.refcat.surveys`.
    ``aliases`` is kept for layouts made on the fly and is not consulted for survey names."""

    key: str
    survey: str
    title: str
    ra: tuple[str, ...]
    dec: tuple[str, ...]
    bands: tuple[BandColumns, ...]
    version: str
    epoch: float | None = None  # epoch of the positions (Julian year), when there is one
    source: str = ""  # VizieR table id or other origin
    description: str = ""
    aliases: tuple[str, ...] = ()
    strict: bool = False  # True for explicit mappings: every band listed must be present
    pmra: tuple[str, ...] = ()  # proper motion in RA (mu_alpha* = mu_alpha cos dec), mas/yr
    pmdec: tuple[str, ...] = ()  # proper motion in Dec, mas/yr
    derive: str = ""  # transformation set (shared.refcat.derived) the survey's bands may feed, e.g. "sdss"
    derivable: tuple[str, ...] = ()  # bands that set can derive from this survey's bands

    @property
    def band_names(self) -> list[str]:
        return [b.band for b in self.bands]

    @property
    def systems(self) -> dict[str, str]:
        return {b.band: b.system for b in self.bands}

    def resolve(self, colnames: Sequence[str]) -> ColumnMapping:
        """Pick the actual columns of a table; raises :class:`RefcatError` naming what is missing."""
        return _resolve(self, list(colnames))

    def map_table(self, table) -> StarColumns:
        """Resolve against ``table`` and convert it (convenience for one-off tables)."""
        return self.resolve(table.colnames).apply(table)


@dataclass(frozen=True)
class ResolvedBand:
    band: str
    mag: str
    err: str | None = None
    snr: str | None = None
    flux: str | None = None
    flux_err: str | None = None
    err_floor: float = 0.0
    system: str = "AB"
    assumed_err: float = 0.0


@dataclass
class StarColumns:
    """Mapped rows: degrees and magnitudes as float64 arrays (NaN where missing), rows with a position only."""

    ra: np.ndarray
    dec: np.ndarray
    mags: dict[str, np.ndarray]
    errs: dict[str, np.ndarray]
    n_input: int = 0  # rows before dropping those without a usable position
    pmra: np.ndarray | None = None  # mas/yr (mu_alpha cos dec), NaN where unknown
    pmdec: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.ra.size)

    def take(self, index) -> StarColumns:
        return StarColumns(
            ra=self.ra[index], dec=self.dec[index],
            mags={b: m[index] for b, m in self.mags.items()},
            errs={b: e[index] for b, e in self.errs.items()},
            n_input=self.n_input,
            pmra=None if self.pmra is None else self.pmra[index],
            pmdec=None if self.pmdec is None else self.pmdec[index],
        )


@dataclass(frozen=True)
class ColumnMapping:
    """A preset resolved against one table's column names."""

    preset: Preset
    ra: str
    dec: str
    bands: tuple[ResolvedBand, ...]
    skipped_bands: tuple[str, ...] = ()
    pmra: str | None = None
    pmdec: str | None = None

    @property
    def band_names(self) -> list[str]:
        return [b.band for b in self.bands]

    @property
    def systems(self) -> dict[str, str]:
        return {b.band: b.system for b in self.bands}

    @property
    def columns(self) -> list[str]:
        cols = [self.ra, self.dec]
        for b in self.bands:
            cols += [c for c in (b.mag, b.err, b.snr, b.flux, b.flux_err) if c]
        cols += [c for c in (self.pmra, self.pmdec) if c]
        return cols

    def apply(self, table) -> StarColumns:
        """Convert a table (astropy Table or mapping of name -> array) into :class:`StarColumns`."""
        n = len(table[self.ra])
        ra, dec = positions_deg(table[self.ra], table[self.dec])
        good = np.isfinite(ra) & np.isfinite(dec) & (dec >= -90.0) & (dec <= 90.0)
        mags: dict[str, np.ndarray] = {}
        errs: dict[str, np.ndarray] = {}
        for b in self.bands:
            mag = as_float(table[b.mag])
            mag[~np.isfinite(mag) | (mag < MAG_VALID_RANGE[0]) | (mag > MAG_VALID_RANGE[1])] = np.nan
            if b.err:
                err = as_float(table[b.err])
            elif b.snr:
                with np.errstate(divide="ignore", invalid="ignore"):
                    err = MAG_PER_RELATIVE_FLUX / as_float(table[b.snr])
            elif b.flux and b.flux_err:
                with np.errstate(divide="ignore", invalid="ignore"):
                    err = MAG_PER_RELATIVE_FLUX * as_float(table[b.flux_err]) / as_float(table[b.flux])
            else:
                err = np.full(n, b.assumed_err if b.assumed_err > 0 else np.nan)
            if not b.err and b.err_floor:
                err = np.hypot(err, b.err_floor)
            err[~np.isfinite(err) | (err < 0) | (err >= ERR_MAX) | np.isnan(mag)] = np.nan
            mags[b.band] = mag[good]
            errs[b.band] = err[good]
        pmra = pmdec = None
        if self.pmra and self.pmdec:
            pmra = _proper_motion(table[self.pmra])[good]
            pmdec = _proper_motion(table[self.pmdec])[good]
        return StarColumns(ra=np.mod(ra[good], 360.0), dec=dec[good], mags=mags, errs=errs, n_input=n,
                           pmra=pmra, pmdec=pmdec)


def _proper_motion(column) -> np.ndarray:
    """A proper-motion column in mas/yr (converted when the column carries another angular rate unit);
    absurd values (beyond 20 arcsec/yr, more than any known star) become NaN."""
    values = as_float(column)
    unit = getattr(column, "unit", None)
    if unit is not None:
        import astropy.units as u

        try:
            values = (values * u.Unit(unit)).to_value(u.mas / u.yr)
        except (u.UnitConversionError, ValueError, TypeError):
            pass  # VizieR and archives write mas/yr; an unknown spelling is taken as that
    values[~np.isfinite(values) | (np.abs(values) > 20_000.0)] = np.nan
    return values


# --------------------------------------------------------------------------------------------------
# Conversions


def as_float(column) -> np.ndarray:
    """Any column (masked, integer, string with blanks) as a float64 array, NaN where missing."""
    data = np.ma.asarray(column)
    mask = np.ma.getmaskarray(data)
    raw = np.asarray(np.ma.getdata(data))
    if raw.dtype.kind in "fiub":
        out = raw.astype(float, copy=True)
    else:
        out = np.full(raw.shape, np.nan)
        for i, value in enumerate(raw.ravel()):
            if mask.ravel()[i]:
                continue
            try:
                out.flat[i] = float(str(value).strip())
            except ValueError:
                pass
    if out.ndim > 1:
        raise RefcatError(f"column {getattr(column, 'name', '?')!r} holds vectors, not one value per star")
    out[mask] = np.nan
    return out


_SEXAGESIMAL = re.compile(r"[:hdms°'\"]|\d\s+\d")


def positions_deg(ra_column, dec_column) -> tuple[np.ndarray, np.ndarray]:
    """RA/Dec in degrees, from numbers (degrees, or any angle unit the column carries) or sexagesimal text."""
    ra_kind = np.asarray(np.ma.getdata(np.ma.asarray(ra_column))).dtype.kind
    if ra_kind in "USO" and _looks_sexagesimal(ra_column):
        return _sexagesimal_to_deg(ra_column, dec_column)
    ra, dec = as_float(ra_column), as_float(dec_column)
    ra = _to_degrees(ra, ra_column)
    dec = _to_degrees(dec, dec_column)
    return ra, dec


def _to_degrees(values: np.ndarray, column) -> np.ndarray:
    unit = getattr(column, "unit", None)
    if unit is None:
        return values
    import astropy.units as u

    try:
        return (values * u.Unit(unit)).to_value(u.deg)
    except (u.UnitConversionError, ValueError, TypeError):
        return values  # a non-angular or unparsable unit (VizieR writes "deg" anyway): take degrees


def _looks_sexagesimal(column) -> bool:
    for value in np.ma.asarray(column).compressed()[:20]:
        if _SEXAGESIMAL.search(str(value).strip()):
            return True
    return False


def _sexagesimal_to_deg(ra_column, dec_column) -> tuple[np.ndarray, np.ndarray]:
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    ra_txt = np.ma.asarray(ra_column).astype(str).filled("")
    dec_txt = np.ma.asarray(dec_column).astype(str).filled("")
    n = len(ra_txt)
    ra = np.full(n, np.nan)
    dec = np.full(n, np.nan)
    present = np.array([bool(a.strip()) and bool(d.strip()) for a, d in zip(ra_txt, dec_txt, strict=True)], dtype=bool)
    if present.any():
        try:
            coord = SkyCoord(ra_txt[present], dec_txt[present], unit=(u.hourangle, u.deg), frame="icrs")
        except ValueError as exc:
            raise RefcatError(f"cannot read the sexagesimal positions ({exc})") from None
        ra[present] = coord.ra.deg
        dec[present] = coord.dec.deg
    return ra, dec


# --------------------------------------------------------------------------------------------------
# Resolution


def _resolve(preset: Preset, colnames: list[str]) -> ColumnMapping:
    taken: set[str] = set()
    exact = set(colnames)
    folded: dict[str, list[str]] = {}
    for name in colnames:
        folded.setdefault(name.lower(), []).append(name)

    def assign(slots: list[tuple[object, tuple[str, ...]]]) -> dict[object, str]:
        """Columns for several quantities at once: exact-case matches for all of them first, then
        unambiguous case-insensitive ones, never one column twice (so "rmag" goes to r, not to R)."""
        found: dict[object, str] = {}
        for slot, aliases in slots:
            for alias in aliases:
                if alias in exact and alias not in taken:
                    found[slot] = alias
                    taken.add(alias)
                    break
        for slot, aliases in slots:
            if slot in found:
                continue
            for alias in aliases:
                candidates = [c for c in folded.get(alias.lower(), []) if c not in taken]
                if len(candidates) == 1:
                    found[slot] = candidates[0]
                    taken.add(candidates[0])
                    break
        return found

    pos = assign([("ra", preset.ra), ("dec", preset.dec)])
    ra, dec = pos.get("ra"), pos.get("dec")
    missing = []
    if ra is None:
        missing.append(f"ra (tried {', '.join(preset.ra)})")
    if dec is None:
        missing.append(f"dec (tried {', '.join(preset.dec)})")

    motion = assign([("pmra", preset.pmra), ("pmdec", preset.pmdec)])
    mag_of = assign([(b.band, b.mag) for b in preset.bands])
    present = [b for b in preset.bands if b.band in mag_of]
    err_of = assign([(b.band, b.err) for b in present if b.err])
    snr_of = assign([(b.band, b.snr) for b in present if b.band not in err_of and b.snr])
    flux_bands = [b for b in present if b.band not in err_of and b.band not in snr_of and b.flux and b.flux_err]
    flux_of = assign([(b.band, b.flux) for b in flux_bands])
    flux_err_of = assign([(b.band, b.flux_err) for b in flux_bands])

    resolved: list[ResolvedBand] = []
    skipped: list[str] = []
    for band in preset.bands:
        mag = mag_of.get(band.band)
        if mag is None:
            if preset.strict:
                missing.append(f"{band.band} magnitude (tried {', '.join(band.mag)})")
            skipped.append(band.band)
            continue
        err = err_of.get(band.band)
        if preset.strict and band.err and err is None:
            missing.append(f"{band.band} error (tried {', '.join(band.err)})")
        flux, flux_err = flux_of.get(band.band), flux_err_of.get(band.band)
        if not (flux and flux_err):
            flux = flux_err = None
        resolved.append(ResolvedBand(band.band, mag, err, snr_of.get(band.band), flux, flux_err,
                                     band.err_floor, band.system, band.assumed_err))

    shown = ", ".join(colnames[:40]) + (" ..." if len(colnames) > 40 else "")
    if missing:
        raise RefcatError(
            f"the {preset.title} layout does not fit this table: no column for {'; '.join(missing)}"
            f" (the table has: {shown})"
        )
    if not resolved:
        tried = "; ".join(f"{b.band}: {', '.join(b.mag)}" for b in preset.bands)
        raise RefcatError(
            f"the {preset.title} layout does not fit this table: none of its magnitude columns is there"
            f" (tried {tried}; the table has: {shown})"
        )
    pmra, pmdec = motion.get("pmra"), motion.get("pmdec")
    if not (pmra and pmdec):
        pmra = pmdec = None
    return ColumnMapping(preset=preset, ra=ra, dec=dec, bands=tuple(resolved), skipped_bands=tuple(skipped),
                         pmra=pmra, pmdec=pmdec)


# --------------------------------------------------------------------------------------------------
# The presets


def _band(band: str, mags: Sequence[str], errs: Sequence[str] | None = None, system: str = "AB", **kw) -> BandColumns:
    """A band whose error columns are the VizieR ``e_`` form of every magnitude alias unless given."""
    if errs is None:
        errs = [f"e_{m}" for m in mags]
    return BandColumns(band=band, mag=tuple(mags), err=tuple(errs), system=system, **kw)


_VIZIER_J2000 = ("RAJ2000", "_RAJ2000", "RA_ICRS", "RAICRS", "ra")
_VIZIER_DEJ2000 = ("DEJ2000", "_DEJ2000", "DE_ICRS", "DEICRS", "dec")
_VIZIER_ICRS = ("RA_ICRS", "RAICRS", "RAJ2000", "_RAJ2000", "ra")
_VIZIER_DEICRS = ("DE_ICRS", "DEICRS", "DEJ2000", "_DEJ2000", "dec")

# Gaia DR3 photometric zero-point uncertainties (Riello et al. 2021, Table 5 / Gaia archive documentation),
# added in quadrature when the magnitude error is derived from the flux signal-to-noise.
_GAIA_DR3_ZP_ERR = {"G": 0.0027553202, "BP": 0.0027901700, "RP": 0.0037793818}


def _gaia_band(band: str, vizier: str, archive: str) -> BandColumns:
    return BandColumns(
        band=band,
        mag=(vizier, f"phot_{archive}_mean_mag"),
        err=(f"e_{vizier}",),
        system="Vega",
        snr=(f"phot_{archive}_mean_flux_over_error",),
        flux=(f"phot_{archive}_mean_flux", f"F{band}"),
        flux_err=(f"phot_{archive}_mean_flux_error", f"e_F{band}"),
        err_floor=_GAIA_DR3_ZP_ERR[band],
    )


def _gspc_band(band: str, vizier: Sequence[str], archive: str, system: str) -> BandColumns:
    return BandColumns(
        band=band,
        mag=(*vizier, f"{archive}_mag"),
        err=tuple(f"e_{v}" for v in vizier),
        system=system,
        flux=(f"{archive}_flux",),
        flux_err=(f"{archive}_flux_error",),
    )


PRESETS: tuple[Preset, ...] = (
    Preset(
        key="apass9", survey="APASS", title="APASS DR9 (VizieR II/336/apass9)",
        ra=_VIZIER_J2000, dec=_VIZIER_DEJ2000,
        bands=(
            _band("B", ["Bmag"], system="Vega"),
            _band("V", ["Vmag"], system="Vega"),
            _band("g", ["g'mag", "gmag", "g_mag"]),
            _band("r", ["r'mag", "rmag", "r_mag"]),
            _band("i", ["i'mag", "imag", "i_mag"]),
        ),
        version="DR9", epoch=None, source="II/336/apass9",
        description="AAVSO Photometric All-Sky Survey DR9: B, V (Vega) and Sloan g', r', i' (AB), 7 < V < 17",
    ),
    Preset(
        key="atlas-refcat2", survey="ATLAS", title="ATLAS-RefCat2 (VizieR J/ApJ/867/105)",
        ra=(*_VIZIER_ICRS, "RA"), dec=(*_VIZIER_DEICRS, "Dec"),
        bands=tuple(_band(b, [f"{b}mag", f"{b}_mag", b], [f"e_{b}mag", f"e_{b}_mag", f"d{b}"]) for b in "griz"),
        version="RefCat2", epoch=2015.5, source="J/ApJ/867/105/refcat2",
        description="ATLAS all-sky stellar reference catalogue (Tonry et al. 2018): Pan-STARRS g, r, i, z (AB), "
                    "m < 19; Gaia DR2 positions at epoch 2015.5 with proper motions",
        pmra=("pmRA", "pmra"), pmdec=("pmDE", "pmdec"),
    ),
    Preset(
        key="gaiadr3", survey="GaiaDR3", title="Gaia DR3 (VizieR I/355/gaiadr3 or the Gaia archive gaia_source)",
        ra=("RA_ICRS", "RAICRS", "ra", "RAJ2000"), dec=("DE_ICRS", "DEICRS", "dec", "DEJ2000"),
        bands=(_gaia_band("G", "Gmag", "g"), _gaia_band("BP", "BPmag", "bp"), _gaia_band("RP", "RPmag", "rp")),
        version="DR3", epoch=2016.0, source="I/355/gaiadr3",
        description="Gaia DR3 G, BP, RP (Vega); errors from e_Gmag or, for Gaia archive tables, from the flux "
                    "signal-to-noise with the zero-point uncertainty added; positions at epoch 2016.0 with "
                    "proper motions",
        pmra=("pmRA", "pmra"), pmdec=("pmDE", "pmdec"),
    ),
    Preset(
        key="gaiadr3-syntphot", survey="GaiaSP", title="Gaia DR3 synthetic photometry (VizieR I/360/syntphot)",
        ra=("RA_ICRS", "RAICRS", "ra", "RAJ2000", "_RAJ2000"), dec=("DE_ICRS", "DEICRS", "dec", "DEJ2000", "_DEJ2000"),
        bands=(
            _gspc_band("U", ["UJmag", "Umag", "UJKCmag"], "u_jkc", "Vega"),
            _gspc_band("B", ["BJmag", "Bmag", "BJKCmag"], "b_jkc", "Vega"),
            _gspc_band("V", ["VJmag", "Vmag", "VJKCmag"], "v_jkc", "Vega"),
            _gspc_band("R", ["RJmag", "Rmag", "RJKCmag"], "r_jkc", "Vega"),
            _gspc_band("I", ["IJmag", "Imag", "IJKCmag"], "i_jkc", "Vega"),
            _gspc_band("u", ["usdssmag", "uSDSSmag", "umag"], "u_sdss", "AB"),
            _gspc_band("g", ["gsdssmag", "gSDSSmag", "gmag"], "g_sdss", "AB"),
            _gspc_band("r", ["rsdssmag", "rSDSSmag", "rmag"], "r_sdss", "AB"),
            _gspc_band("i", ["isdssmag", "iSDSSmag", "imag"], "i_sdss", "AB"),
            _gspc_band("z", ["zsdssmag", "zSDSSmag", "zmag"], "z_sdss", "AB"),
        ),
        version="DR3-GSPC", epoch=2016.0, source="I/360/syntphot",
        description="Gaia DR3 synthetic photometry catalogue (GSPC, Montegriffo et al. 2023): Johnson-Kron-Cousins "
                    "U B V R I (Vega) and SDSS u g r i z (AB) from XP spectra, G < 17.65",
    ),
    Preset(
        key="ps1", survey="PS1", title="Pan-STARRS1 DR1 (VizieR II/349/ps1)",
        ra=(*_VIZIER_J2000, "raMean", "RAMean"), dec=(*_VIZIER_DEJ2000, "decMean", "DecMean"),
        bands=tuple(_band(b, [f"{b}mag", f"{b}MeanPSFMag", f"{b}_mag"],
                          [f"e_{b}mag", f"{b}MeanPSFMagErr", f"e_{b}_mag"]) for b in "grizy"),
        version="DR1", epoch=None, source="II/349/ps1",
        description="Pan-STARRS1 3pi DR1 mean PSF magnitudes g, r, i, z, y (AB); VizieR II/349 or MAST PS1 "
                    "mean-object tables (raMean, gMeanPSFMag ...); dec > -30",
    ),
    Preset(
        key="sdss12", survey="SDSS", title="SDSS DR12 (VizieR V/147)",
        ra=_VIZIER_ICRS, dec=_VIZIER_DEICRS,
        bands=tuple(_band(b, [f"{b}mag", f"{b}pmag", f"{b}_mag", f"psfMag_{b}"],
                          [f"e_{b}mag", f"e_{b}pmag", f"e_{b}_mag", f"psfMagErr_{b}"]) for b in "ugriz"),
        version="DR12", epoch=None, source="V/147/sdss12",
        description="SDSS photometric catalogue: u, g, r, i, z (AB, u and z approximately); VizieR V/147 or "
                    "SkyServer PhotoObj (psfMag_g ...); B, V, R, I can be derived (Lupton 2005)",
        derive="sdss", derivable=("B", "V", "R", "I"),
    ),
    Preset(
        key="skymapper", survey="SkyMapper", title="SkyMapper Southern Survey DR2 (VizieR II/358/smss)",
        ra=("RAICRS", "RA_ICRS", "raj2000", "RAJ2000", "ra"), dec=("DEICRS", "DE_ICRS", "dej2000", "DEJ2000", "dec"),
        bands=tuple(_band(b, [f"{b}PSF", f"{b}_psf", f"{b}mag"], [f"e_{b}PSF", f"e_{b}_psf", f"e_{b}mag"])
                    for b in "uvgriz"),
        version="DR2", epoch=None, source="II/358/smss",
        description="SkyMapper Southern Survey DR2 PSF magnitudes u, v, g, r, i, z (AB); southern sky, dec < +2",
    ),
    Preset(
        key="2mass", survey="2MASS", title="2MASS point sources (VizieR II/246/out)",
        ra=_VIZIER_J2000, dec=_VIZIER_DEJ2000,
        bands=(
            _band("J", ["Jmag", "j_m"], ["e_Jmag", "j_msigcom"], system="Vega"),
            _band("H", ["Hmag", "h_m"], ["e_Hmag", "h_msigcom"], system="Vega"),
            _band("K", ["Kmag", "Ksmag", "k_m"], ["e_Kmag", "e_Ksmag", "k_msigcom"], system="Vega"),
        ),
        version="PSC", epoch=None, source="II/246/out",
        description="Two Micron All Sky Survey point source catalogue: J, H, Ks (Vega)",
    ),
    Preset(
        key="gaiadr2-ldac", survey="GaiaDR2", title="Gaia DR2 SCAMP reference catalogue (FITS_LDAC)",
        ra=("XWIN_WORLD", "X_WORLD", "RA_ICRS", "ra"), dec=("YWIN_WORLD", "Y_WORLD", "DE_ICRS", "dec"),
        bands=(
            BandColumns("G", ("MAG", "Gmag", "phot_g_mean_mag"), ("MAGERR", "e_Gmag"), system="Vega"),
        ),
        version="DR2", epoch=2015.5, source="SCAMP/astrometry.net GAIA-DR2 LDAC reference file",
        description="Gaia DR2 G (Vega) from a SCAMP-style FITS_LDAC reference catalogue (XWIN_WORLD, YWIN_WORLD, "
                    "MAG, MAGERR)",
    ),
    # The surveys of the original's force-filter list beyond the above (VSTATLAS, OGLE3, USNO), and DES.
    Preset(
        key="vstatlas", survey="VSTATLAS", title="VST ATLAS DR4 (VizieR II/350/vstatlas, or the VSA atlasSource)",
        ra=(*_VIZIER_J2000, "RA2000"), dec=(*_VIZIER_DEJ2000, "DEC2000", "Dec2000"),
        bands=tuple(_band(b, [f"{b}mag", f"{b}Ap3", f"{b}AperMag3", f"{b}_mag"],
                          [f"e_{b}mag", f"e_{b}Ap3", f"{b}AperMag3Err", f"e_{b}_mag"]) for b in "ugriz"),
        version="DR4", epoch=None, source="II/350/vstatlas",
        description="VLT Survey Telescope ATLAS DR4: u, g, r, i, z aperture magnitudes (AB, calibrated to APASS); "
                    "southern sky; VizieR II/350 or the VISTA Science Archive (uAperMag3 ...)",
    ),
    Preset(
        key="ogle3", survey="OGLE3", title="OGLE-III photometric maps (VizieR, Udalski et al. 2008)",
        ra=_VIZIER_J2000, dec=_VIZIER_DEJ2000,
        bands=(_band("I", ["Imag", "I"], ["e_Imag", "sigI", "e_I"], system="Vega"),
               _band("V", ["Vmag", "V"], ["e_Vmag", "sigV", "e_V"], system="Vega")),
        version="III", epoch=None, source="OGLE-III photometric maps of the Magellanic Clouds and the Bulge",
        description="OGLE-III photometric maps: I and V (Vega, standard Cousins I and Johnson V); LMC, SMC and "
                    "Galactic bulge fields",
    ),
    Preset(
        key="usnob1", survey="USNO", title="USNO-B1.0 (VizieR I/284/out)",
        ra=_VIZIER_J2000, dec=_VIZIER_DEJ2000,
        bands=tuple(BandColumns(band, (column, column.replace("mag", "")), system="Vega", assumed_err=0.25)
                    for band, column in (("B1pg", "B1mag"), ("R1pg", "R1mag"), ("B2pg", "B2mag"),
                                         ("R2pg", "R2mag"), ("Ipg", "Imag"))),
        version="B1.0", epoch=2000.0, source="I/284/out",
        description="USNO-B1.0 photographic B1, R1, B2, R2, I (two epochs of plates; Monet et al. 2003); "
                    "no errors in the catalogue: 0.25 mag is assumed for every star (its quoted accuracy "
                    "is about 0.3 mag); the original's force-filter names B1pg, R1pg, B2pg, R2pg, Ipg",
        pmra=("pmRA",), pmdec=("pmDE",),
    ),
    Preset(
        key="desdr2", survey="DES", title="DES DR2 (VizieR II/371/des_dr2, or the NOIRLab main table)",
        ra=(*_VIZIER_ICRS, "RA"), dec=(*_VIZIER_DEICRS, "DEC", "Dec"),
        bands=tuple(_band(b.lower() if b != "Y" else "y",
                          [f"{b.lower()}mag", f"{b}mag", f"WAVG_MAG_PSF_{b}", f"wavg_mag_psf_{b.lower()}",
                           f"MAG_AUTO_{b}", f"mag_auto_{b.lower()}"],
                          [f"e_{b.lower()}mag", f"e_{b}mag", f"WAVG_MAGERR_PSF_{b}", f"wavg_magerr_psf_{b.lower()}",
                           f"MAGERR_AUTO_{b}", f"magerr_auto_{b.lower()}"]) for b in "GRIZY"),
        version="DR2", epoch=None, source="II/371/des_dr2",
        description="Dark Energy Survey DR2: g, r, i, z, Y (AB; Y stored as y) PSF magnitudes; southern sky, "
                    "5,000 deg2 (Abbott et al. 2021)",
    ),
)


def _norm(name: str) -> str:
    return name.strip().lower()


def get_preset(name: str) -> Preset:
    """The preset called ``name``: its key, or any name of its survey in the survey registry
    (:mod:`shared.refcat.surveys`), any case; RefcatError if none."""
    found = find_preset(name)
    if found is None:
        raise RefcatError(f"unknown preset or survey {name!r}; known: {', '.join(p.survey for p in PRESETS)}")
    return found


def _by_key(key: str) -> Preset | None:
    wanted = _norm(key)
    return next((p for p in PRESETS if _norm(p.key) == wanted), None)


def find_preset(name: str) -> Preset | None:
    """A preset by key, else the default layout of the registered survey ``name`` names (aliases
    included: ``refcat2`` is the ATLAS-RefCat2 layout), else None."""
    found = _by_key(name)
    if found is not None:
        return found
    survey = _surveys.lookup(name)
    return _by_key(survey.preset) if survey is not None and survey.preset else None


def preset_names() -> list[str]:
    return [p.survey for p in PRESETS]


# --------------------------------------------------------------------------------------------------
# Explicit mappings

_DEFAULT_VEGA_BANDS = {"U", "B", "V", "R", "I", "J", "H", "K", "KS", "G", "BP", "RP"}


def default_system(band: str) -> str:
    """AB for Sloan-like lower-case bands, Vega for Johnson-Cousins, 2MASS and Gaia bands."""
    return "Vega" if band.upper() in _DEFAULT_VEGA_BANDS and not band.islower() else "AB"


def parse_mapping(
    text: str | Mapping[str, str],
    *,
    survey: str,
    version: str | None = None,
    base: Preset | None = None,
) -> Preset:
    """An explicit mapping as a strict :class:`Preset`.

    ``text`` is ``"ra=RAJ2000,dec=DEJ2000,V=Vmag,V_err=e_Vmag"`` (or the same as a dict): keys ``ra``,
    ``dec``, a band name for its magnitude column, ``<band>_err`` for its error column. ``base``
    (the survey's preset, if any) supplies photometric systems, epoch and description.
    """
    pairs: list[tuple[str, str]]
    if isinstance(text, Mapping):
        pairs = [(str(k).strip(), str(v).strip()) for k, v in text.items()]
    else:
        pairs = []
        for item in str(text).split(","):
            if not item.strip():
                continue
            if "=" not in item:
                raise RefcatError(f"cannot read {item.strip()!r} in the column mapping: write key=COLUMN, e.g. V=Vmag")
            key, value = item.split("=", 1)
            pairs.append((key.strip(), value.strip()))
    ra = dec = None
    mags: dict[str, str] = {}
    errs: dict[str, str] = {}
    for key, value in pairs:
        if not key or not value:
            raise RefcatError(f"empty key or column in the column mapping item {key}={value}")
        low = key.lower()
        if low in ("ra", "ra_deg", "alpha"):
            ra = value
        elif low in ("dec", "dec_deg", "delta", "de"):
            dec = value
        elif low.endswith(("_err", "_e", "_error")):
            errs[key.rsplit("_", 1)[0]] = value
        else:
            mags[key] = value
    if ra is None or dec is None:
        raise RefcatError("the column mapping needs ra=COLUMN and dec=COLUMN")
    if not mags:
        raise RefcatError("the column mapping names no magnitude column (e.g. V=Vmag)")
    orphans = [b for b in errs if b not in mags]
    if orphans:
        raise RefcatError(f"the column mapping gives an error but no magnitude for band {', '.join(orphans)}")
    base_systems = base.systems if base else {}
    bands = tuple(
        BandColumns(
            band=band, mag=(col,), err=(errs[band],) if band in errs else (),
            system=base_systems.get(band, default_system(band)),
        )
        for band, col in mags.items()
    )
    return Preset(
        key="explicit", survey=survey, title=f"explicit column mapping for {survey}",
        ra=(ra,), dec=(dec,), bands=bands,
        version=version or (base.version if base else "1"),
        epoch=base.epoch if base else None,
        source=base.source if base else "",
        description=base.description if base else f"{survey} imported with an explicit column mapping",
        strict=True,
    )


# --------------------------------------------------------------------------------------------------
# Mapping by UCD (IVOA Unified Content Descriptors, as VOTable FIELDs carry them)

_UCD_BANDS = {
    "em.opt.u": "U", "em.opt.b": "B", "em.opt.v": "V", "em.opt.r": "R", "em.opt.i": "I",
    "em.ir.j": "J", "em.ir.h": "H", "em.ir.k": "K", "em.ir.3-4um": "W1", "em.ir.4-8um": "W2",
}
_KNOWN_BANDS = {"U", "B", "V", "R", "I", "u", "v", "g", "r", "i", "z", "y", "J", "H", "K", "Ks", "G", "BP", "RP"}
_BAND_NAME = re.compile(r"^(?:phot_)?([A-Za-z]{1,2})'?(?:_?mag|PSF|_psf|MeanPSFMag|_m|_mean_mag)$")


def _ucd_words(ucd: str) -> list[str]:
    return [w.strip().lower() for w in (ucd or "").split(";") if w.strip()]


def _band_of(name: str, words: list[str]) -> str | None:
    """The band a magnitude column measures: from its name when it spells a known band (``gmag``,
    ``g'mag``, ``BPmag``, ``Jmag``), else from the UCD's ``em.*`` word (``em.opt.V`` -> V)."""
    match = _BAND_NAME.match(name)
    if match:
        band = match.group(1)
        band = {"Ks": "K", "k": "K", "j": "J", "h": "H", "bp": "BP", "rp": "RP"}.get(band, band)
        if band in _KNOWN_BANDS or band.upper() in {"BP", "RP"}:
            return band.upper() if band.lower() in ("bp", "rp") else band
    for word in words:
        if word in _UCD_BANDS:
            return _UCD_BANDS[word]
    return None


def preset_from_ucds(columns: Sequence[tuple[str, str]], *, survey: str, version: str | None = None,
                     base: Preset | None = None) -> Preset:
    """A :class:`Preset` for a table whose columns carry UCDs (``columns``: (name, ucd) pairs).

    Position: the ``pos.eq.ra``/``pos.eq.dec`` columns, those marked ``meta.main`` first. Magnitudes:
    every ``phot.mag`` column that is not an error, its band read from the column name when it spells
    one (``gmag``, ``g'mag``, ``BPmag``) else from the ``em.*`` word (``em.opt.V`` is V, ``em.IR.K`` is
    K). Errors: ``stat.error;phot.mag`` columns, paired with a magnitude by name (``e_Vmag``) or by the
    same ``em.*`` word. Proper motions: ``pos.pm;pos.eq.ra`` and ``pos.pm;pos.eq.dec``. Raises
    :class:`RefcatError` when no position or no magnitude is found.
    """
    ra = dec = pmra = pmdec = None
    ra_main = dec_main = False
    mags: dict[str, str] = {}
    mag_words: dict[str, list[str]] = {}
    errors: list[tuple[str, list[str]]] = []
    for name, ucd in columns:
        words = _ucd_words(ucd)
        if not words:
            continue
        is_error = any(w.startswith("stat.error") for w in words)
        if "pos.pm" in words and not is_error:
            if "pos.eq.ra" in words and pmra is None:
                pmra = name
            elif "pos.eq.dec" in words and pmdec is None:
                pmdec = name
            continue
        if words[0] == "pos.eq.ra" and not is_error and (ra is None or ("meta.main" in words and not ra_main)):
            ra, ra_main = name, "meta.main" in words
        elif words[0] == "pos.eq.dec" and not is_error and (dec is None or ("meta.main" in words and not dec_main)):
            dec, dec_main = name, "meta.main" in words
        elif "phot.mag" in words and is_error:
            errors.append((name, words))
        elif words[0] == "phot.mag":
            band = _band_of(name, words)
            if band and band not in mags:
                mags[band] = name
                mag_words[band] = words
    if ra is None or dec is None:
        raise RefcatError("the table's UCDs name no position (no pos.eq.ra / pos.eq.dec column): give --columns")
    if not mags:
        raise RefcatError("the table's UCDs name no magnitude (no phot.mag column): give --columns")
    errs: dict[str, str] = {}
    for name, _words in errors:
        for band, mag in mags.items():
            if band not in errs and name in (f"e_{mag}", f"{mag}_err", f"{mag}Err", f"e{mag}"):
                errs[band] = name
                break
    for name, words in errors:
        if name in errs.values():
            continue
        em = [w for w in words if w.startswith("em.")]
        matches = [b for b, w in mag_words.items() if b not in errs and em and em[0] in w]
        if len(matches) == 1:
            errs[matches[0]] = name
    base_systems = base.systems if base else {}
    bands = tuple(
        BandColumns(band=band, mag=(col,), err=(errs[band],) if band in errs else (),
                    system=base_systems.get(band, default_system(band)))
        for band, col in mags.items()
    )
    return Preset(
        key="ucd", survey=survey, title=f"columns of {survey} found by UCD",
        ra=(ra,), dec=(dec,), bands=bands, version=version or (base.version if base else "1"),
        epoch=base.epoch if base else None, source=base.source if base else "",
        description=base.description if base else f"{survey} imported with columns found by their UCDs",
        pmra=(pmra,) if pmra and pmdec else (), pmdec=(pmdec,) if pmra and pmdec else (),
    )


def table_ucds(table) -> list[tuple[str, str]]:
    """(name, ucd) of every column of an astropy Table read from a VOTable (UCDs live in ``meta``)."""
    return [(name, str((getattr(table[name], "meta", None) or {}).get("ucd") or "")) for name in table.colnames]


def survey_and_version(survey: str, version: str | None, default: str) -> tuple[str, str]:
    """The stored name and the version of an import into ``survey`` (see :mod:`shared.refcat.surveys`):
    the canonical name of a registered survey or alias, else the name as typed; the version given,
    else the release the name says (DR9 for ``APASSDR9``), else the registered survey's, else ``default``."""
    resolved = _surveys.resolve(survey)
    return resolved.name, _surveys.import_version(resolved, version, default)


def choose_preset(
    *, survey: str, preset: str | None = None, columns: str | Mapping[str, str] | None = None,
    version: str | None = None,
) -> Preset:
    """What ``refcat import`` uses: an explicit mapping if given, else the named preset, else the survey's.

    The survey name is resolved through the survey registry (:mod:`shared.refcat.surveys`): a
    canonical name or alias is stored under the canonical name (``--survey REFCAT2`` stores "ATLAS"),
    any other name as typed. The version is the one given, else the release the survey name says,
    else the registered survey's, else the layout's. A layout of another registered survey
    (``--survey GaiaDR3 --preset gaiadr2-ldac``) needs ``version``: its default would record a
    release the survey's name does not hold.
    """
    resolved = _surveys.resolve(survey)
    name = resolved.name
    if preset:
        base = find_preset(preset)
        if base is None:
            raise RefcatError(f"unknown preset {preset!r}; known: {', '.join(p.key for p in PRESETS)}")
    else:
        base = find_preset(survey) if resolved.registered else None
    if columns:
        version = _surveys.import_version(resolved, version, base.version if base else "1")
        return parse_mapping(columns, survey=name, version=version, base=base)
    if base is None:
        raise RefcatError(
            f"no preset for survey {survey!r}: give --preset (one of {', '.join(p.key for p in PRESETS)}) "
            f"or --columns ra=...,dec=...,BAND=...,BAND_err=..."
        )
    own = resolved.survey.preset if resolved.survey is not None else None
    if (resolved.registered and base.key != own and base.survey != name and not (version or "").strip()
            and not resolved.release):
        raise RefcatError(
            f"--preset {base.key} is the layout of {base.survey}, but survey {resolved.given!r} is "
            f"{resolved.survey.title}: give --version to say which {name} release the file holds, or "
            f"import it as --survey {base.survey}"
        )
    return replace(base, survey=name, version=_surveys.import_version(resolved, version, base.version))


__all__ = [
    "BandColumns", "ColumnMapping", "PRESETS", "Preset", "RefcatError", "ResolvedBand", "StarColumns",
    "as_float", "choose_preset", "default_system", "find_preset", "get_preset", "parse_mapping",
    "positions_deg", "preset_from_ucds", "preset_names", "survey_and_version", "table_ucds",
]

