"""srkit.Upscaler: dtypes, channel layouts, alpha, PIL modes, output scale, tiles, on a small saved model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import srkit
from srkit.models.zoo import LoadedModel

from .engine._models import small_model


@pytest.fixture(scope="module")
def model():
    module, info = small_model("compact-x3", seed=11)
    return LoadedModel.of(module, info, "test-compact")


def _module_codes(model, rgb_unit: np.ndarray, top: float) -> np.ndarray:
    """Oracle: the PyTorch module on the whole image, clamped, scaled and rounded half up."""
    x = torch.from_numpy(rgb_unit.transpose(2, 0, 1).copy())[None]
    with torch.no_grad():
        y = model.module(x).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return np.floor(y * top + 0.5)


def _random_image(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.float32:
        return rng.random(shape, dtype=np.float32)
    return rng.integers(0, np.iinfo(dtype).max + 1, size=shape, dtype=dtype)


@pytest.mark.parametrize("dtype,top", [(np.uint8, 255), (np.uint16, 65535)])
def test_integer_rgb_matches_the_module_within_one_code(model, dtype, top):
    image = _random_image((19, 23, 3), dtype)
    out = srkit.Upscaler(model, device="cpu", tile=8).upscale(image)
    assert out.dtype == dtype and out.shape == (57, 69, 3)
    expected = _module_codes(model, image.astype(np.float32) / top, top)
    assert np.abs(out.astype(np.int64) - expected).max() <= 1


def test_float_input_stays_float_in_unit_range(model):
    image = _random_image((10, 12, 3), np.float32)
    out = srkit.Upscaler(model, device="cpu").upscale(image)
    assert out.dtype == np.float32 and out.shape == (30, 36, 3)
    assert 0.0 <= out.min() and out.max() <= 1.0


@pytest.mark.parametrize("dtype,top", [(np.uint8, 255.0), (np.uint16, 65535.0)])
def test_float_input_packed_to_codes_is_the_float_output_rounded(model, dtype, top):
    """out_dtype packs codes tile by tile: exactly the float result clamped, scaled and rounded half up."""
    image = _random_image((19, 23, 3), np.float32, seed=5)
    up = srkit.Upscaler(model, device="cpu", tile=8)
    floats = up.upscale(image)
    out = up.upscale(image, out_dtype=dtype)
    assert out.dtype == dtype and out.shape == floats.shape == (57, 69, 3)
    assert np.array_equal(out, np.floor(np.clip(floats, 0.0, 1.0) * np.float32(top) + 0.5).astype(dtype))
    with pytest.raises(TypeError, match="out_dtype"):
        up.upscale(_random_image((4, 4, 3), np.uint8), out_dtype=np.uint8)
    with pytest.raises(TypeError, match="out_dtype"):
        up.upscale(image, out_dtype=np.float32)


def test_grayscale_and_alpha_are_kept(model):
    up = srkit.Upscaler(model, device="cpu")
    gray = _random_image((9, 11), np.uint8)
    out = up.upscale(gray)
    assert out.shape == (27, 33) and out.dtype == np.uint8
    rgba = _random_image((9, 11, 4), np.uint8, seed=3)
    out = up.upscale(rgba)
    assert out.shape == (27, 33, 4)
    # colour as if alone; alpha as its own gray image
    assert np.abs(out[..., :3].astype(int) - up.upscale(np.ascontiguousarray(rgba[..., :3])).astype(int)).max() == 0
    assert np.abs(out[..., 3].astype(int) - up.upscale(np.ascontiguousarray(rgba[..., 3])).astype(int)).max() == 0


@pytest.mark.parametrize("outscale", [None, 3])
def test_a_one_channel_model_takes_gray_images_as_they_are(outscale):
    module, info = small_model("compact-gray-x2", seed=5)
    gray_model = LoadedModel.of(module, info, "test-gray")
    image = _random_image((13, 17), np.float32, seed=4)
    up = srkit.Upscaler(gray_model, device="cpu", tile=8, output_scale=outscale)
    out = up.upscale(image)
    size = (26, 34) if outscale is None else (39, 51)
    assert out.shape == size and out.dtype == np.float32
    assert up.upscale(image[..., None]).shape == (*size, 1)
    if outscale is None:
        with torch.no_grad():
            expected = module(torch.from_numpy(image)[None, None]).clamp(0, 1)[0, 0].numpy()
        assert np.abs(out - expected).max() < 1e-5


def test_a_one_channel_model_runs_each_plane_of_a_colour_image_as_a_gray_image():
    module, info = small_model("compact-gray-x2", seed=5)
    up = srkit.Upscaler(LoadedModel.of(module, info, "test-gray"), device="cpu", tile=8)
    rgba = _random_image((13, 17, 4), np.uint8, seed=6)
    progress = []
    out = up.upscale(rgba, on_progress=lambda done, total: progress.append((done, total)))
    assert out.shape == (26, 34, 4) and out.dtype == np.uint8
    done, totals = zip(*progress)  # one bar over the four passes
    assert set(totals) == {done[-1]} and list(done) == sorted(done) and len(done) == done[-1] > 4
    for plane in range(4):
        assert np.array_equal(out[..., plane], up.upscale(np.ascontiguousarray(rgba[..., plane]))), plane


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "I;16", "P"])
def test_pil_images_come_back_as_pil(model, mode):
    base = Image.fromarray(_random_image((8, 10, 3), np.uint8))
    image = base.convert(mode) if mode != "I;16" else Image.fromarray(_random_image((8, 10), np.uint16))
    out = srkit.Upscaler(model, device="cpu").upscale(image)
    assert isinstance(out, Image.Image) and out.size == (30, 24)
    assert out.mode == {"P": "RGB"}.get(mode, mode)


def test_outscale_resizes_to_the_requested_factor(model):
    out = srkit.Upscaler(model, device="cpu", output_scale=2).upscale(_random_image((10, 14, 3), np.uint8))
    assert out.shape == (20, 28, 3)


@pytest.mark.parametrize("dtype,top", [(np.uint8, 255), (np.uint16, 65535)])
@pytest.mark.parametrize("shape", [(13, 17), (13, 17, 3), (13, 17, 4)])
@pytest.mark.parametrize("outscale", [2, 4.5, 1.7])  # from an x3 model: down x2/3, up x1.5, down x0.57
def test_outscale_resizes_the_integer_output_within_one_code_of_the_float_resize(model, dtype, top, shape, outscale):
    """-s resizes each 8-pixel tile's float network output on the device and packs the result; the oracle
    resizes the whole float network output with OpenCV (INTER_AREA down, INTER_LANCZOS4 up)."""
    cv2 = pytest.importorskip("cv2")
    image = _random_image(shape, dtype, seed=7)
    out = srkit.Upscaler(model, device="cpu", tile=8, output_scale=outscale).upscale(image)
    unit = srkit.Upscaler(model, device="cpu", tile=8).upscale(image.astype(np.float32) / np.float32(top))
    size = (round(shape[1] * outscale), round(shape[0] * outscale))
    interpolation = cv2.INTER_AREA if size[0] < unit.shape[1] else cv2.INTER_LANCZOS4
    expected = np.floor(np.clip(cv2.resize(unit, size, interpolation=interpolation), 0, 1) * top + 0.5)
    assert out.dtype == dtype and out.shape == expected.shape
    assert np.abs(out.astype(np.int64) - expected.astype(np.int64)).max() <= 1


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("shape", [(13, 17), (13, 17, 4)])
@pytest.mark.parametrize("outscale", [4.5, 1.7])
def test_outscale_is_within_one_code_of_the_old_opencv_resize_of_the_integer_output(model, dtype, shape, outscale):
    """Before, OpenCV resized the packed uint8/uint16 network output (rounding twice, and in fixed point for
    uint8): the device resize of the float output differs from it by that rounding only (10-20 % of the
    values by one code on random images, measured)."""
    cv2 = pytest.importorskip("cv2")
    image = _random_image(shape, dtype, seed=8)
    out = srkit.Upscaler(model, device="cpu", tile=8, output_scale=outscale).upscale(image)
    network = srkit.Upscaler(model, device="cpu", tile=8).upscale(image)
    size = (round(shape[1] * outscale), round(shape[0] * outscale))
    interpolation = cv2.INTER_AREA if size[0] < network.shape[1] else cv2.INTER_LANCZOS4
    old = cv2.resize(network, size, interpolation=interpolation).reshape(out.shape)
    assert np.abs(out.astype(np.int64) - old.astype(np.int64)).max() <= 1


def test_bad_images_are_refused(model):
    up = srkit.Upscaler(model, device="cpu")
    with pytest.raises(TypeError, match="dtype"):
        up.upscale(np.zeros((4, 4, 3), np.float64))
    with pytest.raises(ValueError, match="shape"):
        up.upscale(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="tile"):
        srkit.Upscaler(model, device="cpu", tile=3)


def test_out_of_memory_shrinks_the_tile_once_and_remembers_it(model, monkeypatch):
    up = srkit.Upscaler(model, device="cpu", tile=128)
    run = up.runner.run

    def limited(batch, **kwargs):
        if max(batch.shape[-2:]) > 60:
            raise torch.OutOfMemoryError("simulated")
        return run(batch, **kwargs)

    monkeypatch.setattr(up.runner, "run", limited)
    image = _random_image((140, 130, 3), np.uint8, seed=5)  # cores 70x65, windows 88x83 -> quarters fit
    with pytest.warns(RuntimeWarning, match="tiles reduced to 35"):
        out = up.upscale(image)
    assert up.fitted_tile == 35 and up.request.tile == 128  # the request stays as asked
    expected = _module_codes(model, image.astype(np.float32) / 255, 255)
    assert np.abs(out.astype(np.int64) - expected).max() <= 1


def _batch_sizes(up, monkeypatch, fail_above: int | None = None) -> list[int]:
    """The batch sizes `up`'s model is run on from now on (a batch larger than `fail_above` runs out of memory)."""
    sizes, run = [], up.runner.run

    def counted(batch, *args, **kwargs):
        sizes.append(batch.shape[0])
        if fail_above is not None and batch.shape[0] > fail_above:
            raise torch.OutOfMemoryError("simulated")
        return run(batch, *args, **kwargs)

    monkeypatch.setattr(up.runner, "run", counted)
    return sizes


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("resized", [False, True], ids=["network", "output-resize"])
def test_frames_in_batches_equal_frames_one_by_one(model, monkeypatch, dtype, resized):
    """Frames that fit in a tile run `batch` at a time (also through a model's output resize: its bicubic runs on
    the batch), equal to the frames upscaled one by one."""
    if resized:
        module, info = small_model("compact-x4", seed=12)
        model = LoadedModel.of(module, info, "test-x4-to-x2", output_resize=0.5)
    frames = [_random_image((12, 16, 3), dtype, seed=s) for s in range(5)]
    up = srkit.Upscaler(model, device="cpu", batch=3, tile=64)
    sizes = _batch_sizes(up, monkeypatch)
    batched = up.upscale_frames(frames)
    assert sizes == [3, 2]  # two batches ran, and nothing else
    single = srkit.Upscaler(model, device="cpu", batch=1, tile=64)
    # fp32 sums in another blocking (batch 3 vs 1) may flip a 16-bit rounding.
    for got, frame in zip(batched, frames, strict=True):
        assert got.dtype == dtype and got.shape == (12 * model.out_scale, 16 * model.out_scale, 3)
        assert np.abs(got.astype(int) - single.upscale(frame).astype(int)).max() <= 1


