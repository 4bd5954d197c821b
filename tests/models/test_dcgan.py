"""The DCGAN texture networks: output sizes, seamless wrap, the sub-pixel lowering, BatchNorm folding, per-pixel
noise, save -> detect -> load."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from srkit.models import dcgan, detect_arch
from srkit.models.weights import read_weights, write_safetensors

from ..kernels._compare import assert_close
from ..textures._generators import WAVES, small_generator


@pytest.mark.parametrize("widths", [(6,), (9, 5), (12, 7, 6), (16, 8, 8, 4)], ids=str)
@pytest.mark.parametrize("noise_size", [(1, 1), (2, 3), (5, 4)], ids=str)
def test_generator_output_is_noise_size_times_two_to_the_stages(widths, noise_size):
    module = small_generator(noise_channels=3, widths=widths)
    assert module.input_channels == 3 + sum(4 ** (i + 1) for i in range(len(widths)))
    noise = torch.randn(2, module.input_channels, *noise_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        image = module(noise)
    scale = 2 ** len(widths)
    assert module.scale == scale and image.shape == (2, 3, noise_size[0] * scale, noise_size[1] * scale)
    assert image.abs().max() <= 1.0 and image.std() > 0.05  # tanh output, and not a constant


def test_generator_is_periodic_with_its_noise():
    """Noise tiled 2x2 gives the image tiled 2x2: the image wraps left-right and top-bottom without a seam."""
    module = small_generator()
    noise = torch.randn(1, module.input_channels, 3, 2, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        one, tiled = module(noise), module(noise.repeat(1, 1, 2, 2))
    assert_close(tiled, one.repeat(1, 1, 2, 2), atol=1e-5, rtol=1e-5, what="tiled noise")


def test_wrap_upsample_equals_the_centre_of_a_tiled_bilinear_one():
    x = torch.randn(1, 4, 3, 5, generator=torch.Generator().manual_seed(3))
    tiled = torch.nn.functional.interpolate(x.repeat(1, 1, 3, 3), scale_factor=2, mode="bilinear", align_corners=False)
    expected = tiled[:, :, 6:12, 10:20]  # the centre copy of x: rows 3..5 -> 6..11, columns 5..9 -> 10..19
    assert_close(dcgan.wrap_upsample(x), expected, atol=1e-6, rtol=1e-6, what="wrap")


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (5, 4)], ids=str)
def test_subpixel_conv_then_shuffle_equals_upsample_then_conv(size):
    """The lowering's identity: pixel_shuffle(conv(x, subpixel_weight(w)), 2) == conv(wrap_upsample(x), w)."""
    g = torch.Generator().manual_seed(4)
    x, weight = torch.randn(2, 5, *size, generator=g, dtype=torch.float64), torch.randn(3, 5, 3, 3, generator=g)
    circular = dict(mode="circular", pad=(1, 1, 1, 1))
    expected = torch.nn.functional.conv2d(torch.nn.functional.pad(dcgan.wrap_upsample(x), **circular), weight.double())
    phases = torch.nn.functional.conv2d(torch.nn.functional.pad(x, **circular), dcgan.subpixel_weight(weight))
    assert_close(torch.nn.functional.pixel_shuffle(phases, 2), expected, atol=1e-10, rtol=1e-10, what="sub-pixel")


def test_folded_batchnorm_equals_conv_then_batchnorm_in_eval_mode():
    module = small_generator(seed=4)
    stage = module.stages[1]
    x = torch.randn(2, 12, 6, 8, generator=torch.Generator().manual_seed(5))
    weight, bias = dcgan.fold_batchnorm(stage.conv, stage.norm)
    with torch.no_grad():
        expected = stage.norm(stage.conv(x))
        folded = torch.nn.functional.conv2d(
            torch.nn.functional.pad(x.double(), (1, 1, 1, 1), mode="circular"), weight, bias
        )
    assert_close(folded.float(), expected, atol=1e-5, rtol=1e-5, what="folded")


