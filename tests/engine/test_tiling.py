"""Tiling: tiled equals whole when the overlap covers the receptive field; wrap mode; batching; OOM back-off."""

from __future__ import annotations

import pytest
import torch

from srkit.defaults import MIN_TILE
from srkit.engine import memory
from srkit.engine.plan import build_plan
from srkit.engine.resize import Resize
from srkit.engine.tiling import OutOfMemory, split, upscale_tiled

from ._models import small_model

TOLERANCE = 1 / 255


@pytest.fixture(scope="module")
def compact_plan():
    module, info = small_model("compact-x3", seed=4)
    return build_plan(module, info, "cpu", torch.float32), info


def _whole(plan, image):
    return plan.run(image[None])[0].permute(1, 2, 0)


@pytest.mark.parametrize("tile,batch", [(8, 1), (13, 3), (20, 2), (200, 1)])
def test_tiled_equals_whole_when_overlap_covers_receptive_field(compact_plan, tile, batch):
    plan, info = compact_plan
    image = torch.rand(3, 29, 37, generator=torch.Generator().manual_seed(5))
    tiled = upscale_tiled(image, plan.run, info.scale, tile, info.receptive_radius + 2, info.receptive_radius,
                          batch=batch)
    assert tiled.shape == (87, 111, 3)
    assert (tiled - _whole(plan, image)).abs().max() <= TOLERANCE


def test_too_little_overlap_does_differ(compact_plan):
    """The equality above is not vacuous: without enough context, tile borders are visibly wrong."""
    plan, info = compact_plan
    image = torch.rand(3, 29, 37, generator=torch.Generator().manual_seed(5))
    tiled = upscale_tiled(image, plan.run, info.scale, 8, 0, info.receptive_radius)
    assert (tiled - _whole(plan, image)).abs().max() > 10 * TOLERANCE


@pytest.mark.parametrize("tile", [9, 16, 100])
def test_wrap_mode_treats_the_image_as_periodic(compact_plan, tile):
    plan, info = compact_plan
    image = torch.rand(3, 15, 21, generator=torch.Generator().manual_seed(6))
    s = info.scale
    centre = _whole(plan, image.repeat(1, 3, 3))[15 * s:30 * s, 21 * s:42 * s]
    tiled = upscale_tiled(image, plan.run, s, tile, info.receptive_radius + 1, info.receptive_radius, wrap=True)
    assert (tiled - centre).abs().max() <= TOLERANCE
    # so the result tiles seamlessly: its wrap-around neighbours match the periodic upscale
    assert (tiled.repeat(2, 2, 1) - _whole(plan, image.repeat(1, 3, 3))[:30 * s, :42 * s]).abs()[
        s * info.receptive_radius:-s * info.receptive_radius, s * info.receptive_radius:-s * info.receptive_radius
    ].max() <= TOLERANCE


def test_progress_counts_every_tile(compact_plan):
    plan, info = compact_plan
    seen = []
    upscale_tiled(torch.rand(3, 20, 30), plan.run, info.scale, 10, 4, info.receptive_radius, batch=4,
                  on_progress=lambda done, total: seen.append((done, total)))
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
    tiled = upscale_tiled(image, run_small_only, info.scale, 128, info.receptive_radius, info.receptive_radius,
                          on_smaller_tile=told.append)
    assert len(told) == 1 and told[0] < 70
    assert (tiled - _whole(plan, image)).abs().max() <= TOLERANCE


def test_out_of_memory_below_the_minimum_tile_is_a_clear_error(compact_plan):
    plan, info = compact_plan

    def always_oom(batch):
        raise torch.OutOfMemoryError("simulated")

    with pytest.raises(OutOfMemory, match=f"{MIN_TILE}-pixel tiles"):
        upscale_tiled(torch.rand(3, 40, 40), always_oom, info.scale, 64, 4, info.receptive_radius)


def test_split_covers_the_range_in_near_equal_pieces():
    for size in (1, 7, 64, 65, 1000):
        for tile in (1, 8, 64, 333):
            pieces = split(size, tile)
            assert pieces[0][0] == 0 and sum(n for _, n in pieces) == size
            assert all(a + n == b for (a, n), (b, _) in zip(pieces, pieces[1:]))
            assert max(n for _, n in pieces) <= tile and max(n for _, n in pieces) - min(n for _, n in pieces) <= 1


