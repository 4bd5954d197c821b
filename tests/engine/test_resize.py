"""Resize taps: OpenCV's area and Lanczos-4 on whole images, windows, periodic images; the tiler resizing window by
window equals the whole image's resize."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from srkit.engine.geometry import Geometry
from srkit.engine.resize import Resize, taps
from srkit.engine.tiling import upscale_tiled

from ._models import nearest_x2

FLOAT_TOLERANCE = 1e-5  # fp32 sums of up to 8 taps against OpenCV's float resize


def _image(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((height, width, channels), dtype=np.float32)


def _resize_whole(image: np.ndarray, size: tuple[int, int], periodic: bool = False) -> np.ndarray:
    resize = Resize(image.shape[:2], size, periodic=periodic)
    chw = torch.from_numpy(image).permute(2, 0, 1)
    return resize.window(chw, (0, size[0], 0), (0, size[1], 0)).permute(1, 2, 0).numpy()


@pytest.mark.parametrize(
    "shape,size",
    [
        ((39, 51), (58, 76)),
        ((17, 23), (76, 101)),
        ((39, 51), (39, 60)),
        ((52, 68), (26, 34)),
        ((39, 51), (26, 34)),
        ((40, 44), (30, 33)),
    ],
)
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_whole_image_equals_opencv(shape, size, channels):
    """Up (Lanczos-4) and down (area), integer and non-integer factors, odd sizes: cv2.resize's float result."""
    image = _image(*shape, channels, seed=sum(shape))
    interpolation = cv2.INTER_AREA if size[1] < shape[1] else cv2.INTER_LANCZOS4
    expected = cv2.resize(image, size[::-1], interpolation=interpolation).reshape(*size, channels)
    got = _resize_whole(image, size)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= FLOAT_TOLERANCE


def test_weights_sum_to_one_and_identity_is_exact():
    for method in ("area", "lanczos4"):
        for n, m in ((7, 3), (30, 45), (12, 12)):
            index, weight = taps(method, n, m, 0, m)
            assert torch.allclose(weight.sum(dim=1), torch.ones(m, dtype=torch.float64))
            assert index.min() >= 0 and index.max() < n
    image = _image(9, 11)
    assert np.array_equal(_resize_whole(image, (9, 11)), image)


@pytest.mark.parametrize("first,count", [(0, 20), (13, 17), (41, 9)])
def test_a_window_gives_the_whole_images_pixels_where_its_support_lies_inside(first, count):
    """Rows first..first+count of the resize from a window of input rows around them (plus 5 rows each side)."""
    image = _image(40, 30, seed=3)
    size = (60, 45)
    whole = _resize_whole(image, size)
    resize = Resize(image.shape[:2], size)
    start = max(0, int(first * 40 / 60) - 5)
    end = min(40, int((first + count) * 40 / 60) + 6)
    window = torch.from_numpy(image[start:end]).permute(2, 0, 1)
    got = resize.window(window, (first, count, start), (0, 45, 0)).permute(1, 2, 0).numpy()
    assert np.abs(got - whole[first : first + count]).max() <= FLOAT_TOLERANCE


def test_periodic_resize_is_the_centre_of_the_tiled_image():
    image = _image(12, 10, seed=4)
    tiled = cv2.resize(np.tile(image, (3, 3, 1)), (3 * 15, 3 * 18), interpolation=cv2.INTER_LANCZOS4)
    assert np.abs(_resize_whole(image, (18, 15), periodic=True) - tiled[18:36, 15:30]).max() <= FLOAT_TOLERANCE


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="filter"):
        taps("cubic", 4, 8, 0, 8)
    with pytest.raises(ValueError, match="at least 1x1"):
        Resize((4, 4), (0, 3))
    with pytest.raises(ValueError, match="network output"):
        upscale_tiled(torch.rand(3, 5, 6), lambda b: b, Geometry(2, 8, 0, 0), resize=Resize((5, 6), (7, 9)))


@pytest.mark.parametrize("size", [(40, 52), (61, 77), (29, 37), (17, 21)])  # x2, x3.6 (up), x1.3 (down), x0.8
@pytest.mark.parametrize("out_dtype,top", [(torch.uint8, 255), (torch.uint16, 65535)])
@pytest.mark.parametrize("tile,batch", [(6, 1), (9, 3)])
def test_tiled_resize_equals_the_whole_image_resize(size, out_dtype, top, tile, batch):
    """Windows resized one by one and blended give the whole image's resize within one code, every pixel."""
    image = torch.rand(3, 17, 21, generator=torch.Generator().manual_seed(5))
    resize = Resize((34, 42), size)
    out = torch.full((*size, 3), top, dtype=out_dtype)
    upscale_tiled(image, nearest_x2, Geometry(2, tile, 2, 0), batch=batch, out=out, clamp=(0.0, 1.0), resize=resize)
    whole = _resize_whole(nearest_x2(image[None])[0].permute(1, 2, 0).numpy(), size)
    expected = np.floor(np.clip(whole, 0, 1) * top + 0.5)
    assert np.abs(out.numpy().astype(np.int64) - expected.astype(np.int64)).max() <= 1


def test_tiled_resize_in_wrap_mode_stays_periodic():
    image = torch.rand(3, 12, 16, generator=torch.Generator().manual_seed(6))
    size = (27, 36)  # x2 network, then x1.125
    resize = Resize((24, 32), size, periodic=True)
    out = upscale_tiled(image, nearest_x2, Geometry(2, 5, 2, 0, wrap=True), resize=resize)
    whole = _resize_whole(nearest_x2(image[None])[0].permute(1, 2, 0).numpy(), size, periodic=True)
    assert np.abs(out.numpy() - whole).max() <= FLOAT_TOLERANCE
