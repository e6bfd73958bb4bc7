"""The astrometry.net engine: an index built from the reference cone, then ``solve-field`` on our sources.

Uses the Debian package ``astrometry.net`` (0.93): ``build-astrometry-index`` turns the reference
stars the service fetched around the hint into a few small index files (quads of 12 % to 70 % of the
field), and ``solve-field`` matches the detected sources (an x,y list: it does no source extraction
of its own) against them. Because the index holds only the cone, the search is limited to it; the
pixel scale range comes from the header, the observatory record or a wide default. astrometry.net
verifies a solution (Bayesian log-odds, 1e9 by default) before accepting it, so a wrong field fails
instead of giving a false WCS. Everything runs in a temporary directory removed afterwards.

A wide scale range (binned frames whose header keeps the unbinned scale) gets a ladder of indexes in
steps of sqrt 2 covering every scale of the range (:func:`index_plan`), each built only from the stars
a field of its quad size can reach from the cone centre, and at most the brightest ``STARS_PER_CELL``
per uniformisation cell: on a 2 deg cone of 250 000 stars the 19 indexes of 0.1-30"/px build in 4 s
(26 s for the smallest alone from the whole cone). The builds run six at a time
(``QUAD_PASSES`` rounds of quad building each: fewer are faster but lose hard frames). An
:class:`IndexBuild` can be started before the sources are detected (:func:`start_index_build`) and
handed to :func:`solve_field`, so the builds run on the other core meanwhile; its processes are
waited for with blocking waits (``Popen.wait(timeout)`` polls, up to 50 ms late).

Pure apart from the two subprocesses: synchronous, no network, deterministic for the same input.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import warnings
from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from numpy.typing import NDArray

from services.astrometry.science.fit import sky_separation_arcsec

__all__ = ["AnetOutcome", "IndexBuild", "available", "index_plan", "solve_field", "start_index_build"]

#: Smallest quad of each index, as a fraction of the smaller side of the field (each spans a factor
#: sqrt 2, so together 17 % to 48 %; a wide scale range adds the same fractions of the largest field).
#: Measured on the 2k benchmark frame: three scales 0.55 s, four (14 % to 57 %) 0.8 s, same solutions.
QUAD_FRACTIONS = (0.17, 0.24, 0.34)
#: With a cone centre, each index gets at most this many of the brightest stars per uniformisation cell
#: (build-astrometry-index keeps up to 10 per cell: twice that leaves room for stars it drops).
STARS_PER_CELL = 20
#: Rounds of quad building per index (build-astrometry-index ``-p``; 16 is the program's default).
#: Fewer rounds build faster but lose hard frames: on the 2k benchmark frames with the reference
#: magnitudes jittered by 1 mag and 70 % of the detections dropped, 16 rounds solved 6 of 6, 8
#: rounds 4, 4 rounds 3 (0.34, 0.20 and 0.12 s of CPU for the four indexes); on the plain frames all
#: three solve every frame with the same log-odds.
QUAD_PASSES = 16


@dataclass(frozen=True)
class AnetOutcome:
    """What solve-field gave: a WCS (None when it found none), and why / how."""

    wcs: WCS | None
    reason: str | None
    log_odds: float | None
    n_index_stars: int
    n_indexes: int
    log_tail: str


def available() -> bool:
    """True when both programs of the Debian package ``astrometry.net`` are installed."""
    return shutil.which("solve-field") is not None and shutil.which("build-astrometry-index") is not None


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # solve-field is a Python 3 script of the system's Python
    env.pop("PYTHONHOME", None)
    return env


def _run(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run a program in its own process group; past ``timeout_s`` the whole group is killed
    (solve-field starts astrometry-engine as a child) and ``TimeoutExpired`` is raised."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def index_plan(shape: tuple[int, int], scale_low_arcsec: float, scale_high_arcsec: float) -> list[tuple[float, float]]:
    """The indexes to build: ``(smallest quad in arcmin, radius in deg of the stars it needs)``.

    A narrow scale range (at most 2x, the hinted one) gets the quads of :data:`QUAD_FRACTIONS` of the
    smallest and of the largest field; a wide range gets a ladder of quads in steps of sqrt 2 from the
    smallest fraction of the smallest field to the largest of the largest field, so that every scale in
    between has quads of its size. The radius is the one a field whose quads these are reaches from a
    point inside it (twice its half-diagonal, with 5 % margin).
    """
    ny, nx = shape
    side_min = min(nx, ny) * scale_low_arcsec / 60.0  # arcmin
    side_max = min(nx, ny) * scale_high_arcsec / 60.0
    if scale_high_arcsec <= 2.0 * scale_low_arcsec:
        lows = sorted({round(f * side_min, 4) for f in QUAD_FRACTIONS}
                      | {round(f * side_max, 4) for f in QUAD_FRACTIONS
                         if f * side_max > QUAD_FRACTIONS[-1] * side_min})
    else:
        lows, lo = [], QUAD_FRACTIONS[0] * side_min
        while lo <= QUAD_FRACTIONS[-1] * side_max * 1.0001:
            lows.append(round(lo, 4))
            lo *= math.sqrt(2.0)
    diag_per_side = math.hypot(nx, ny) / min(nx, ny)
    return [(lo, 2.1 * (lo / QUAD_FRACTIONS[0]) * diag_per_side / 2.0 / 60.0) for lo in lows]


def _run_all(commands: list[list[str]], parallel: int, timeout_s: float = 60.0) -> list[int | None]:
    """Run the index builds, ``parallel`` at a time; the return codes (None: killed past ``timeout_s``).

    Each batch is waited for with blocking waits and killed by a timer past ``timeout_s``: a
    ``Popen.wait(timeout)`` polls with sleeps of up to 50 ms, which cost 20-50 ms a frame.
    """
    codes: list[int | None] = [None] * len(commands)
    for start in range(0, len(commands), parallel):
        batch = [(i, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env()))
                 for i, cmd in enumerate(commands[start:start + parallel], start)]
        killed: set[int] = set()

        def kill_all(batch: list[tuple[int, subprocess.Popen[bytes]]] = batch, killed: set[int] = killed) -> None:
            for i, proc in batch:
                if proc.poll() is None:
                    killed.add(i)
                    proc.kill()

        timer = threading.Timer(timeout_s, kill_all)
        timer.start()
        try:
            for i, proc in batch:
                code = proc.wait()
                codes[i] = None if i in killed else code
        finally:
            timer.cancel()
    return codes


class IndexBuild:
    """The indexes of one reference cone and scale range, being built in a temporary directory.

    :meth:`start` launches the ``build-astrometry-index`` processes and returns at once, so the
    caller can detect the sources of the frame meanwhile (on two cores the builds then cost no wall
    time); :func:`solve_field` waits for them (:meth:`wait`) and closes the build. :meth:`close`
    kills what still runs and removes the directory (a build no longer needed: the header WCS
    was right). Arguments as :func:`solve_field`'s.
    """

    def __init__(self, *, shape: tuple[int, int], ref_ra_deg: np.ndarray, ref_dec_deg: np.ndarray,
                 ref_mag: np.ndarray | None, scale_low_arcsec: float, scale_high_arcsec: float,
                 cone_centre: tuple[float, float] | None = None):
        self.key = self.key_of(shape, scale_low_arcsec, scale_high_arcsec, cone_centre)
        ra, dec = np.asarray(ref_ra_deg, float), np.asarray(ref_dec_deg, float)
        mag = np.arange(ra.size, dtype=float) if ref_mag is None else np.asarray(ref_mag, float)
        mag = np.where(np.isfinite(mag), mag, np.nanmax(mag[np.isfinite(mag)]) + 1 if np.isfinite(mag).any() else 30.0)
        plan = index_plan(shape, scale_low_arcsec, scale_high_arcsec)
        if cone_centre is not None:
            dist_deg = sky_separation_arcsec(ra, dec, *cone_centre) / 3600.0
            reach = float(dist_deg.max()) if ra.size else 0.0
            plan = [(lo, r) for lo, r in plan if lo / 60.0 <= 2.0 * reach]  # a quad must fit in the cone
        self.n_stars = int(ra.size)
        self._dir = tempfile.TemporaryDirectory(prefix="cpcs-anet-")
        self.tmp = tmp = self._dir.name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            inputs = []
            if cone_centre is not None:
                order = np.argsort(mag, kind="stable")
                ra, dec, mag, dist_deg = ra[order], dec[order], mag[order], dist_deg[order]
            keep: NDArray[np.intp] | slice
            for i, (lo, reach_deg) in enumerate(plan):
                if cone_centre is not None:  # the brightest that fill its uniformisation cells (of ~lo arcmin)
                    cells = math.pi * (reach_deg * 60.0) ** 2 / lo ** 2
                    keep = np.flatnonzero(dist_deg <= reach_deg)[:int(STARS_PER_CELL * cells) + 1]
                else:
                    keep = slice(None)
                name = os.path.join(tmp, "ref.fits" if cone_centre is None else f"ref-{i}.fits")
                if cone_centre is not None or i == 0:
                    Table({"RA": ra[keep], "DEC": dec[keep], "MAG": mag[keep]}).write(name)
                inputs.append(name)
        self.outputs = [os.path.join(tmp, f"index-{i}.fits") for i in range(len(plan))]
        self.commands = [["build-astrometry-index", "-i", src, "-o", out, "-N", str(max(1, int(round(3520.0 / lo)))),
                          "-l", f"{lo:.4f}", "-u", f"{lo * math.sqrt(2.0):.4f}", "-S", "MAG", "-E", "-M", "-j", "0.5",
                          "-I", str(9000 + i), "-p", str(QUAD_PASSES)]
                         for i, ((lo, _), src, out) in enumerate(zip(plan, inputs, self.outputs, strict=True))]
        self._parallel = max(2 * len(QUAD_FRACTIONS), os.cpu_count() or 1)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._indexes: list[str] | None = None

    @staticmethod
    def key_of(shape: tuple[int, int], scale_low_arcsec: float, scale_high_arcsec: float,
               cone_centre: tuple[float, float] | None) -> tuple[object, ...]:
        """What an index set depends on besides the reference stars (the caller passes the same stars)."""
        return (tuple(int(v) for v in shape), float(scale_low_arcsec), float(scale_high_arcsec),
                None if cone_centre is None else tuple(float(v) for v in cone_centre))

    def start(self) -> IndexBuild:
        """Launch the builds in the background when they fit in one batch (else :meth:`wait` runs them)."""
        if not self._procs and self._indexes is None and len(self.commands) <= self._parallel:
            self._procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
                           for cmd in self.commands]
        return self

    def wait(self, timeout_s: float = 60.0) -> list[str]:
        """The index files built (waiting for the builds, killed past ``timeout_s``)."""
        if self._indexes is None:
            codes: list[int | None]
            if self._procs:
                timer = threading.Timer(timeout_s, self._kill)
                timer.start()
                try:
                    codes = [proc.wait() for proc in self._procs]  # killed ones: negative
                finally:
                    timer.cancel()
            else:
                codes = _run_all(self.commands, parallel=self._parallel, timeout_s=timeout_s)
            self._indexes = [out for code, out in zip(codes, self.outputs, strict=True)
                             if code == 0 and os.path.exists(out)]
        return self._indexes

    def _kill(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()

    def close(self) -> None:
        """Stop the builds still running and remove the directory."""
        self._kill()
        for proc in self._procs:
            proc.wait()
        self._dir.cleanup()

    def __enter__(self) -> IndexBuild:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_index_build(*, shape: tuple[int, int], ref_ra_deg: np.ndarray, ref_dec_deg: np.ndarray,
                      ref_mag: np.ndarray | None, scale_low_arcsec: float,
                      scale_high_arcsec: float, cone_centre: tuple[float, float] | None = None) -> IndexBuild:
    """An :class:`IndexBuild` already started (see there)."""
    return IndexBuild(shape=shape, ref_ra_deg=ref_ra_deg, ref_dec_deg=ref_dec_deg, ref_mag=ref_mag,
                      scale_low_arcsec=scale_low_arcsec, scale_high_arcsec=scale_high_arcsec,
                      cone_centre=cone_centre).start()


def solve_field(x: np.ndarray, y: np.ndarray, flux: np.ndarray, *, shape: tuple[int, int], ref_ra_deg: np.ndarray,
                ref_dec_deg: np.ndarray, ref_mag: np.ndarray | None, scale_low_arcsec: float,
                scale_high_arcsec: float, hint: tuple[float, float] | None = None, hint_radius_deg: float | None = None,
                tweak_order: int = 2, time_limit_s: float = 10.0,
                cone_centre: tuple[float, float] | None = None, index_build: IndexBuild | None = None) -> AnetOutcome:
    """Solve the field with astrometry.net against an index built from the given reference stars.

    Parameters
    ----------
    x, y, flux : numpy.ndarray
        Detected sources (0-based pixels), brightest first.
    shape : (int, int)
        ``(ny, nx)`` of the frame.
    ref_ra_deg, ref_dec_deg : numpy.ndarray
        Reference stars (Gaia positions from the store, the cone around the hint).
    ref_mag : numpy.ndarray or None
        Their magnitudes (brightest stars make the quads); None keeps the given order.
    scale_low_arcsec, scale_high_arcsec : float
        Range of the pixel scale.
    hint : (float, float), optional
        Centre of the search and ``hint_radius_deg`` its radius (the index already limits it).
    tweak_order : int, optional
        SIP order of astrometry.net's own tweak (the caller refines anyway).
    time_limit_s : float, optional
        Wall-clock limit of the solver (it is killed past it; a solution takes well under a second,
        exhausting a wrong index much longer).
    cone_centre : (float, float), optional
        Centre of the reference cone (a position known to be in the field). Given, each index is built
        only from the stars a field of its quad sizes can reach (:func:`index_plan`): on a wide scale
        range the small quads then come from a small cone (fast) and the big ones from the whole cone.
    index_build : IndexBuild, optional
        The indexes of these reference stars, scale range and cone, started earlier
        (:func:`start_index_build`); closed here. One made for other arguments is closed and
        replaced.

    Returns
    -------
    AnetOutcome
    """
    ny, nx = shape
    build = index_build
    if build is not None and build.key != IndexBuild.key_of(shape, scale_low_arcsec, scale_high_arcsec, cone_centre):
        build.close()  # built for another scale range or cone
        build = None
    if build is None:
        build = IndexBuild(shape=shape, ref_ra_deg=ref_ra_deg, ref_dec_deg=ref_dec_deg, ref_mag=ref_mag,
                           scale_low_arcsec=scale_low_arcsec, scale_high_arcsec=scale_high_arcsec,
                           cone_centre=cone_centre)
    with build:
        tmp = build.tmp
        n_ref = build.n_stars
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Table({"X": np.asarray(x, float) + 1.0, "Y": np.asarray(y, float) + 1.0,
                   "FLUX": np.asarray(flux, float)}).write(os.path.join(tmp, "xy.fits"))
        indexes = build.wait()
        if not indexes:
            return AnetOutcome(None, "astrometry.net could not build an index from the reference stars "
                               f"({n_ref} stars)", None, n_ref, 0, "")
        cfg = os.path.join(tmp, "astrometry.cfg")
        with open(cfg, "w") as fh:
            fh.write("inparallel\n" + "".join(f"index {p}\n" for p in indexes))
        wcs_path = os.path.join(tmp, "out.wcs")
        cmd = ["solve-field", os.path.join(tmp, "xy.fits"), "--config", cfg, "--width", str(nx), "--height", str(ny),
               "--scale-units", "arcsecperpix", "--scale-low", f"{scale_low_arcsec:.5f}",
               "--scale-high", f"{scale_high_arcsec:.5f}", "--no-plots", "--overwrite", "--no-remove-lines",
               "--uniformize", "0", "--crpix-center", "--tweak-order", str(int(tweak_order)),
               "--cpulimit", str(int(math.ceil(time_limit_s))), "--dir", tmp, "--new-fits", "none", "--corr", "none",
               "--rdls", "none", "--match", "none", "--index-xyls", "none", "--solved", os.path.join(tmp, "solved"),
               "--wcs", wcs_path, "--temp-dir", tmp]
        if hint is not None and hint_radius_deg is not None:
            cmd += ["--ra", f"{hint[0]:.6f}", "--dec", f"{hint[1]:.6f}", "--radius", f"{hint_radius_deg:.4f}"]
        try:
            proc = _run(cmd, timeout_s=time_limit_s)
        except subprocess.TimeoutExpired:
            reason = (f"astrometry.net found no solution within {time_limit_s:g} s matching {len(x)} detected stars to "
                      f"{n_ref} reference stars at {scale_low_arcsec:.3g}-{scale_high_arcsec:.3g} arcsec/pixel")
            return AnetOutcome(None, reason, None, n_ref, len(indexes), "")
        log = (proc.stdout or "") + (proc.stderr or "")
        odds = [float(m) for m in re.findall(r"log-odds ratio ([-0-9.eE+]+)", log)]
        if proc.returncode != 0 or not os.path.exists(wcs_path):
            reason = (f"astrometry.net found no solution matching {len(x)} detected stars to {n_ref} reference "
                      f"stars at {scale_low_arcsec:.3g}-{scale_high_arcsec:.3g} arcsec/pixel")
            return AnetOutcome(None, reason, max(odds) if odds else None, n_ref, len(indexes), log[-2000:])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FITSFixedWarning: a WCS file has no image (NAXIS 0)
            header = fits.getheader(wcs_path)
            wcs = WCS(header, relax=True)
        wcs.pixel_shape = (nx, ny)
        return AnetOutcome(wcs, None, max(odds) if odds else None, n_ref, len(indexes), log[-2000:])
