"""Tiling: tiled equals whole when the overlap covers the receptive field; wrap mode; batching; OOM back-off."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srkit.defaults import MIN_TILE
from srkit.engine.geometry import Geometry, split
from srkit.engine.plan import build_plan
from srkit.engine.tiling import OutOfMemory, upscale_tiled
from srkit.models.zoo import LoadedModel
from srkit.upscaler import Upscaler

from ._models import small_model

TOLERANCE = 1 / 255


@pytest.fixture(scope="module")
def compact_plan():
    module, info = small_model("compact-x3", seed=4)
    return build_plan(LoadedModel.of(module, info), "cpu", torch.float32), info


def _whole(plan, image):
    return plan.run(image[None])[0].permute(1, 2, 0)


def _counting(run):
    """`run`, and the list of window batch shapes it was given."""
    shapes = []

    def counted(batch):
        shapes.append(tuple(batch.shape))
        return run(batch)

    return counted, shapes


# (30, 1): the 29 rows fit in one tile, the 37 columns do not (a one-axis grid); every case cuts the image.
@pytest.mark.parametrize("tile,batch", [(8, 1), (13, 3), (20, 2), (30, 1)])
def test_tiled_equals_whole_when_overlap_covers_receptive_field(compact_plan, tile, batch):
    plan, info = compact_plan
    image = torch.rand(3, 29, 37, generator=torch.Generator().manual_seed(5))
    run, shapes = _counting(plan.run)
    geometry = Geometry(info.net_scale, tile, info.receptive_radius + 2, info.receptive_radius)
    tiled = upscale_tiled(image, run, geometry, batch=batch)
    windows = len(split(29, tile)) * len(split(37, tile))
    assert windows > 1 and sum(shape[0] for shape in shapes) == windows  # the image was cut, every core ran
    assert max(shape[0] for shape in shapes) == min(batch, windows)  # and batched as asked
    assert tiled.shape == (87, 111, 3)
    assert (tiled - _whole(plan, image)).abs().max() <= TOLERANCE


def test_an_image_within_one_tile_runs_as_one_window(compact_plan):
    plan, info = compact_plan
    image = torch.rand(3, 29, 37, generator=torch.Generator().manual_seed(5))
    run, shapes = _counting(plan.run)
    tiled = upscale_tiled(image, run, Geometry(info.net_scale, 200, 4, info.receptive_radius), batch=4)
    assert shapes == [(1, 3, 29, 37)]
    assert torch.equal(tiled, _whole(plan, image))


def test_too_little_overlap_does_differ(compact_plan):
    """The equality above is not vacuous: without enough context, tile borders are visibly wrong."""
    plan, info = compact_plan
    image = torch.rand(3, 29, 37, generator=torch.Generator().manual_seed(5))
    tiled = upscale_tiled(image, plan.run, Geometry(info.net_scale, 8, 0, info.receptive_radius))
    assert (tiled - _whole(plan, image)).abs().max() > 10 * TOLERANCE


@pytest.mark.parametrize("tile", [9, 16, 100])
def test_wrap_mode_treats_the_image_as_periodic(compact_plan, tile):
    plan, info = compact_plan
    image = torch.rand(3, 15, 21, generator=torch.Generator().manual_seed(6))
    s, r = info.net_scale, info.receptive_radius
    centre = _whole(plan, image.repeat(1, 3, 3))[15 * s : 30 * s, 21 * s : 42 * s]
    tiled = upscale_tiled(image, plan.run, Geometry(s, tile, r + 1, r, wrap=True))
    assert (tiled - centre).abs().max() <= TOLERANCE
    # so the result tiles seamlessly: its wrap-around neighbours match the periodic upscale
    assert (tiled.repeat(2, 2, 1) - _whole(plan, image.repeat(1, 3, 3))[: 30 * s, : 42 * s]).abs()[
        s * r : -s * r, s * r : -s * r
    ].max() <= TOLERANCE


def test_progress_counts_every_tile(compact_plan):
    plan, info = compact_plan
    seen = []
    upscale_tiled(
        torch.rand(3, 20, 30),
        plan.run,
        Geometry(info.net_scale, 10, 4, info.receptive_radius),
        batch=4,
        on_progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[-1] == (6, 6) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_out_of_memory_halves_the_tile_and_retries(compact_plan):
    plan, info = compact_plan
    image = torch.rand(3, 70, 75, generator=torch.Generator().manual_seed(7))
    calls = []

    def run_small_only(batch):
        calls.append(batch.shape[-2:])
        if max(batch.shape[-2:]) > 60:
            raise torch.OutOfMemoryError("simulated")
        return plan.run(batch)

    told = []
    geometry = Geometry(info.net_scale, 128, info.receptive_radius, info.receptive_radius)
    tiled = upscale_tiled(image, run_small_only, geometry, on_smaller_tile=told.append)
    assert len(told) == 1 and told[0] < 70
    assert (tiled - _whole(plan, image)).abs().max() <= TOLERANCE


def test_out_of_memory_below_the_minimum_tile_is_a_clear_error(compact_plan):
    plan, info = compact_plan

    def always_oom(batch):
        raise torch.OutOfMemoryError("simulated")

    with pytest.raises(OutOfMemory, match=f"{MIN_TILE}-pixel tiles"):
        upscale_tiled(torch.rand(3, 40, 40), always_oom, Geometry(info.net_scale, 64, 4, info.receptive_radius))


@pytest.mark.parametrize("size,tile", [((102, 102), 64), ((37, 23), 200), ((5, 3), 32)])
def test_unshuffling_rrdb_takes_odd_sizes_and_tiles(size, tile):
    """RRDB x2 folds 2x2 pixels into channels: odd sides are reflected up and cropped again (as spandrel does),
    and tiles stay on the 2-pixel grid, so tiled equals whole when the overlap covers the receptive field.
    (This crashed inside F.pixel_unshuffle with a raw RuntimeError: 102 px with --tile 64 gave 67 px tiles.)"""
    module, info = small_model("rrdb-x2", seed=8)
    assert info.size_rules.multiple_of == 2
    plan = build_plan(LoadedModel.of(module, info), "cpu", torch.float32)
    image = torch.rand(3, *size, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        expected = module(image[None])[0].permute(1, 2, 0)
    r = info.receptive_radius
    tiled = upscale_tiled(image, plan.run, Geometry(info.net_scale, tile, r, r, rules=info.size_rules))
    assert tiled.shape == (size[0] * 2, size[1] * 2, 3)
    assert (tiled - expected).abs().max() <= 1e-4


def test_upscaler_runs_rrdb_x2_on_an_odd_photo_with_small_tiles():
    module, info = small_model("rrdb-x2", seed=10)
    photo = np.random.default_rng(11).integers(0, 256, (102, 101, 3), dtype=np.uint8)
    out = Upscaler(LoadedModel.of(module, info, "rrdb-x2"), device="cpu", tile=64).upscale(photo)
    assert out.shape == (204, 202, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("out_dtype,top", [(torch.uint8, 255), (torch.uint16, 65535)])
def test_tiles_are_packed_into_an_integer_output_equal_to_the_whole_image(compact_plan, out_dtype, top):
    """The blended pixels go straight into a uint8/uint16 HWC image: the whole-image codes within one code."""
    plan, info = compact_plan
    image = torch.rand(3, 31, 26, generator=torch.Generator().manual_seed(12))
    out = torch.zeros(31 * info.net_scale, 26 * info.net_scale, 3, dtype=out_dtype)
    run, shapes = _counting(lambda batch: plan.run(batch, clamp=(0.0, 1.0)))
    geometry = Geometry(info.net_scale, 9, info.receptive_radius + 2, info.receptive_radius)
    got = upscale_tiled(image, run, geometry, out=out, clamp=(0.0, 1.0))
    assert got is out
    expected = torch.floor(_whole(plan, image).clamp(0, 1) * top + 0.5)
    assert (out.to(torch.int64) - expected.to(torch.int64)).abs().max() <= 1
    assert len(shapes) > 1 and len(set(shapes)) == 1  # edge windows are moved inwards: one input shape per image


@pytest.mark.gpu
def test_upscaler_on_cuda_returns_a_pinned_image_close_to_the_cpus():
    module, info = small_model("compact-x3", seed=16)
    model = LoadedModel.of(module, info, "test-compact")
    photo = np.random.default_rng(17).integers(0, 256, (70, 53, 3), dtype=np.uint8)
    for outscale in (None, 4.5):
        cpu = Upscaler(model, device="cpu", tile=16, output_scale=outscale).upscale(photo)
        cuda = Upscaler(model, device="cuda", dtype="fp32", tile=16, output_scale=outscale).upscale(photo)
        assert torch.from_numpy(cuda).is_pinned() and cuda.shape == cpu.shape
        difference = np.abs(cuda.astype(np.int64) - cpu.astype(np.int64))
        assert difference.max() <= 2 and difference.mean() < 0.05  # fp32 kernels with other sums (TF32 dots)
