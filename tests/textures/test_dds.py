"""DDS files srkit writes, read back by a header parser written from the DDS documentation and Pillow's decoder."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from srkit.io.dds import CODECS, dds_bytes, encode_level
from srkit.io.patterns import read_pattern
from srkit.synth.mipmaps import mip_chain

from ._dds import psnr, read_dds

GIMP_PATTERNS = Path("/usr/share/gimp/2.0/patterns")
# PSNR floors (level 0, smaller levels) on a smooth seeded image, per codec; measured 34.2/27.4 (bc1, bc3),
# 37.9/30.3 (bc4), 39.6/32.1 (bc5), 49.2/42.2 (bc7); `none` is exact
SMOOTH_FLOOR = {
    "bc1": (32.0, 25.0),
    "bc3": (32.0, 25.0),
    "bc4": (36.0, 28.0),
    "bc5": (37.0, 30.0),
    "bc7": (46.0, 40.0),
    "none": (float("inf"), float("inf")),
}


def _smooth(height: int, width: int, channels: int, seed: int) -> np.ndarray:
    """Seeded smooth blobs (bicubic from 8-pixel cells) in one tint, as real texture colours lie near a line."""
    coarse = np.random.default_rng(seed).integers(0, 256, (height // 8 + 2, width // 8 + 2), np.uint8)
    grey = np.asarray(Image.fromarray(coarse).resize((coarse.shape[1] * 8, coarse.shape[0] * 8), Image.BICUBIC))
    grey = grey[:height, :width].astype(np.float64)
    if channels == 1:
        return grey.astype(np.uint8)
    return np.clip(grey[..., None] * np.array([0.9, 0.7, 0.5]) + np.array([20, 30, 40]), 0, 255).astype(np.uint8)


def _rgb(pixels: np.ndarray) -> np.ndarray:
    """A pattern's pixels as RGB, cropped to multiples of 4 (the patterns tile, so any crop is a fair sample)."""
    if pixels.ndim == 2 or pixels.shape[2] == 2:
        pixels = np.repeat((pixels if pixels.ndim == 2 else pixels[..., 0])[..., None], 3, axis=2)
    return np.ascontiguousarray(pixels[: pixels.shape[0] // 4 * 4, : pixels.shape[1] // 4 * 4, :3])


@pytest.mark.parametrize(
    "codec,srgb",
    [
        ("bc1", False),
        ("bc1", True),
        ("bc3", False),
        ("bc3", True),
        ("bc4", False),
        ("bc5", False),
        ("bc7", False),
        ("bc7", True),
        ("none", False),
        ("none", True),
    ],
)
def test_every_codec_and_level_decodes_in_pillow(tmp_path, codec, srgb):
    channels = 1 if codec == "bc4" else 3
    source = _smooth(32, 64, channels, seed=3)
    chain = mip_chain(source, "srgb" if srgb else "linear")
    path = tmp_path / "t.dds"
    path.write_bytes(dds_bytes(chain, CODECS[codec], srgb))
    dds = read_dds(path)
    assert (dds.codec, dds.srgb, dds.width, dds.height) == (codec, srgb, 64, 32)
    assert dds.dx10 == (srgb or codec in ("bc5", "bc7", "none")), "DX10 only where the format needs it (and BC5)"
    assert [level.shape[:2] for level in dds.levels] == [(32, 64), (16, 32), (8, 16), (4, 8), (2, 4), (1, 2), (1, 1)]
    if dds.dx10:
        assert dds.alpha_mode == 3, "opaque"
    for index, (level, expected) in enumerate(zip(dds.levels, chain)):
        decoded = level if codec == "bc4" else level[..., :2] if codec == "bc5" else level[..., :3]
        reference = expected if codec != "bc5" else expected[..., :2]
        floor = SMOOTH_FLOOR[codec][0 if index == 0 else 1]
        assert psnr(decoded, reference) >= floor, (index, psnr(decoded, reference))
    if not (srgb and codec in ("bc1", "bc3")):  # Pillow opens these by itself too (not sRGB BC1/BC3)
        with Image.open(path) as opened:
            np.testing.assert_array_equal(np.asarray(opened), dds.levels[0])
            assert ("gamma" in opened.info) == srgb


@pytest.mark.parametrize("name", ["brick", "grass", "gravel"])
def test_scikit_image_textures_keep_their_quality(tmp_path, name):
    """Real CC0 textures (grey, 512 px): measured BC7 44.8-53.8 dB, BC4 34.6-42.5, BC1 29.3-37.0."""
    grey = getattr(skimage.data, name)()
    rgb = np.repeat(grey[..., None], 3, axis=2)
    for codec, pixels, floor in (("bc7", rgb, 44.0), ("bc4", grey, 34.0), ("bc1", rgb, 29.0)):
        path = tmp_path / f"{codec}.dds"
        path.write_bytes(dds_bytes([pixels], CODECS[codec], srgb=False))
        level = read_dds(path).levels[0]
        assert psnr(level if codec == "bc4" else level[..., :3], pixels) >= floor, codec


@pytest.mark.skipif(not GIMP_PATTERNS.is_dir(), reason="Debian gimp-data is not installed (apt-get install gimp-data)")
def test_gimp_patterns_keep_their_quality(tmp_path):
    """All 58 patterns: measured pooled (one PSNR of the mean squared error) BC7 41.2 dB, worst 34.1 (pastel);
    BC1 30.4 dB, worst 23.1 (bluesquares: flat-shaded squares BC1's 4-colour blocks cannot hold)."""
    errors = {"bc1": [], "bc7": []}
    for pattern_path in sorted(GIMP_PATTERNS.glob("*/*.pat")):
        pixels = _rgb(read_pattern(pattern_path).pixels)
        for codec, values in errors.items():
            path = tmp_path / f"{codec}.dds"
            path.write_bytes(dds_bytes([pixels], CODECS[codec], srgb=True))
            decoded = read_dds(path).levels[0][..., :3].astype(np.float64)
            values.append(np.mean((decoded - pixels) ** 2))
    assert len(errors["bc7"]) >= 50
    pooled = {codec: 10 * np.log10(255.0**2 / np.mean(values)) for codec, values in errors.items()}
    worst = {codec: 10 * np.log10(255.0**2 / np.max(values)) for codec, values in errors.items()}
    assert pooled["bc7"] >= 40.0 and worst["bc7"] >= 33.0, (pooled, worst)
    assert pooled["bc1"] >= 30.0 and worst["bc1"] >= 22.0, (pooled, worst)


def test_mip_tails_fill_one_block_and_odd_sides_are_refused():
    for shape in ((2, 1, 3), (1, 1, 3), (2, 8, 3)):
        level = np.random.default_rng(1).integers(0, 256, shape, np.uint8)
        assert len(encode_level(level, CODECS["bc7"])) == 16 * max(1, shape[1] // 4)
    with pytest.raises(ValueError, match="multiples of 4"):
        encode_level(np.zeros((3, 3, 3), np.uint8), CODECS["bc7"])
    with pytest.raises(ValueError, match="no sRGB variant"):
        dds_bytes([np.zeros((4, 4), np.uint8)], CODECS["bc4"], srgb=True)


def test_a_bc5_normal_map_reads_back_the_same_in_pillow_and_ffmpeg(tmp_path):
    # x in red rising left to right, y in green rising top to bottom: a swap of the two shows at once
    ramp = np.arange(0, 256, 16, dtype=np.uint8)
    normal = np.stack(
        [np.tile(ramp, (16, 1)), np.tile(ramp[:, None], (1, 16)), np.full((16, 16), 255, np.uint8)], axis=2
    )
    path = tmp_path / "normal.dds"
    path.write_bytes(dds_bytes([normal], CODECS["bc5"], srgb=False))
    dds = read_dds(path)
    assert dds.dx10 and dds.codec == "bc5"  # DXGI_FORMAT_BC5_UNORM, not the legacy ATI2
    with Image.open(path) as opened:
        pillow = np.asarray(opened.convert("RGB"))[..., :2].astype(np.int64)
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    ffmpeg = np.frombuffer(raw, np.uint8).reshape(16, 16, 3)[..., :2].astype(np.int64)
    np.testing.assert_array_equal(ffmpeg, pillow)
    assert np.abs(pillow - normal[..., :2]).max() <= 4  # BC5 keeps x and y to a few codes