def test_stage_noise_is_each_stage_s_pixels_in_its_own_channels():
    """Each stage's per-pixel noise comes from its own channels of the cells, one value per output pixel."""
    module = small_generator(noise_channels=2, widths=(4, 3))
    cells = torch.arange(module.input_channels * 6, dtype=torch.float32).reshape(1, -1, 2, 3)
    base, phases, fields = dcgan.stage_noise(cells, 2, 2)
    assert torch.equal(base, cells[:, :2]) and [p.shape for p in phases] == [(1, 4, 2, 3), (1, 4, 4, 6)]
    assert fields.shape == (1, 0, 2, 3)
    values = [torch.nn.functional.pixel_shuffle(p, 2).flatten().sort().values for p in phases]
    assert torch.equal(values[0], cells[:, 2:6].flatten().sort().values)
    assert torch.equal(values[1], cells[:, 6:22].flatten().sort().values)
    with pytest.raises(ValueError, match="takes 22"):
        dcgan.stage_noise(cells[:, :21], 2, 2)


def test_wave_fields_follow_from_their_formula_sample_by_sample():
    """Field j of a texture of S pixels is sin (then cos) of 2 pi k.p / S + phase_j, k = round(S * wave_j), at
    each sample's centre p: 4 output pixels apart (a 4-stage generator's second-to-last stage input), checked
    against that formula one sample at a time; a texture twice the size has the fields tiled 2x2 (whole periods:
    seamless at any size)."""
    waves, stages, scale, side = WAVES, 4, 16, 2  # a 32-pixel texture
    phases = torch.tensor([[0.3, 2.0], [5.0, 1.0]], dtype=torch.float64)
    cells = dcgan.wave_fields(waves, phases, side, scale, stages)
    assert cells.shape == (2, dcgan.wave_field_channels(2, stages), side, side) == (2, 64, 2, 2)
    fields = torch.nn.functional.pixel_shuffle(cells, 4).double()  # (2, sin 0, sin 1, cos 0, cos 1, 8, 8)
    for n, j, u, v in itertools.product(range(2), range(2), range(8), range(8)):
        ky, kx = (round(float(f) * 32) for f in waves[j])
        angle = 2 * math.pi * (ky * (4 * u + 1.5) + kx * (4 * v + 1.5)) / 32 + float(phases[n, j])
        assert abs(float(fields[n, j, u, v]) - math.sin(angle)) < 1e-6
        assert abs(float(fields[n, 2 + j, u, v]) - math.cos(angle)) < 1e-6
    twice = dcgan.wave_fields(waves, phases, 2 * side, scale, stages)
    assert_close(twice, cells.repeat(1, 1, 2, 2), atol=1e-6, rtol=0, what="fields of the texture twice the size")


def test_wave_fields_move_with_the_texture():
    """Noise cells rolled one cell right, with each wave's phase moved back by its advance over one cell, give the
    image rolled one cell right: the fields are a global phase, in step with the noise's place."""
    module = small_generator(widths=(12, 7, 6), waves=WAVES, seed=3)
    side, scale, stages = 4, module.scale, 3
    g = torch.Generator().manual_seed(4)
    noise = torch.randn(1, module.input_channels - dcgan.wave_field_channels(2, stages), side, side, generator=g)
    phases = torch.rand(1, 2, generator=g, dtype=torch.float64) * 2 * math.pi
    advance = 2 * math.pi * torch.round(WAVES[:, 1].double() * side * scale) / side  # radians per cell across
    with torch.no_grad():
        image = module(torch.cat([noise, dcgan.wave_fields(WAVES, phases, side, scale, stages)], 1))
        moved = module(
            torch.cat([noise.roll(1, 3), dcgan.wave_fields(WAVES, phases - advance, side, scale, stages)], 1)
        )
        other = module(torch.cat([noise, dcgan.wave_fields(WAVES, phases + 1.0, side, scale, stages)], 1))
    assert_close(moved, image.roll(scale, 3), atol=1e-5, rtol=1e-5, what="rolled")
    assert (other - image).abs().max() > 0.05, "the fields do not reach the image"


def test_cells_of_a_generator_without_waves_are_the_noise_they_always_were():
    module = small_generator()
    cells = dcgan.draw_cells(module, module.input_channels, 2, 3, torch.Generator().manual_seed(4))
    assert torch.equal(cells, torch.randn(2, module.input_channels, 3, 3, generator=torch.Generator().manual_seed(4)))


