"""Small edits of a SExtractor ASCII_HEAD catalogue for tests (distinct bytes, same science)."""
from __future__ import annotations


def variant(catalogue: bytes, n: int) -> bytes:
    """The same catalogue with the last star 0.001*n mag fainter: different bytes, same calibration."""
    lines = catalogue.decode().rstrip("\n").split("\n")
    cols = lines[-1].split()
    cols[1] = f"{float(cols[1]) + 0.001 * n:.4f}"
    lines[-1] = "  ".join(cols)
    return ("\n".join(lines) + "\n").encode()
