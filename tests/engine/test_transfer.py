"""Output transfer: bands staged on the windows' device and copied back late equal direct writes; on CUDA through
pinned host memory."""

from __future__ import annotations

import pytest
import torch

from srkit.engine import transfer
from srkit.engine.geometry import Geometry
from srkit.engine.resize import Resize
from srkit.engine.tiling import upscale_tiled
from srkit.models.size_rules import SizeRules

from ._models import nearest_x2


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


@pytest.mark.parametrize(
    "wrap,batch,size,multiple_of",
    [(False, 1, (23, 31), 1), (False, 3, (23, 31), 1), (True, 2, (24, 30), 2), (False, 2, (23, 31), 2)],
)
@pytest.mark.parametrize("resized", [False, True])
def test_bands_staged_like_device_output_equal_direct_writes(
    poison_allocations, wrap, batch, size, multiple_of, resized
):
    """The CUDA output path's logic on the CPU: output rows staged in bands, each copied out late (only when a
    buffer is reused or at the end), give exactly the directly written image; buffers stay few (one being
    written, two whose copies may run, one more in wrap mode for row 0's band)."""
    image = torch.rand(3, *size, generator=torch.Generator().manual_seed(14))
    resize = None
    shape = (size[0] * 2, size[1] * 2)
    if resized:
        shape = (round(size[0] * 1.5), round(size[1] * 1.5))
        resize = Resize((size[0] * 2, size[1] * 2), shape, periodic=wrap)
    results, deferred = [], DeferredTransfer()
    for copier in (None, deferred):
        out = torch.full((*shape, 3), 255, dtype=torch.uint8)
        geometry = Geometry(2, 6, 2, 0, wrap=wrap, rules=SizeRules(multiple_of=multiple_of))
        upscale_tiled(
            image, nearest_x2, geometry, batch=batch, out=out, clamp=(0.0, 1.0), resize=resize, transfer=copier
        )
        results.append(out)
    assert torch.equal(results[0], results[1])
    assert deferred.queue == [] and deferred.most_in_flight >= 2  # copies were still pending while tiles ran
    assert len(deferred.sources) <= 3 + wrap


@pytest.mark.gpu
@pytest.mark.parametrize("wrap,resized", [(False, False), (False, True), (True, True)])
@pytest.mark.parametrize("out_dtype", [torch.uint8, torch.uint16])
def test_cuda_results_come_back_through_pinned_bands_equal_to_the_cpu(monkeypatch, wrap, resized, out_dtype):
    """Windows computed on CUDA, bands copied on a side stream into a pinned host image: the CPU run's image,
    exactly (the 'network' is exact), for every pixel; the copies went through CudaTransfer."""
    copies = []
    original = transfer.CudaTransfer.copy
    monkeypatch.setattr(
        transfer.CudaTransfer, "copy", lambda self, dst, src: copies.append(1) or original(self, dst, src)
    )
    image = torch.rand(3, 60, 90, generator=torch.Generator().manual_seed(15))
    shape = (135, 203) if resized else (120, 180)
    resize = Resize((120, 180), shape, periodic=wrap) if resized else None
    results = []
    for device in ("cpu", "cuda"):
        out = transfer.host_output((*shape, 3), out_dtype, torch.device(device))
        assert out.is_pinned() == (device == "cuda")
        out.fill_(7)
        upscale_tiled(
            image,
            lambda batch, d=device: nearest_x2(batch.to(d)),
            Geometry(2, 16, 4, 0, wrap=wrap),
            batch=2,
            out=out,
            clamp=(0.0, 1.0),
            resize=resize,
        )
        results.append(out)
    assert copies and torch.equal(results[0], results[1])