def test_cells_of_a_generator_with_waves_end_with_its_fields():
    module = small_generator(widths=(12, 7, 6), waves=WAVES)
    fields = dcgan.wave_field_channels(2, 3)
    assert module.input_channels == 5 + 4 + 16 + 64 + fields and fields == 2 * 2 * 4
    cells = dcgan.draw_cells(module, module.input_channels, 3, 4, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    noise = torch.randn(3, module.input_channels - fields, 4, 4, generator=g)
    phases = torch.rand(3, 2, generator=g, dtype=torch.float64) * 2 * math.pi
    assert torch.equal(cells, torch.cat([noise, dcgan.wave_fields(WAVES, phases, 4, 8, 3)], 1))
    with pytest.raises(ValueError, match="three stages or more"):
        dcgan.Generator(noise_channels=4, widths=(8, 8), waves=WAVES)


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_shuffle_into_a_channel_slice_equals_pixel_shuffle(scale):
    """The bound generator's noise copy: a channel window of the cells, shuffled into a channel slice of a
    channels_last buffer, the neighbouring channels (NaN) untouched."""
    cells = torch.randn(2, 9 + 4 * scale * scale, 3, 5, generator=torch.Generator().manual_seed(scale))
    cells = cells.contiguous(memory_format=torch.channels_last)
    wide = torch.full((2, 7, 3 * scale, 5 * scale), float("nan")).contiguous(memory_format=torch.channels_last)
    dcgan.shuffle_into(cells[:, 9:], scale, wide[:, 2:6])
    assert torch.equal(wide[:, 2:6], torch.nn.functional.pixel_shuffle(cells[:, 9:], scale))
    assert torch.isnan(wide[:, :2]).all() and torch.isnan(wide[:, 6:]).all()


def test_phase_centring_removes_the_period_two_mean_pattern_and_recalibrate_measures_it():
    """Training mode centres each batch; eval mode subtracts the pattern measured by `recalibrate` over fixed
    batches: the per-phase means of the uncentred output, less their average (checked with numpy)."""
    module = small_generator(seed=8).train()
    batches = [
        torch.randn(3, module.input_channels, 2, 3, generator=torch.Generator().manual_seed(s)) for s in range(4)
    ]
    with torch.no_grad():
        trained = module(batches[0]).numpy()
    means = trained.reshape(3, 3, 8, 2, 12, 2).mean((0, 2, 4))
    np.testing.assert_allclose(means, means.mean((1, 2), keepdims=True) + np.zeros((3, 2, 2)), atol=1e-6)
    calibrated = dcgan.recalibrate(module, batches)
    assert not calibrated.training and module.training
    with torch.no_grad():
        raw = np.stack([calibrated.uncentred(b).numpy() for b in batches])  # (4, 3, 3, 16, 24)
        expected = raw.reshape(4, 3, 3, 8, 2, 12, 2).mean((0, 1, 3, 5))
        np.testing.assert_allclose(calibrated.centre.running_mean.numpy(), expected, atol=1e-6)
        offsets = expected - expected.mean((1, 2), keepdims=True)
        out = calibrated(batches[1]).numpy()
    np.testing.assert_allclose(out, raw[1] - np.tile(offsets, (1, 8, 12))[None], atol=1e-6)


@pytest.mark.parametrize(
    "widths,noise_channels,waves,materials",
    [
        ((12, 7, 6), 5, None, 0),
        ((32, 16, 8, 8), 16, None, 0),
        ((4,), 1, None, 0),
        ((12, 7, 6), 5, WAVES, 0),
        ((12, 7, 6), 5, WAVES, 3),
    ],
    ids=str,
)
def test_round_trip_through_safetensors_recovers_the_generator(tmp_path, widths, noise_channels, waves, materials):
    module = small_generator(noise_channels=noise_channels, widths=widths, seed=6, waves=waves, materials=materials)
    assert dcgan.ARCH.detect(module.state_dict())
    assert detect_arch(module.state_dict()) is None, "an SR architecture claims the generator's keys"
    path = write_safetensors(tmp_path / "g.safetensors", module.state_dict(), {"arch": dcgan.ARCH.id})
    state, metadata = read_weights(path)
    loaded, info = dcgan.ARCH.load(state, {})
    recovered = tuple(stage.conv.weight.shape[0] for stage in loaded.stages)
    assert (info.arch, loaded.noise_channels, recovered, info.net_scale) == (
        "dcgan",
        noise_channels,
        widths,
        2 ** len(widths),
    )
    assert info.in_channels == module.input_channels and torch.equal(loaded.waves, module.waves)
    assert ("waves" in state) == (waves is not None)  # files without waves hold what they always held
    assert ("materials" in state) == bool(materials) and torch.equal(loaded.materials, torch.eye(materials))
    noise = torch.randn(1, info.in_channels, 2, 3, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert torch.equal(loaded(noise), module(noise))


@pytest.mark.parametrize(
    "waves", [torch.tensor([0.1, 0.2]), torch.zeros(2, 3), torch.zeros(0, 2), torch.tensor([[0.5, 0.0]])], ids=str
)
def test_a_file_with_malformed_waves_is_refused_in_one_line(tmp_path, waves):
    from srkit.errors import ModelFormatError
    from srkit.models.generators import read_generator

    state = small_generator(widths=(12, 7, 6), waves=WAVES).state_dict() | {"waves": waves}
    path = write_safetensors(tmp_path / "g.safetensors", state, {"arch": dcgan.ARCH.id})
    with pytest.raises(ModelFormatError, match="entry 'waves'|'waves' of shape") as error:  # (0, 2): an empty layer
        read_generator(path)
    assert len(str(error.value).splitlines()) == 1


@pytest.mark.parametrize(
    "codes", [torch.ones(3), 2 * torch.eye(3), torch.eye(3)[:, :2], torch.eye(5), torch.zeros(0, 0)], ids=str
)
def test_a_file_with_malformed_material_codes_is_refused_in_one_line(tmp_path, codes):
    from srkit.errors import ModelFormatError
    from srkit.models.generators import read_generator

    state = small_generator(widths=(12, 7, 6), materials=3).state_dict() | {"materials": codes}
    path = write_safetensors(tmp_path / "g.safetensors", state, {"arch": dcgan.ARCH.id})
    with pytest.raises(ModelFormatError, match="entry 'materials'|'materials' of shape") as error:
        read_generator(path)
    assert len(str(error.value).splitlines()) == 1


def test_cells_of_a_generator_with_materials_carry_the_material_s_code_in_every_cell():
    """The last 3 of 5 noise channels are the code of the texture's material, the same in every cell; the
    other channels are the noise a generator without materials draws; undrawn materials go round uniformly."""
    module = small_generator(noise_channels=5, materials=3)
    cells = dcgan.draw_cells(module, module.input_channels, 2, 3, torch.Generator().manual_seed(4), material=2)
    noise = torch.randn(2, module.input_channels, 3, 3, generator=torch.Generator().manual_seed(4))
    assert torch.equal(cells[:, :2], noise[:, :2]) and torch.equal(cells[:, 5:], noise[:, 5:])
    assert torch.equal(cells[:, 2:5], torch.tensor([0.0, 0.0, 1.0])[None, :, None, None].expand(2, 3, 3, 3))
    chosen = torch.tensor([1, 0])
    cells = dcgan.draw_cells(module, module.input_channels, 2, 3, torch.Generator().manual_seed(4), material=chosen)
    assert torch.equal(cells[:, 2:5].argmax(1), chosen[:, None, None].expand(2, 3, 3))
    drawn = dcgan.draw_cells(module, module.input_channels, 600, 1, torch.Generator().manual_seed(5))[:, 2:5, 0, 0]
    assert torch.equal(drawn.sum(1), torch.ones(600)) and ((drawn == 0) | (drawn == 1)).all()
    counts = drawn.sum(0)
    assert ((counts > 150) & (counts < 250)).all(), counts  # 200 each; 4.4 standard deviations either side
    with pytest.raises(ValueError, match="materials 0 to 2"):
        dcgan.draw_cells(module, module.input_channels, 1, 1, torch.Generator(), material=3)
    with pytest.raises(ValueError, match="no materials"):
        dcgan.draw_cells(small_generator(), 89, 1, 1, torch.Generator(), material=0)
    with pytest.raises(ValueError, match="5 materials leave none of the 5"):
        dcgan.Generator(noise_channels=5, widths=(8, 8), materials=5)


def test_materials_added_with_zero_weights_keep_the_images_and_the_code_reaches_them():
    """add_materials: the generator reads the code with zero weights, so every material is the source's image
    from the same noise; with weights of its own the code changes the image."""
    source = small_generator(noise_channels=5, seed=8)
    widened = dcgan.Generator(noise_channels=7, widths=(12, 7, 6), materials=2).eval()
    widened.load_state_dict(dcgan.add_materials(source.state_dict(), 2))
    g = torch.Generator().manual_seed(9)
    noise = torch.randn(2, source.input_channels, 2, 3, generator=g)
    with torch.no_grad():
        for material in (0, 1):
            code = widened.material_codes(torch.full((2,), material))[:, :, None, None].expand(2, 2, 2, 3)
            cells = torch.cat([noise[:, :5], code, noise[:, 5:]], 1)
            assert_close(widened(cells), source(noise), atol=1e-6, rtol=0, what=f"material {material}")
        coded = small_generator(noise_channels=7, seed=8, materials=2)
        one, other = (
            coded(dcgan.draw_cells(coded, coded.input_channels, 1, 2, torch.Generator().manual_seed(3), material=m))
            for m in (0, 1)
        )
    assert (one - other).abs().max() > 0.05, "the material code does not reach the image"


def test_phase_centring_with_materials_removes_each_material_s_own_pattern():
    """Calibrated per material, every material's textures have no period-2 mean pattern left over the calibration
    batches (one pattern for all leaves each material's difference from it); in training each material's
    textures in the batch are centred by their own mean."""
    module = small_generator(noise_channels=7, widths=(12, 7, 6), seed=13, materials=2).train()
    g = torch.Generator().manual_seed(14)
    batches = [dcgan.draw_cells(module, module.input_channels, 6, 2, g) for _ in range(3)]
    calibrated = dcgan.recalibrate(module, batches)
    assert calibrated.centre.running_mean.shape == (2, 3, 2, 2)
    with torch.no_grad():
        images = torch.cat([calibrated(noise) for noise in batches])
        raw = torch.cat([calibrated.uncentred(noise) for noise in batches])
    materials = torch.cat([calibrated.materials_of(noise) for noise in batches])
    assert set(materials.tolist()) == {0, 1}
    left = dcgan.phase_offsets(dcgan.material_phase_means(images, materials, 2))
    assert left.abs().max() < 1e-6, left
    own = dcgan.phase_offsets(dcgan.material_phase_means(raw, materials, 2))
    one_for_all = own - dcgan.phase_offsets(dcgan.phase_means(raw))
    assert one_for_all.abs().max() > 1e-3, "the materials' patterns do not differ: the test shows nothing"
    module.train()
    batch = batches[0]
    with torch.no_grad():
        trained = module(batch)
    left = dcgan.phase_offsets(dcgan.material_phase_means(trained, module.materials_of(batch), 2))
    assert left.abs().max() < 1e-6, left


def test_detect_refuses_sr_and_discriminator_weights():
    from ..engine._models import small_model

    assert not dcgan.ARCH.detect(small_model("compact-x3")[0].state_dict())
    assert not dcgan.ARCH.detect(dcgan.Discriminator(features=4).state_dict())


@pytest.mark.parametrize("size,num_down", [(64, 3), (128, 4), (40, 2)])
def test_discriminator_gives_patch_logits(size, num_down):
    module = dcgan.initialise(dcgan.Discriminator(features=4, num_down=num_down), torch.Generator().manual_seed(8))
    logits = module(torch.rand(3, 3, size, size))
    assert logits.shape == (3, 1, size // 2**num_down, size // 2**num_down)