def test_a_batch_out_of_memory_falls_back_to_frames_one_by_one(model, monkeypatch):
    up = srkit.Upscaler(model, device="cpu", batch=4, tile=64)
    sizes = _batch_sizes(up, monkeypatch, fail_above=1)
    frames = [_random_image((10, 10, 3), np.uint8, seed=s) for s in range(3)]
    got = up.upscale_frames(frames)
    assert sizes == [3, 1, 1, 1]  # the batch was tried, then each frame alone
    assert all(np.array_equal(a, up.upscale(f)) for a, f in zip(got, frames))


def test_an_output_resize_runs_per_tile_and_equals_the_whole_image_resize():
    """A network followed by a bicubic resize (animevideov3 x2/x3): resized window by window, it gives the
    whole image's resize within one code."""
    import torch.nn.functional as F

    module, info = small_model("compact-x4", seed=14)
    up = srkit.Upscaler(LoadedModel.of(module, info, "test-x4-to-x3", output_resize=0.75), device="cpu", tile=8)
    image = _random_image((21, 18, 3), np.uint8, seed=15)
    out = up.upscale(image)
    assert out.shape == (63, 54, 3)
    x = torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = F.interpolate(module(x).clamp(0, 1), size=(63, 54), mode="bicubic", align_corners=False).clamp(0, 1)
    expected = np.floor(y[0].permute(1, 2, 0).numpy() * 255 + 0.5)
    assert np.abs(out.astype(np.int64) - expected).max() <= 1


