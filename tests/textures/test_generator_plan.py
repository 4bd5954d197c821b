"""The generator's fused plan (BatchNorm folded, wrap padding) equals the module, on both kernel backends."""

from __future__ import annotations

import itertools

import pytest
import torch

from srkit.engine.plan import build_plan
from srkit.engine.runner import model_geometry
from srkit.engine.tiling import upscale_tiled
from srkit.models import dcgan
from srkit.models.zoo import LoadedModel

from ..kernels._compare import assert_close
from ._generators import WAVES, small_generator

TOLERANCE = dict(atol=1e-5, rtol=1e-4)  # fp32 throughout; only the order of the sums differs


@pytest.mark.parametrize("backend", ["reference", "triton"])
@pytest.mark.parametrize("noise_size", [(1, 1), (3, 5)], ids=str)
def test_plan_equals_module_in_eval_mode(use_backend, poison_allocations, backend, noise_size):
    use_backend(backend)
    module, info = dcgan.ARCH.load(small_generator(seed=1, widths=(9, 6)).state_dict(), {})  # 2 stages: fast on
    # the interpreter
    noise = torch.randn(2, info.in_channels, *noise_size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = module(noise) * 0.5 + 0.5
    got = build_plan(LoadedModel.of(module, info), "cpu", torch.float32).run(noise)
    assert got.shape == expected.shape == (2, 3, noise_size[0] * 4, noise_size[1] * 4)
    assert_close(got, expected, **TOLERANCE, what=f"plan on {backend}")


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_plan_of_a_generator_with_waves_equals_the_module(use_backend, poison_allocations, backend):
    """The wave fields join the second-to-last stage's input in the plan as in the module (3 stages: stage 1)."""
    use_backend(backend)
    module, info = dcgan.ARCH.load(small_generator(seed=18, widths=(8, 7, 6), waves=WAVES).state_dict(), {})
    cells = dcgan.draw_cells(module, info.in_channels, 2, 3, torch.Generator().manual_seed(19))
    with torch.no_grad():
        expected = module(cells) * 0.5 + 0.5
        blind = module(torch.cat([cells[:, :-16], torch.zeros_like(cells[:, -16:])], 1)) * 0.5 + 0.5
    got = build_plan(LoadedModel.of(module, info), "cpu", torch.float32).run(cells)
    assert_close(got, expected, **TOLERANCE, what=f"plan with waves on {backend}")
    assert (blind - expected).abs().max() > 0.05, "the fields do not reach the image"


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_plan_of_a_generator_with_materials_equals_the_module_for_each_material(
    use_backend, poison_allocations, backend
):
    """The material code is part of the first stage's input, in the plan as in the module, one texture each."""
    use_backend(backend)
    module, info = dcgan.ARCH.load(small_generator(seed=20, widths=(8, 7, 6), materials=3).state_dict(), {})
    plan = build_plan(LoadedModel.of(module, info), "cpu", torch.float32)
    images = []
    for material in range(3):
        g = torch.Generator().manual_seed(21)
        cells = dcgan.draw_cells(module, info.in_channels, 1, 3, g, material=material)
        with torch.no_grad():
            expected = module(cells) * 0.5 + 0.5
        images.append(plan.run(cells))
        assert_close(images[-1], expected, **TOLERANCE, what=f"plan of material {material} on {backend}")
    assert min((a - b).abs().max() for a, b in itertools.combinations(images, 2)) > 0.05, "materials look the same"


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_plan_packs_uint8_and_stays_periodic(use_backend, backend):
    use_backend(backend)
    module, info = dcgan.ARCH.load(small_generator(seed=3, widths=(9, 6)).state_dict(), {})
    plan = build_plan(LoadedModel.of(module, info), "cpu", torch.float32)
    noise = torch.randn(1, info.in_channels, 2, 3, generator=torch.Generator().manual_seed(4))
    one = plan.run(noise, clamp=(0.0, 1.0), out_dtype=torch.uint8)
    tiled = plan.run(noise.repeat(1, 1, 2, 2), clamp=(0.0, 1.0), out_dtype=torch.uint8)
    assert one.dtype == torch.uint8 and one.shape == (1, 8, 12, 3)
    assert (tiled.int() - one.repeat(1, 2, 2, 1).int()).abs().max() <= 1  # one code: a .5 may round either way


def _bound(program, noise):
    """The program bound to noise's shape, with the input buffer that a run reads."""
    buffer, batch = program.input_buffer(tuple(noise.shape), noise.dtype, noise.device)
    batch.copy_(noise)
    return program.bind(buffer), buffer


@pytest.mark.parametrize("backend", ["reference", "triton"])
@pytest.mark.parametrize(
    "widths,cells,waves,materials",
    [
        ((9, 6), (3, 5), None, 0),
        ((8, 7, 6), (1, 3), None, 0),
        ((8, 7, 6), (2, 3), WAVES, 0),
        ((8, 7, 6), (2, 3), WAVES, 2),
    ],
    ids=str,
)
def test_bound_runs_equal_the_per_call_path_and_leak_nothing_between_batches(
    use_backend, poison_allocations, backend, widths, cells, waves, materials
):
    """A bound run gives the per-call path's pixels bit for bit, floats and codes; a run after another batch
    gives the first run's again (no buffer carries anything over); and the codes are the floats rounded."""
    use_backend(backend)
    generator = small_generator(seed=11, widths=widths, waves=waves, materials=materials)
    module, info = dcgan.ARCH.load(generator.state_dict(), {})
    program = dcgan.ARCH.lower(module, info, torch.device("cpu"))
    g = torch.Generator().manual_seed(12)
    first, other = (torch.randn(2, info.in_channels, *cells, generator=g) for _ in range(2))
    run, buffer = _bound(program, first)
    floats = run(buffer, (0.0, 1.0), None)
    codes = run(buffer, (0.0, 1.0), torch.uint8)
    assert torch.equal(floats, program.forward(first, (0.0, 1.0), None))
    assert torch.equal(codes, program.forward(first, (0.0, 1.0), torch.uint8))
    buffer.copy_(other)
    assert not torch.equal(run(buffer, (0.0, 1.0), torch.uint8), codes)
    buffer.copy_(first)
    assert torch.equal(run(buffer, (0.0, 1.0), None), floats)
    assert torch.equal(run(buffer, (0.0, 1.0), torch.uint8), codes)
    assert codes.shape == (2, cells[0] * info.net_scale, cells[1] * info.net_scale, 3)
    rounded = torch.floor(floats.permute(0, 2, 3, 1) * 255 + 0.5)
    assert (codes.int() - rounded.int()).abs().max() <= 1  # one code: fp32 tanh(x)/2 + p may round either way


@pytest.mark.parametrize("waves", [None, WAVES], ids=["noise", "waves"])
def test_activation_bytes_count_the_bound_buffers(use_backend, monkeypatch, waves):
    """On Triton every map of a bound run is a buffer made at bind: their bytes per noise cell, plus the phase
    pattern's (3 channels, counted per image: a batch of one's), are what the program declares for choosing tiles."""
    from srkit.models import lowering

    use_backend("triton")
    module, info = dcgan.ARCH.load(small_generator(seed=15, widths=(8, 7, 6), waves=waves).state_dict(), {})
    program = dcgan.ARCH.lower(module, info, torch.device("cpu"))
    made, original = [], lowering.empty

    def recording(like, channels, height, width):
        made.append(like.shape[0] * channels * height * width)
        return original(like, channels, height, width)

    monkeypatch.setattr(lowering, "empty", recording)  # `scratch` calls it
    monkeypatch.setattr(dcgan, "empty", recording)
    _bound(program, torch.randn(2, info.in_channels, 3, 5, generator=torch.Generator().manual_seed(16)))
    assert len(made) == 2 + 3 + 1  # the stage inputs after the first, the four-phase outputs, the last map
    per_cell = sum(made) / (2 * 3 * 5) + 3 * info.net_scale**2
    assert program.activation_bytes_per_pixel(torch.float32) == 4 * per_cell


def test_cells_of_another_generator_are_refused():
    module, info = dcgan.ARCH.load(small_generator(seed=17, widths=(9, 6)).state_dict(), {})
    program = dcgan.ARCH.lower(module, info, torch.device("cpu"))
    for channels in (info.in_channels - 1, info.in_channels + 4):
        with pytest.raises(ValueError, match=f"noise cells have {channels} channels, the generator takes"):
            program.forward(torch.zeros(1, channels, 2, 2), None, None)


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_uint16_codes_and_an_unclamped_float_output(use_backend, backend):
    use_backend(backend)
    module, info = dcgan.ARCH.load(small_generator(seed=13, widths=(9, 6)).state_dict(), {})
    plan = build_plan(LoadedModel.of(module, info), "cpu", torch.float32)
    noise = torch.randn(1, info.in_channels, 3, 1, generator=torch.Generator().manual_seed(14))
    with torch.no_grad():
        expected = module(noise) * 0.5 + 0.5
    codes = plan.run(noise, clamp=(0.0, 1.0), out_dtype=torch.uint16)
    rounded = torch.floor(expected.clamp(0, 1).permute(0, 2, 3, 1) * 65535 + 0.5)
    assert codes.dtype == torch.uint16 and (codes.int() - rounded.int()).abs().max() <= 2  # 1e-5 of 65535 codes
    assert_close(plan.run(noise), expected, **TOLERANCE, what=f"unclamped on {backend}")


@pytest.mark.parametrize("waves", [None, WAVES], ids=["noise", "waves"])
def test_tiled_generation_in_wrap_mode_equals_the_whole_image(waves):
    """Windows with the receptive radius of context give exactly the whole image (blending is then a no-op)."""
    module, info = dcgan.ARCH.load(small_generator(seed=5, waves=waves).state_dict(), {})
    model = LoadedModel.of(module, info)
    plan = build_plan(model, "cpu", torch.float32)
    noise = dcgan.draw_cells(module, info.in_channels, 1, 8, torch.Generator().manual_seed(6))[0, :, :7, :]
    whole = plan.run(noise[None])[0].permute(1, 2, 0)
    tiled = upscale_tiled(noise, plan.run, model_geometry(model, 3, wrap=True), out_channels=3)
    assert_close(tiled, whole, **TOLERANCE, what="tiled")


def test_receptive_radius_is_exact():
    """Changing noise beyond the radius leaves a cell's output unchanged; at the radius, it changes it."""
    module, info = dcgan.ARCH.load(small_generator(seed=7).state_dict(), {})
    noise = torch.randn(1, info.in_channels, 12, 12, generator=torch.Generator().manual_seed(8))
    beyond, at = noise.clone(), noise.clone()
    beyond[:, :, :, 6 + info.receptive_radius + 1 :] += 5.0  # columns more than the radius right of cell 6
    at[:, : info.in_channels - 64, :, 6 + info.receptive_radius] += 5.0  # the column at the radius (not the last
    # stage's per-pixel noise, which reaches only its own cell and the next)
    with torch.no_grad():
        a, b, c = module(noise), module(beyond), module(at)
    s = info.net_scale
    assert torch.equal(a[:, :, 2 * s : 10 * s, 6 * s : 7 * s], b[:, :, 2 * s : 10 * s, 6 * s : 7 * s])
    assert not torch.equal(a[:, :, 2 * s : 10 * s, 6 * s : 7 * s], c[:, :, 2 * s : 10 * s, 6 * s : 7 * s])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_plan_on_cuda_is_close_to_the_module(dtype):
    generator = small_generator(noise_channels=16, widths=(64, 32, 32, 16), seed=9)
    module, info = dcgan.ARCH.load(generator.state_dict(), {})
    noise = torch.randn(1, info.in_channels, 9, 7, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        expected = module(noise) * 0.5 + 0.5
    got = build_plan(LoadedModel.of(module, info), "cuda", dtype).run(noise).float().cpu()
    psnr = 10 * torch.log10(1.0 / (got - expected).pow(2).mean())
    assert psnr >= (45 if dtype == torch.float16 else 35), f"{dtype}: {psnr:.1f} dB"
