"""A small compressed upload that unpacks to a huge file (a "gzip bomb") is refused with a sentence as soon
as the unpacked size passes the limit, and the memory spent on it stays near that limit, not near what the
file would unpack to; honest compressed files (several members, bzip2) still read whole."""
from __future__ import annotations

import bz2
import gzip
import io
import os
import subprocess
import sys
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from astropy.io import fits

from shared import unpacking
from shared.catalogue import CatalogueError, read_catalogue
from shared.fitsimage import ImageRefused, read_image

LIMIT = 16_000_000
#: What a refused bomb may cost above the limit: the bomb itself (1.2 MB), the step's output (1 MiB) and the
#: growth of the output buffer; the old reader spent all 268 MB (and more for its copy).
OVERHEAD = 12_000_000
UNPACKED = 1 << 28
ZEROS = b"\0" * (1 << 24)


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """1.2 MB of gzip (one member) that unpacks to 256 MiB of zeros."""
    packer = zlib.compressobj(1, wbits=31)
    return b"".join(packer.compress(ZEROS) for _ in range(UNPACKED // len(ZEROS))) + packer.flush()


@pytest.fixture(scope="module")
def bzip2_bomb() -> bytes:
    """A few hundred bytes of bzip2 (16 streams) that unpack to 256 MiB of zeros."""
    return bz2.compress(ZEROS, 9) * (UNPACKED // len(ZEROS))


@pytest.fixture
def limit():
    before = unpacking.max_unpacked_bytes()
    unpacking.set_max_unpacked_bytes(LIMIT)
    yield LIMIT
    unpacking.set_max_unpacked_bytes(before)


def peak_of(call):
    """(the exception ``call`` raised, the peak of the memory Python allocated meanwhile, seconds)."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the caller asserts which
        raised = exc
    else:
        raised = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return raised, peak, time.monotonic() - started


def test_a_gzip_bomb_catalogue_is_refused_near_the_limit(gzip_bomb, limit):
    assert len(gzip_bomb) < 1_300_000
    raised, peak, seconds = peak_of(lambda: read_catalogue(gzip_bomb, filename="field.cat.gz"))
    assert isinstance(raised, CatalogueError)
    assert "larger than 16 MB once decompressed" in str(raised)
    assert peak < limit + OVERHEAD, f"{peak / 1e6:.1f} MB"
    assert seconds < 10


@pytest.mark.parametrize("which", ["gzip", "bzip2"])
def test_a_compressed_bomb_image_is_refused_near_the_limit(which, gzip_bomb, bzip2_bomb, limit):
    bomb = gzip_bomb if which == "gzip" else bzip2_bomb
    raised, peak, seconds = peak_of(lambda: read_image(bomb))
    assert isinstance(raised, ImageRefused)
    assert str(raised).startswith("the image unpacks to more than 16 MB, the largest this server accepts")
    assert peak < limit + OVERHEAD, f"{peak / 1e6:.1f} MB"
    assert seconds < 10


def test_files_below_the_limit_still_unpack_whole_in_every_member(limit):
    data = os.urandom(3_000_000) + b"star " * 400_000
    assert unpacking.gunzip(gzip.compress(data[:1000]) + gzip.compress(data[1000:])) == data
    assert unpacking.bunzip2(bz2.compress(data[:10]) + bz2.compress(data[10:])) == data
    assert unpacking.gunzip(gzip.compress(b"x") + b"\0" * 512) == b"x"  # tape padding after the member
    image = io.BytesIO()
    fits.PrimaryHDU(np.random.default_rng(1).normal(100, 5, (64, 80)).astype(np.float32)).writeto(image)
    frame = read_image(bz2.compress(image.getvalue()))
    assert frame.compression == "bzip2" and frame.shape == (64, 80)
    assert read_image(gzip.compress(image.getvalue())).compression == "gzip"


@pytest.mark.parametrize("damage", ["truncated", "garbage after"])
def test_a_damaged_compressed_file_is_refused_with_a_sentence(damage):
    packed = gzip.compress(os.urandom(200_000))
    data = packed[:-5000] if damage == "truncated" else packed + b"not gzip at all"
    with pytest.raises(CatalogueError, match="the gzip-compressed file is damaged"):
        read_catalogue(data)
    with pytest.raises(ImageRefused, match="the compressed file is damaged"):
        read_image(data)


def test_a_service_process_takes_the_limit_from_the_environment():
    code = "from shared import unpacking; print(unpacking.max_unpacked_bytes())"
    env = {**os.environ, "CPCS_MAX_UNPACKED_MB": "3.5"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         timeout=60)
    assert out.stdout.strip() == "3500000"
    env.pop("CPCS_MAX_UNPACKED_MB")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         timeout=60)
    assert int(out.stdout) == unpacking.DEFAULT_MAX_UNPACKED_BYTES == 512_000_000
