"""GIMP .pat patterns: files written here in the documented format read back exactly; real ones when installed."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from srkit.io.images import ImageReadError
from srkit.io.patterns import read_pattern

from ._patterns import pat_bytes

GIMP_PATTERNS = Path("/usr/share/gimp/2.0/patterns")


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_written_pattern_reads_back(tmp_path, depth):
    shape = (7, 5) if depth == 1 else (7, 5, depth)
    pixels = np.random.default_rng(depth).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / "p.pat"
    path.write_bytes(pat_bytes(pixels, "Rough stone \u00e9"))
    pattern = read_pattern(path)
    assert pattern.name == "Rough stone \u00e9" and pattern.mode == ("L", "LA", "RGB", "RGBA")[depth - 1]
    np.testing.assert_array_equal(pattern.pixels, pixels)


@pytest.mark.parametrize(
    "damage,needle",
    [
        (lambda data: data[:20], "not a GIMP pattern"),
        (lambda data: data[:20] + b"GPAX" + data[24:], "no GPAT magic"),
        (lambda data: data[:-1], "truncated"),
        (lambda data: data[:4] + struct.pack(">I", 2) + data[8:], "version 2"),
    ],
)
def test_damaged_pattern_is_refused_naming_the_file(tmp_path, damage, needle):
    path = tmp_path / "bad.pat"
    path.write_bytes(damage(pat_bytes(np.zeros((4, 4, 3)))))
    with pytest.raises(ImageReadError, match=needle) as error:
        read_pattern(path)
    assert "bad.pat" in str(error.value)


@pytest.mark.skipif(not GIMP_PATTERNS.is_dir(), reason="Debian gimp-data is not installed (apt-get install gimp-data)")
def test_every_installed_gimp_pattern_reads():
    paths = sorted(GIMP_PATTERNS.glob("*/*.pat"))
    assert len(paths) >= 50
    for path in paths:
        pattern = read_pattern(path)
        assert pattern.name and pattern.pixels.shape[0] >= 1 and pattern.pixels.dtype == np.uint8, path
    burlap = read_pattern(GIMP_PATTERNS / "Fabric" / "burlap.pat")
    assert (burlap.name, burlap.pixels.shape) == ("Burlap", (96, 96, 3))
