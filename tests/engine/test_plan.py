"""Inference plans equal their PyTorch modules, on the reference path and on Triton (interpreter)."""

from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F

from srkit.engine.plan import build_plan
from srkit.models.zoo import LoadedModel

from ..kernels._compare import assert_close
from ._models import SMALL, small_model


@pytest.mark.parametrize("backend", ["reference", "triton"])
@pytest.mark.parametrize("name", list(SMALL))
def test_plan_equals_module_fp32(use_backend, backend, name):
    use_backend(backend)
    module, info = small_model(name)
    x = torch.rand(2, info.in_channels, 10, 14, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = module(x)
    got = build_plan(LoadedModel.of(module, info), "cpu", torch.float32).run(x)
    assert got.shape == expected.shape
    assert_close(got, expected, atol=1e-4, rtol=1e-4, what=f"{name} on {backend}")


@pytest.mark.parametrize("backend", ["reference", "triton"])
@pytest.mark.parametrize("out_dtype,top", [(torch.uint8, 255), (torch.uint16, 65535)])
def test_epilogue_clamps_and_packs_hwc(use_backend, backend, out_dtype, top):
    use_backend(backend)
    module, info = small_model("compact-x3")
    x = torch.rand(1, 3, 7, 9, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = torch.floor(module(x).clamp(0, 1) * top + 0.5)[0].permute(1, 2, 0)
    got = build_plan(LoadedModel.of(module, info), "cpu", torch.float32).run(x, clamp=(0.0, 1.0), out_dtype=out_dtype)
    assert got.dtype == out_dtype and got.shape == (1, 21, 27, 3)
    # One code of slack: the plan and the module may round a value sitting on a .5 boundary differently.
    assert (got[0].to(torch.int64) - expected.to(torch.int64)).abs().max() <= 1


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_sizes_off_the_size_rules_are_clamped_and_packed_like_the_rest(use_backend, backend):
    """rrdb-x2 runs on even sizes: a 7x9 input is padded, run, cropped; the clamp holds without out_dtype too, and
    the packed result is the cropped, clamped output in codes."""
    use_backend(backend)
    module, info = small_model("rrdb-x2", seed=3)
    x = torch.rand(1, 3, 7, 9, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        full = module(F.pad(x, (0, 1, 0, 1), mode="reflect"))[:, :, :14, :18]
    plan = build_plan(LoadedModel.of(module, info), "cpu", torch.float32)
    assert full.min() < 0.3 and full.max() > 0.7, "the clamp below would not be tested"
    got = plan.run(x, clamp=(0.3, 0.7))
    assert_close(got, full.clamp(0.3, 0.7), atol=1e-4, rtol=1e-4, what=f"clamped on {backend}")
    packed = plan.run(x, clamp=(0.0, 1.0), out_dtype=torch.uint8)
    assert packed.shape == (1, 14, 18, 3)
    expected = torch.floor(full.clamp(0, 1) * 255 + 0.5)[0].permute(1, 2, 0).to(torch.int64)
    assert (packed[0].to(torch.int64) - expected).abs().max() <= 1


def test_plan_rejects_an_integer_dtype():
    module, info = small_model("compact-x3")
    with pytest.raises(ValueError, match="dtype"):
        build_plan(LoadedModel.of(module, info), "cpu", torch.int8)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", list(SMALL))
def test_half_precision_plan_on_cuda_is_within_50_db(name, dtype):
    module, info = small_model(name)
    x = torch.rand(1, info.in_channels, 48, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = module(x).clamp(0, 1)
    got = build_plan(LoadedModel.of(module, info), "cuda", dtype).run(x, clamp=(0.0, 1.0)).float().cpu()
    psnr = 10 * torch.log10(1.0 / (got - expected).pow(2).mean())
    assert psnr >= (50 if dtype == torch.float16 else 40), f"{name} {dtype}: {psnr:.1f} dB"


def test_plan_refuses_a_precision_the_model_does_not_support():
    """spandrel marks some architectures fp32-only: asking for fp16 is a one-line error, not garbage."""
    import dataclasses

    from srkit.errors import SrkitError

    module, info = small_model("compact-x3")
    fp32_only = dataclasses.replace(info, dtypes=("fp32",))
    with pytest.raises(SrkitError, match="fp16; use --dtype fp32"):
        build_plan(LoadedModel.of(module, fp32_only), "cpu", torch.float16)
    assert build_plan(LoadedModel.of(module, fp32_only), "cpu").dtype == torch.float32


# RRDB on Triton costs ~1.5 s a run in the interpreter; its bound plan is checked there by test_plan_equals_module_fp32.
BOUND_CASES = [
    (name, backend)
    for name in ("compact-x3", "rrdb-x2", "seednet-x2", "span-x4")
    for backend in ("reference", "triton")
    if (name, backend) != ("rrdb-x2", "triton")
]


@pytest.mark.parametrize("name,backend", BOUND_CASES)
def test_a_bound_plan_is_made_once_per_shape_and_equals_the_module(use_backend, backend, name):
    """Bound once per shape; runs equal the module, and exactly the per-call path (program.forward on fresh
    buffers) after another batch went through the same buffers, packed or float: nothing of one batch leaks."""
    use_backend(backend)
    module, info = small_model(name, seed=4)
    plan = build_plan(LoadedModel.of(module, info), "cpu", torch.float32)
    bound = plan.bind(2, 12, 10)
    assert plan.bind(2, 12, 10) is bound and plan.bind(1, 12, 10) is not bound
    x, y = (torch.rand(2, info.in_channels, 12, 10, generator=torch.Generator().manual_seed(s)) for s in (5, 6))
    with torch.no_grad():
        expected = module(x)
    got = bound.run(x)
    assert_close(got, expected, atol=1e-4, rtol=1e-4, what=f"bound {name}")
    with torch.inference_mode():
        packed = plan.program.forward(plan.prepare(y), (0.0, 1.0), torch.uint8)
    assert torch.equal(bound.run(y, (0.0, 1.0), torch.uint8), packed), f"{name}: bound != per call"
    assert torch.equal(plan.run(x), got), f"{name}: a second run of the bound plan differs from its first"
    assert plan._idle[(2, 12, 10)] == [bound], "Plan.run did not reuse the bound plan"
    with pytest.raises(ValueError, match="bound to inputs of shape"):
        bound.run(torch.rand(2, info.in_channels, 12, 11))


@pytest.mark.parametrize("name,u", [("rrdb-x2", 2), ("rrdb-x1", 4)])
def test_rrdb_input_copy_unshuffles(name, u):
    """x2/x1 RRDB: the bound input holds F.pixel_unshuffle of the batch after its one copy; odd sizes pad first."""
    module, info = small_model(name, seed=7)
    plan = build_plan(LoadedModel.of(module, info), "cpu", torch.float32)
    for h, w in ((12, 8), (13, 7)):
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h))
        with torch.no_grad():
            expected = module(x)
        assert_close(plan.run(x), expected, atol=1e-4, rtol=1e-4, what=f"{name} {h}x{w}")
        bound = plan.bind(1, h, w)
        padded = F.pad(x, (0, -w % u, 0, -h % u), mode="reflect")
        assert torch.equal(bound.input, F.pixel_unshuffle(padded, u))
        assert bound.input.is_contiguous(memory_format=torch.channels_last)


def test_threads_running_one_plan_never_share_a_bound_plan(use_backend):
    """Each concurrent run takes its own bound plan of the shape (their input buffers would race otherwise), on
    threads that come and go as VapourSynth's do. Reference kernels only: Triton's interpreter is not thread-safe
    (GPU launches are)."""
    backend = "reference"
    use_backend(backend)
    module, info = small_model("compact-x3", seed=9)
    plan = build_plan(LoadedModel.of(module, info), "cpu", torch.float32)
    inputs = [torch.rand(1, info.in_channels, 9, 11, generator=torch.Generator().manual_seed(s)) for s in range(6)]
    with torch.no_grad():
        expected = [module(x) for x in inputs]
    start = threading.Barrier(len(inputs))
    got: dict[int, torch.Tensor] = {}

    def one(i: int) -> None:
        start.wait()
        got[i] = plan.run(inputs[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, want in enumerate(expected):
        assert_close(got[i], want, atol=1e-4, rtol=1e-4, what=f"thread {i} on {backend}")
    assert 1 <= len(plan._idle[(1, 9, 11)]) <= len(inputs)


def test_a_bad_launch_is_refused_when_the_plan_is_bound():
    """Bound launches skip their checks: a step that cannot run fails at bind, naming the argument."""
    module, info = small_model("compact-x3", seed=2)
    plan = build_plan(LoadedModel.of(module, info), "cpu", torch.float32)
    plan.program.steps[1].bias = plan.program.steps[1].bias[:5]
    with pytest.raises(ValueError, match="bias must have 16 elements"):
        plan.bind(1, 9, 8)
