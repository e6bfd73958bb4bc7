"""Read an uploaded FITS image: unpack, choose the science HDU, refuse what is not a reduced frame.

Accepted: a plain FITS image, gzip- or bzip2-compressed (``.fits.gz``), tile-compressed (fpack
``.fz``), or multi-extension with one science image (an extension named SCI/IMAGE/DATA, else the
largest 2-D image). Refused with a sentence: bytes that are not FITS, damaged files, files without an
image, data cubes, raw multi-amplifier frames (several amplifier extensions with DETSEC/BIASSEC:
we take reduced frames), calibration frames (bias, dark, flat), empty or tiny images.

astropy reports some damage only as warnings; they are recorded and turned into a refusal when data
are actually missing, and into notes otherwise (never left to escape: warnings are errors in tests).
"""
from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from numpy.typing import NDArray

from shared.fitsimage.model import ImageFrame, ImageRefused
from shared.unpacking import UnpackedTooLarge, UnpackError, bunzip2, gunzip

__all__ = ["read_image"]

#: Smallest side of an image that can hold enough stars for a calibration.
MIN_SIDE_PX = 32
_SCIENCE_NAMES = ("SCI", "IMAGE", "DATA", "IMG", "PRIMARY", "COMPRESSED_IMAGE")
_AMPLIFIER_KEYS = ("DETSEC", "BIASSEC", "AMPNAME", "AMPSEC", "CCDSEC")
_CALIBRATION_TYPES = {"BIAS": "a bias frame", "ZERO": "a bias frame", "DARK": "a dark frame",
                      "FLAT": "a flat field", "SKYFLAT": "a flat field", "DOMEFLAT": "a flat field",
                      "LAMPFLAT": "a flat field", "ARC": "an arc lamp frame", "LAMP": "an arc lamp frame"}
# primary keywords never inherited by an extension
_STRUCTURAL = {"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND", "PCOUNT", "GCOUNT",
               "XTENSION", "BSCALE", "BZERO", "BLANK", "CHECKSUM", "DATASUM", "EXTNAME", "EXTVER", "INHERIT",
               "COMMENT", "HISTORY", ""}


def _unpack(data: bytes) -> tuple[bytes, str]:
    """Gunzip / bunzip2 when the bytes say so (streamed, stopped at the process's unpacked limit:
    ``shared.unpacking``), else return them as they are."""
    try:
        if data[:2] == b"\x1f\x8b":
            return gunzip(data), "gzip"
        if data[:3] == b"BZh":
            return bunzip2(data), "bzip2"
    except UnpackError as exc:
        raise ImageRefused(f"the compressed file is damaged ({exc}): compress the image again and upload "
                           "the complete file.") from exc
    except UnpackedTooLarge as exc:
        raise ImageRefused(f"the image unpacks to more than {exc.limit / 1e6:g} MB, the largest "
                           "this server accepts: upload a smaller frame (crop or bin it).") from exc
    return data, "none"


def _damaged(reason: str) -> ImageRefused:
    reason = " ".join(str(reason).split()).split(". ")[0].rstrip(".")
    return ImageRefused(f"the FITS file is damaged ({reason}): it was probably truncated or altered during "
                        "transfer, so export the image again and upload the complete file.")


# HDUs are typed Any: astropy ships no type information.
def _is_image(hdu: Any) -> bool:
    return isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)) and hdu.header.get("NAXIS", 0) >= 2 \
        and all(int(hdu.header.get(f"NAXIS{i}", 0)) > 0 for i in range(1, int(hdu.header["NAXIS"]) + 1))


def _name(hdu: Any, index: int) -> str:
    if index == 0:
        return "PRIMARY"
    return str(hdu.name or hdu.header.get("EXTNAME", "") or f"HDU{index}").upper()


def _raw_amplifiers(images: list[tuple[int, Any]]) -> str | None:
    """A reason when the image HDUs look like the amplifiers of a raw frame."""
    if len(images) < 2:
        return None
    shapes = {(hdu.header.get("NAXIS1"), hdu.header.get("NAXIS2")) for _, hdu in images}
    with_sections = [h for _, h in images if any(k in h.header for k in _AMPLIFIER_KEYS)]
    if len(shapes) == 1 and len(with_sections) == len(images):
        overscan = any("BIASSEC" in h.header for h in with_sections)
        return (f"this is a raw multi-amplifier frame ({len(images)} amplifier extensions with detector "
                f"sections{' and overscan' if overscan else ''}): this server takes reduced frames, so "
                "subtract the bias, trim the overscan, flat-field, join the amplifiers into one image and "
                "upload that.")
    return None


