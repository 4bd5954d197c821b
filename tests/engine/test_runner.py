"""The model runner: the output resize after any executor, the default tile context per architecture, the
geometry the tiler gets (the model's output scale)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from srkit.engine.executor import Executor
from srkit.engine.plan import build_plan
from srkit.engine.runner import BLEND_PIXELS, ModelRunner, model_geometry, tile_overlap
from srkit.models.size_rules import SizeRules
from srkit.models.zoo import LoadedModel

from ._models import small_model


class ModuleExecutor:
    """An executor that is not srkit's plan (as the CPU runtimes are): the module run as it is."""

    def __init__(self, model: LoadedModel) -> None:
        self.module, self.info = model.module, model.info
        self.device, self.dtype, self.name = torch.device("cpu"), torch.float32, "module"

    def run(self, x, clamp=None, out_dtype=None):
        assert out_dtype is None, "the runner packs after its resize"
        with torch.no_grad():
            y = self.module(x)
        return y if clamp is None else y.clamp(*clamp)

    def activation_bytes_per_pixel(self) -> float:
        return 1.0


@pytest.mark.parametrize("executor", ["plan", "module"])
def test_the_output_resize_follows_any_executor_and_packs_after_it(executor):
    module, info = small_model("compact-x4", seed=21)
    model = LoadedModel.of(module, info, "x4-then-x3", output_resize=0.75)
    runner = ModelRunner(model, build_plan(model) if executor == "plan" else ModuleExecutor(model))
    assert isinstance(runner, Executor) and (runner.net_scale, runner.out_scale) == (4, 3)
    x = torch.rand(2, 3, 8, 12, generator=torch.Generator().manual_seed(22))
    with torch.no_grad():  # oracle: torch's bicubic on the module's clamped output
        expected = F.interpolate(module(x).clamp(0, 1), size=(24, 36), mode="bicubic", align_corners=False).clamp(0, 1)
    got = runner.run(x, clamp=(0.0, 1.0))
    assert got.shape == (2, 3, 24, 36) and (got - expected).abs().max() <= 1e-5
    codes = runner.run(x, clamp=(0.0, 1.0), out_dtype=torch.uint8)
    assert codes.shape == (2, 24, 36, 3)
    assert (codes.int() - torch.floor(expected.permute(0, 2, 3, 1) * 255 + 0.5).int()).abs().max() <= 1


def test_without_an_output_resize_the_executor_output_is_returned_as_it_is():
    module, info = small_model("compact-x3", seed=23)
    model = LoadedModel.of(module, info)
    runner = ModelRunner(model, build_plan(model))
    x = torch.rand(1, 3, 5, 7, generator=torch.Generator().manual_seed(24))
    assert torch.equal(runner.run(x, clamp=(0.0, 1.0)), runner.executor.run(x, clamp=(0.0, 1.0)))


def test_tile_context_is_the_radius_plus_the_blend_where_the_arch_declares_no_other():
    compact_module, compact_info = small_model("compact-x3", seed=1)
    rrdb_module, rrdb_info = small_model("rrdb-x2", seed=1)
    compact = LoadedModel.of(compact_module, compact_info)
    rrdb = LoadedModel.of(rrdb_module, rrdb_info)
    assert tile_overlap(compact) == compact_info.receptive_radius + BLEND_PIXELS
    assert rrdb_info.receptive_radius > 16 and tile_overlap(rrdb) == 16  # RRDB's reach is capped, blend included


def test_the_geometry_has_the_models_output_scale_and_the_resizes_reach():
    module, info = small_model("rrdb-x2", seed=2)
    plain = model_geometry(LoadedModel.of(module, info), 64)
    assert (plain.scale, plain.overlap, plain.receptive_radius) == (2, 16, info.receptive_radius)
    assert plain.rules == SizeRules(2, 2) and not plain.wrap
    module, info = small_model("compact-x4", seed=3)
    resized = model_geometry(LoadedModel.of(module, info, output_resize=0.5), 32, overlap=5, wrap=True)
    assert (resized.scale, resized.overlap, resized.receptive_radius, resized.wrap) == (
        2,
        5,
        info.receptive_radius + 1,
        True,
    )