def test_auto_tile_grows_with_memory_and_stays_in_bounds():
    cpu = torch.device("cpu")
    small = memory.auto_tile(1000.0, 10, 1, cpu, available=64 << 20)
    large = memory.auto_tile(1000.0, 10, 1, cpu, available=4 << 30)
    assert MIN_TILE <= small < large <= memory.MAX_TILE
    assert small % 8 == 0
    # the chosen windows fit in the budget
    assert (small + 20) ** 2 * 1000.0 <= memory.SAFETY * (64 << 20)
    assert memory.auto_tile(1e9, 10, 1, cpu, available=1 << 20) == MIN_TILE


@pytest.mark.parametrize("size,tile", [((102, 102), 64), ((37, 23), 200), ((5, 3), 32)])
def test_unshuffling_rrdb_takes_odd_sizes_and_tiles(size, tile):
    """RRDB x2 folds 2x2 pixels into channels: odd sides are reflected up and cropped again (as spandrel does),
    and tiles stay on the 2-pixel grid, so tiled equals whole when the overlap covers the receptive field.
    (This crashed inside F.pixel_unshuffle with a raw RuntimeError: 102 px with --tile 64 gave 67 px tiles.)"""
    module, info = small_model("rrdb-x2", seed=8)
    assert info.multiple_of == 2
    plan = build_plan(module, info, "cpu", torch.float32)
    image = torch.rand(3, *size, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        expected = module(image[None])[0].permute(1, 2, 0)
    tiled = upscale_tiled(image, plan.run, info.scale, tile, info.receptive_radius, info.receptive_radius,
                          multiple_of=info.multiple_of)
    assert tiled.shape == (size[0] * 2, size[1] * 2, 3)
    assert (tiled - expected).abs().max() <= 1e-4


def test_upscaler_runs_rrdb_x2_on_an_odd_photo_with_small_tiles():
    import numpy as np

    import srkit
    from srkit.models.zoo import LoadedModel

    module, info = small_model("rrdb-x2", seed=10)
    photo = np.random.default_rng(11).integers(0, 256, (102, 101, 3), dtype=np.uint8)
    out = srkit.Upscaler(LoadedModel("rrdb-x2", module, info, "test"), device="cpu", tile=64).upscale(photo)
    assert out.shape == (204, 202, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("out_dtype,top", [(torch.uint8, 255), (torch.uint16, 65535)])
def test_tiles_are_packed_into_an_integer_output_equal_to_the_whole_image(compact_plan, out_dtype, top):
    """The blended pixels go straight into a uint8/uint16 HWC image: the whole-image codes within one code."""
    plan, info = compact_plan
    image = torch.rand(3, 31, 26, generator=torch.Generator().manual_seed(12))
    out = torch.zeros(31 * info.scale, 26 * info.scale, 3, dtype=out_dtype)
    shapes = []

    def run(batch):
        shapes.append(tuple(batch.shape[-2:]))
        return plan.run(batch, clamp=(0.0, 1.0))

    got = upscale_tiled(image, run, info.scale, 9, info.receptive_radius + 2, info.receptive_radius, out=out,
                        clamp=(0.0, 1.0))
    assert got is out
    expected = torch.floor(_whole(plan, image).clamp(0, 1) * top + 0.5)
    assert (out.to(torch.int64) - expected.to(torch.int64)).abs().max() <= 1
    assert len(set(shapes)) == 1  # edge windows are moved inwards: one input shape per image


def test_seams_blend_with_weights_that_sum_to_one():
    """A run that returns a constant gives that constant everywhere, seams and wrap-around included: the
    crossfade weights are a partition of unity (nothing is divided by a weight sum); fp32 rounding only."""
    image = torch.rand(3, 23, 41, generator=torch.Generator().manual_seed(13))
    for wrap in (False, True):
        out = upscale_tiled(image, lambda batch: torch.full((batch.shape[0], 3, *(2 * n for n in batch.shape[2:])),
                                                            0.625), 2, 7, 4, 1, wrap=wrap)
        assert (out - 0.625).abs().max() <= 1e-6


class DeferredTransfer:
    """A transfer whose copies run only when something waits for them (as a side stream may run them late): a band
    buffer written again before its copy was waited for would put the new rows into the old band's place."""

    def __init__(self) -> None:
        self.queue: list[tuple[int, torch.Tensor, torch.Tensor]] = []  # (token, dst, src), oldest first
        self.tokens = 0
        self.most_in_flight = 0
        self.sources: set[int] = set()

    def copy(self, dst, src):
        self.tokens += 1
        self.queue.append((self.tokens, dst, src))
        self.most_in_flight = max(self.most_in_flight, len(self.queue))
        self.sources.add(src.untyped_storage().data_ptr())
        return self.tokens

    def done(self, token):
        return all(queued != token for queued, _, _ in self.queue)

    def reuse(self, token):  # the side stream runs its copies in order: this one and all before it
        while self.queue and self.queue[0][0] <= token:
            _, dst, src = self.queue.pop(0)
            dst.copy_(src)

    def finish(self):
        self.reuse(self.tokens)


def _nearest_x2(batch):
    return batch.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


@pytest.mark.parametrize("wrap,batch,size,multiple_of", [(False, 1, (23, 31), 1), (False, 3, (23, 31), 1),
                                                         (True, 2, (24, 30), 2), (False, 2, (23, 31), 2)])
@pytest.mark.parametrize("resized", [False, True])
def test_bands_staged_like_device_output_equal_direct_writes(poison_allocations, wrap, batch, size, multiple_of,
                                                              resized):
    """The CUDA output path's logic on the CPU: output rows staged in bands, each copied out late (only when a
    buffer is reused or at the end), give exactly the directly written image; buffers stay few (one being
    written, two whose copies may run, one more in wrap mode for row 0's band)."""
    image = torch.rand(3, *size, generator=torch.Generator().manual_seed(14))
    resize = None
    shape = (size[0] * 2, size[1] * 2)
    if resized:
        shape = (round(size[0] * 1.5), round(size[1] * 1.5))
        resize = Resize((size[0] * 2, size[1] * 2), shape, periodic=wrap)
    results = []
    for transfer in (None, DeferredTransfer()):
        out = torch.full((*shape, 3), 255, dtype=torch.uint8)
        upscale_tiled(image, _nearest_x2, 2, 6, 2, 0, wrap=wrap, batch=batch, out=out, clamp=(0.0, 1.0),
                      multiple_of=multiple_of, resize=resize, transfer=transfer)
        results.append(out)
    assert torch.equal(results[0], results[1])
    assert transfer.queue == [] and transfer.most_in_flight >= 2  # copies were still pending while tiles ran
    assert len(transfer.sources) <= 3 + wrap


@pytest.mark.gpu
@pytest.mark.parametrize("wrap,resized", [(False, False), (False, True), (True, True)])
@pytest.mark.parametrize("out_dtype", [torch.uint8, torch.uint16])
def test_cuda_results_come_back_through_pinned_bands_equal_to_the_cpu(monkeypatch, wrap, resized, out_dtype):
    """Windows computed on CUDA, bands copied on a side stream into a pinned host image: the CPU run's image,
    exactly (the 'network' is exact), for every pixel; the copies went through CudaTransfer."""
    from srkit.engine import tiling

    copies = []
    original = tiling.CudaTransfer.copy
    monkeypatch.setattr(tiling.CudaTransfer, "copy",
                        lambda self, dst, src: copies.append(1) or original(self, dst, src))
    image = torch.rand(3, 60, 90, generator=torch.Generator().manual_seed(15))
    shape = (135, 203) if resized else (120, 180)
    resize = Resize((120, 180), shape, periodic=wrap) if resized else None
    results = []
    for device in ("cpu", "cuda"):
        out = tiling.host_output((*shape, 3), out_dtype, torch.device(device))
        assert out.is_pinned() == (device == "cuda")
        out.fill_(7)
        upscale_tiled(image, lambda batch, d=device: _nearest_x2(batch.to(d)), 2, 16, 4, 0, wrap=wrap, batch=2,
                      out=out, clamp=(0.0, 1.0), resize=resize)
        results.append(out)
    assert copies and torch.equal(results[0], results[1])


@pytest.mark.gpu
def test_upscaler_on_cuda_returns_a_pinned_image_close_to_the_cpus():
    import numpy as np

    import srkit
    from srkit.models.zoo import LoadedModel

    module, info = small_model("compact-x3", seed=16)
    model = LoadedModel("test-compact", module, info, "test")
    photo = np.random.default_rng(17).integers(0, 256, (70, 53, 3), dtype=np.uint8)
    for outscale in (None, 4.5):
        cpu = srkit.Upscaler(model, device="cpu", tile=16, output_scale=outscale).upscale(photo)
        cuda = srkit.Upscaler(model, device="cuda", dtype="fp32", tile=16, output_scale=outscale).upscale(photo)
        assert torch.from_numpy(cuda).is_pinned() and cuda.shape == cpu.shape
        difference = np.abs(cuda.astype(np.int64) - cpu.astype(np.int64))
        assert difference.max() <= 2 and difference.mean() < 0.05  # fp32 kernels with other sums (TF32 dots)