def _choose(hdus: fits.HDUList, extension: int | str | None) -> int:
    images = [(i, hdu) for i, hdu in enumerate(hdus) if _is_image(hdu)]
    if extension is not None:
        if isinstance(extension, (int, np.integer)):
            index = int(extension)
            if not 0 <= index < len(hdus):
                raise ImageRefused(f"the file has no extension {index} (it has {len(hdus)} HDUs, 0 to "
                                   f"{len(hdus) - 1}).")
        else:
            wanted = str(extension).strip().upper()
            matches = [i for i, hdu in enumerate(hdus) if _name(hdu, i) == wanted]
            if not matches:
                names = ", ".join(_name(h, i) for i, h in enumerate(hdus))
                raise ImageRefused(f"the file has no extension named {extension!r} (it has {names}).")
            index = matches[0]
        if not _is_image(hdus[index]):
            raise ImageRefused(f"extension {extension!r} holds no image (it is a "
                               f"{type(hdus[index]).__name__.replace('HDU', ' HDU')}).")
        return index
    if not images:
        kinds = ", ".join(sorted({type(h).__name__ for h in hdus}))
        raise ImageRefused(f"the FITS file holds no image ({kinds}): upload the reduced image, or upload a "
                           "source catalogue through the catalogue form.")
    amp = _raw_amplifiers(images)
    if amp:
        raise ImageRefused(amp)
    for name in _SCIENCE_NAMES:
        named = [i for i, hdu in images if _name(hdu, i) == name]
        if named:
            return named[0]
    return max(images, key=lambda item: int(np.prod([item[1].header.get(f"NAXIS{k}", 1) for k in (1, 2)])))[0]


def _merged_header(hdus: fits.HDUList, index: int) -> fits.Header:
    header = hdus[index].header.copy()
    if isinstance(hdus[index], fits.CompImageHDU):
        header = fits.Header(hdus[index].header)
    if index == 0:
        return header
    for card in hdus[0].header.cards:
        key = card.keyword
        if key in _STRUCTURAL or key in header:
            continue
        try:
            header.append(card, end=True)
        except (ValueError, KeyError):  # a card astropy refuses to copy: skip it
            continue
    return header


def _plane(data: NDArray[Any], name: str) -> NDArray[Any]:
    arr = np.asarray(data)
    if arr.ndim > 2:
        squeezed = np.squeeze(arr)
        if squeezed.ndim != 2:
            raise ImageRefused(f"extension {name} is a data cube of shape {arr.shape}: upload one frame "
                               "(a 2-D image).")
        arr = squeezed
    return arr


def read_image(data: bytes, *, extension: int | str | None = None) -> ImageFrame:
    """Read an uploaded FITS image into an :class:`ImageFrame`.

    Parameters
    ----------
    data : bytes
        The file: FITS, gzip/bzip2-compressed FITS, or tile-compressed (fpack) FITS.
    extension : int or str, optional
        HDU to use (index or EXTNAME); by default the science HDU is chosen (an extension named
        SCI, IMAGE or DATA, else the largest image).

    Returns
    -------
    ImageFrame
        float32 pixels, the merged header and what was decided.

    Raises
    ------
    ImageRefused
        With one sentence saying what is wrong and what to do: not FITS, damaged, no image, a data
        cube, a raw multi-amplifier frame, a calibration frame, an empty or tiny image.
    """
    raw, compression = _unpack(bytes(data))
    if not raw.startswith(b"SIMPLE  ="):
        raise ImageRefused("the file is not a FITS image (it does not start with the FITS 'SIMPLE' card): "
                           "upload the reduced frame as FITS (.fits, .fits.gz or .fits.fz).")
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(io.BytesIO(raw), memmap=False, lazy_load_hdus=False) as hdus:
                index = _choose(hdus, extension)
                hdu = hdus[index]
                name = _name(hdu, index)
                if isinstance(hdu, fits.CompImageHDU):
                    compression = "tile"
                header = _merged_header(hdus, index)
                pixels = _plane(hdu.data, name)
                n_images = sum(1 for h in hdus if _is_image(h))
        except ImageRefused:
            raise
        except Exception as exc:  # astropy signals damage with OSError, TypeError, ValueError, IndexError...
            raise _damaged(str(exc) or type(exc).__name__) from exc
    if any("multiple of 2880" in str(w.message) or "truncated" in str(w.message).lower() for w in caught):
        raise _damaged("the file ends before its last data block")
    messages = [" ".join(str(w.message).split()) for w in caught
                if issubclass(w.category, (fits.verify.VerifyWarning, AstropyUserWarning))]
    if messages:
        more = f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""
        notes.append(f"FITS reader: {messages[0][:160]}{more}")
    if n_images > 1 and extension is None:
        notes.append(f"used extension {index} ({name}) of {n_images} images")

    image_type = str(header.get("IMAGETYP", header.get("OBSTYPE", "")) or "").strip().upper().replace(" ", "")
    for key, what in _CALIBRATION_TYPES.items():
        if image_type == key or image_type.startswith(key) or image_type.endswith(key):
            raise ImageRefused(f"this is {what} (IMAGETYP/OBSTYPE = {image_type!r}), not an exposure of the "
                               "field: upload the reduced science frame.")
    ny, nx = pixels.shape
    if min(ny, nx) < MIN_SIDE_PX:
        raise ImageRefused(f"the image is only {nx} x {ny} pixels: at least {MIN_SIDE_PX} pixels a side are "
                           "needed to find stars to calibrate against.")
    frame = np.array(pixels, dtype=np.float32)  # copy: the HDU list is closed
    bad = ~np.isfinite(frame)
    n_bad = int(bad.sum())
    if n_bad == frame.size:
        raise ImageRefused("the image has no valid pixel (all are NaN or infinite).")
    if n_bad:
        frame[bad] = np.nan
        notes.append(f"{n_bad} pixels without a value (NaN or infinite) are ignored")
    finite = frame[~bad]
    if float(np.nanmax(finite)) == float(np.nanmin(finite)):
        raise ImageRefused(f"the image is empty: every pixel has the value {float(finite[0]):g}.")
    return ImageFrame(data=frame, header=header, hdu_index=index, extname=name, compression=compression,
                      notes=tuple(notes))