@pytest.mark.parametrize("name", ["compact-x3", "rrdb-x2", "rrdb-x1", "compact-gray-x2"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_an_image_in_one_window_is_packed_by_the_executor_as_the_tiler_packs(name, dtype, monkeypatch):
    """An integer image that fits in one window asks the executor for codes (no float output, nothing blended);
    oracle: the same image as unit floats, which the tiler runs as floats and packs, byte for byte. Odd sizes,
    which the unshuffling RRDBs pad to 2 and 4, and a gray 2-D image on a one-channel model."""
    monkeypatch.setenv("SRKIT_CPU_BACKEND", "torch")
    module, info = small_model(name, seed=5)
    up = srkit.Upscaler(LoadedModel.of(module, info, name), device="cpu", tile=64)  # one window, whatever is free
    asked = []
    run = up.runner.run

    def spy(x, clamp=None, out_dtype=None):
        asked.append(out_dtype)
        return run(x, clamp, out_dtype)

    monkeypatch.setattr(up.runner, "run", spy)
    shape = (37, 29, 3) if info.in_channels == 3 else (37, 29)
    image = _random_image(shape, dtype, seed=3)
    got = up.upscale(image)
    assert asked == [torch.uint8 if dtype == np.uint8 else torch.uint16]
    floats = up.upscale(image.astype(np.float32) / np.float32(np.iinfo(dtype).max), out_dtype=dtype)
    assert asked[1:] == [None]
    s = info.net_scale
    assert got.dtype == dtype and got.shape == (37 * s, 29 * s, *shape[2:])
    np.testing.assert_array_equal(got, floats)
