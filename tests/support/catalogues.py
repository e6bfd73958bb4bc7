"""Small edits of a SExtractor ASCII_HEAD catalogue for tests (distinct bytes, same science)."""
from __future__ import annotations


def variant(catalogue: bytes, n: int) -> bytes:
    """The same catalogue with the last star 0.001*n mag fainter: different bytes, same calibration."""
    lines = catalogue.decode().rstrip("\n").split("\n")
    cols = lines[-1].split()
    cols[1] = f"{float(cols[1]) + 0.001 * n:.4f}"
    lines[-1] = "  ".join(cols)
    return ("\n".join(lines) + "\n").encode()


def shifted(catalogue: bytes, *, d_ra_deg: float = 0.0, d_dec_deg: float = 0.0) -> bytes:
    """The catalogue with every ALPHA_J2000 and DELTA_J2000 (4th and 5th columns) moved (no wrapping)."""
    out = []
    for line in catalogue.decode().splitlines():
        if line.startswith("#") or not line.strip():
            out.append(line)
            continue
        cols = line.split()
        cols[3], cols[4] = f"{float(cols[3]) + d_ra_deg:.7f}", f"{float(cols[4]) + d_dec_deg:.7f}"
        out.append("  ".join(cols))
    return ("\n".join(out) + "\n").encode()
