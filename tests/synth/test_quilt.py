"""Image quilting (srkit/synth/quilt.py): seamless, deterministic per seed, varied across seeds, close to the
exemplar's local statistics (scikit-image's LBP as the oracle), any size, unusable exemplars refused."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from skimage.feature import local_binary_pattern

from srkit.synth import noise
from srkit.synth import quilt as quilt_module
from srkit.synth.measures import colour_histogram, pooled_seam_score
from srkit.synth.quilt import SEARCH_WINDOW, Blocks, QuiltError, quilt

EXEMPLARS = ("brick", "grass", "gravel")  # scikit-image's CC0 textures (gray, 512 px): cut to 160 px to stay fast


def _exemplar(name: str, size: int = 160) -> np.ndarray:
    gray = getattr(skimage.data, name)()[:size, :size]
    return np.repeat(gray[..., None], 3, axis=2)


def _lbp_histogram(images: list[np.ndarray]) -> np.ndarray:
    """Uniform LBP (8 neighbours, radius 1) histogram of the luminance, by scikit-image."""
    codes = np.concatenate([local_binary_pattern(image[..., 0], 8, 1, "uniform").ravel() for image in images])
    return np.bincount(codes.astype(np.int64), minlength=10) / codes.size


def _crops(image: np.ndarray, size: int, count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [image[y : y + size, x : x + size] for y, x in rng.integers(0, image.shape[0] - size + 1, (count, 2))]


@pytest.mark.parametrize("name", EXEMPLARS)
def test_quilted_textures_tile_seamlessly(name):
    textures = [quilt(_exemplar(name), 96, 96, seed) for seed in range(4)]
    # the wrap border is no rougher than the interior lines (1 for a texture that tiles; crops of the same
    # exemplar, which do not tile, read 1.5 and more: tests/synth/test_measures.py)
    assert pooled_seam_score(textures) <= 1.2
    assert pooled_seam_score(_crops(_exemplar(name, 512), 96, 6, 0)) > 1.3  # the measure sees a real seam here


def test_the_same_seed_gives_the_same_bytes_and_seeds_differ():
    exemplar = _exemplar("gravel")
    first, again, other = quilt(exemplar, 80, 80, 3), quilt(exemplar, 80, 80, 3), quilt(exemplar, 80, 80, 4)
    assert first.dtype == np.uint8 and np.array_equal(first, again)
    assert np.abs(first.astype(int) - other).mean() > 10


@pytest.mark.parametrize("name", EXEMPLARS)
def test_local_statistics_are_the_exemplars_not_noise(name):
    exemplar = _exemplar(name)
    quilted = [quilt(exemplar, 96, 96, seed) for seed in range(4)]
    held_out = _crops(_exemplar(name, 512)[160:], 96, 4, 1)  # rows the quilt never saw
    palette = noise.palette_from_image(exemplar.reshape(-1, 3) / 255.0)
    perlin = [(noise.noise_texture("perlin", 96, seed, palette) * 255 + 0.5).astype(np.uint8) for seed in range(4)]
    reference = _lbp_histogram(held_out)
    distance = {
        source: 0.5 * np.abs(_lbp_histogram(images) - reference).sum()
        for source, images in (("quilt", quilted), ("perlin", perlin))
    }
    assert distance["quilt"] < 0.5 * distance["perlin"], distance
    tv = 0.5 * np.abs(colour_histogram(quilted) - colour_histogram([exemplar])).sum()
    assert tv < 0.15  # quilts copy exemplar pixels: the colours are the exemplar's


@pytest.mark.parametrize("height, width", [(97, 131), (8, 8), (33, 250)])
def test_odd_sizes_close_around_the_torus(height, width):
    texture = quilt(_exemplar("grass"), height, width, 1)
    assert texture.shape == (height, width, 3)
    for size, patch in ((height, 40), (width, 40)):
        blocks = Blocks.along(size, patch, 10)
        assert blocks.starts[0] == 0 and blocks.starts[-1] + blocks.patch > size  # the last block wraps over
        assert all(blocks.overlaps(i)[0] >= 1 for i in range(1, len(blocks.starts)))


def test_a_tileable_exemplar_may_be_sampled_across_its_edges():
    pattern = quilt(_exemplar("gravel"), 40, 40, 0)  # a 40 px tile: smaller than the 42-pixel blocks below
    textures = [quilt(pattern, 96, 96, seed, patch=40, tileable=True) for seed in range(2)]
    assert textures[0].shape == (96, 96, 3) and pooled_seam_score(textures) <= 1.2
    with pytest.raises(QuiltError, match="use a larger exemplar"):
        quilt(pattern, 96, 96, 0, patch=40)


@pytest.mark.parametrize("tileable", [False, True])
def test_a_large_exemplar_is_searched_in_windows_and_still_quilts_seamlessly(monkeypatch, tileable):
    """A phone photo has millions of patch positions: each block searches a window of SEARCH_WINDOW a side, so
    its FFTs stay that size (whole, they took minutes a texture); the quilt is still seamless, made of the
    exemplar's own pixels and the same per seed."""
    gravel = _exemplar("gravel", 512)
    exemplar = np.concatenate([np.concatenate([gravel, gravel[:, ::-1]], 1)] * 2)[:1000, :900]  # 1000 x 900
    exemplar[500:, :, 0] //= 2  # the lower half in other colours: blocks from windows of either half still meet
    shapes = []
    rfft2 = torch.fft.rfft2
    monkeypatch.setattr(
        quilt_module.torch.fft, "rfft2", lambda x, **k: shapes.append(max(x.shape[-2:])) or rfft2(x, **k)
    )
    textures = [quilt(exemplar, 150, 130, seed, tileable=tileable) for seed in range(3)]
    patch = quilt_module.default_patch(exemplar.shape)
    blocks = max(Blocks.along(side, patch, patch // 4).patch for side in (150, 130))  # the blocks' patch side
    assert shapes and max(shapes) == SEARCH_WINDOW + blocks - 1, set(shapes)
    assert pooled_seam_score(textures) <= 1.2
    colours = {tuple(c) for c in exemplar.reshape(-1, 3)}
    assert all(tuple(c) in colours for c in textures[0].reshape(-1, 3)[::97])
    monkeypatch.setattr(quilt_module.torch.fft, "rfft2", rfft2)
    assert np.array_equal(textures[1], quilt(exemplar, 150, 130, 1, tileable=tileable))


@pytest.mark.parametrize(
    "exemplar, match",
    [
        (np.zeros((20, 64, 3), np.uint8), "20x64|64x20"),
        (np.zeros((64, 64), np.uint8), r"\(H, W, 3\) uint8"),
        (np.zeros((64, 64, 3), np.float32), r"\(H, W, 3\) uint8"),
    ],
)
def test_unusable_exemplars_are_refused(exemplar, match):
    with pytest.raises(QuiltError, match=match):
        quilt(exemplar, 64, 64, 0)
