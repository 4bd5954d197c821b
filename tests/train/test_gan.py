"""`srkit train gan`: crops, losses going the right way, checkpoints that resume exactly, outputs, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import srkit
from srkit.cli import main
from srkit.errors import SrkitError
from srkit.models import dcgan
from srkit.models.generators import read_generator
from srkit.models.weights import read_weights
from srkit.train.averaging import average_decay
from srkit.train.exemplars import CropSampler, dominant_waves, exemplar_files, load_exemplars
from srkit.train.gan import (
    CALIBRATION_BATCHES,
    GANTrainConfig,
    GANTrainer,
    discriminator_loss,
    generator_loss,
    train_gan,
)

from ..io._patterns import pat_bytes

TINY = dict(size=64, batch=4, noise_channels=8, features=8)


def _stripes(seed: int = 0, size: int = 40) -> np.ndarray:
    """A small striped exemplar with a little seeded noise (uint8 RGB)."""
    x = np.arange(size)
    stripes = 0.5 + 0.4 * np.sin(x * 0.8)[None, :, None] * np.array([1.0, 0.6, 0.3])
    noisy = stripes + 0.05 * np.random.default_rng(seed).uniform(size=(size, size, 3))
    return (np.clip(noisy, 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture
def exemplar_pat(tmp_path) -> Path:
    path = tmp_path / "stripes.pat"
    path.write_bytes(pat_bytes(_stripes()))
    return path


@pytest.mark.parametrize("loss", ["bce", "hinge"])
def test_a_few_steps_reduce_the_discriminator_loss(exemplar_pat, loss):
    config = GANTrainConfig(loss=loss, seed=1, stats_weight=0.0, **TINY)  # the adversarial part alone
    trainer = GANTrainer(config, load_exemplars([exemplar_pat]), "cpu")
    losses = [trainer.step(taken)[0] for taken in range(20)]
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.03, losses


def test_run_writes_checkpoint_generator_samples_and_log(exemplar_pat, tmp_path):
    run = tmp_path / "run"
    state = train_gan(
        GANTrainConfig(steps=6, sample_every=3, checkpoint_every=4, family="stripes", **TINY), [exemplar_pat], run
    )
    assert state.step == 6 and [row["step"] for row in state.history if "d_loss" in row] == [6]
    assert [row["step"] for row in state.history if "realism" in row] == [4, 6]  # at each checkpoint
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoint.safetensors",
        "generator.safetensors",
        "log.jsonl",
        "samples",
    ]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-000003.png", "step-000006.png"]
    with Image.open(run / "samples" / "step-000006.png") as sheet:  # 2x2 samples of 128 px, each tiled 2x2
        assert sheet.size == (2 * 256 + 12, 2 * 256 + 12)
    generator = read_generator(run / "generator.safetensors")
    stage_noise = 4 + 16 + 64 + 256  # per-pixel noise of the four stages, folded into each cell
    assert generator.info.net_scale == 16 and generator.info.in_channels == 8 + stage_noise
    assert generator.module.noise_channels == 8 and not generator.module.training
    assert json.loads((run / "log.jsonl").read_text().splitlines()[-1])["step"] == 6


@pytest.mark.parametrize("options", [dict(scales=1), dict(scales=2), dict(waves=1)], ids=str)
def test_resumed_run_equals_an_uninterrupted_one(exemplar_pat, tmp_path, options):
    config = dict(sample_every=100, checkpoint_every=3, **options, **TINY)
    train_gan(GANTrainConfig(steps=6, **config), [exemplar_pat], tmp_path / "whole")
    train_gan(GANTrainConfig(steps=3, **config), [exemplar_pat], tmp_path / "parts")
    train_gan(GANTrainConfig(steps=6, **config), [exemplar_pat], tmp_path / "parts", resume=True)
    whole = read_generator(tmp_path / "whole" / "generator.safetensors").module.state_dict()
    parts = read_generator(tmp_path / "parts" / "generator.safetensors").module.state_dict()
    assert all(torch.equal(whole[key], parts[key]) for key in whole)


def test_exported_generator_uses_batchnorm_statistics_measured_on_fixed_noise(exemplar_pat):
    trainer = GANTrainer(GANTrainConfig(seed=2, **TINY), load_exemplars([exemplar_pat]), "cpu")
    for taken in range(3):
        trainer.step(taken)
    exported = trainer.inference_generator()
    fixed = torch.Generator().manual_seed(2 + 2)  # the calibration stream: seed + 2, CALIBRATION_BATCHES batches
    channels = trainer.generator.input_channels
    assert trainer.average is not None  # what is exported: the weights' moving average
    with torch.no_grad():  # the first stage's BatchNorm input: its conv of the upsampled first 8 channels
        means = [
            trainer.average.stages[0]
            .conv(dcgan.wrap_upsample(torch.randn((4, channels, 4, 4), generator=fixed)[:, :8]))
            .mean((0, 2, 3))
            for _ in range(CALIBRATION_BATCHES)
        ]
    assert not exported.training and trainer.generator.training
    torch.testing.assert_close(exported.stages[0].norm.running_mean, torch.stack(means).mean(0))


def test_cli_trains_and_refuses_a_second_run_in_the_same_folder(exemplar_pat, tmp_path, capsys):
    run = tmp_path / "cli-run"
    argv = [
        "train",
        "gan",
        str(exemplar_pat),
        "-o",
        str(run),
        "--steps",
        "2",
        "--batch",
        "2",
        "--features",
        "4",
        "--noise-channels",
        "4",
        "--loss",
        "hinge",
    ]
    assert main(argv) == 0
    assert "trained 2 steps" in capsys.readouterr().err
    assert main(argv) == 1
    assert "--resume" in capsys.readouterr().err
    assert main(argv + ["--resume", "--batch", "3"]) == 1
    assert "started with --batch 2" in capsys.readouterr().err


def test_crops_wrap_around_patterns_and_stay_inside_photos(tmp_path, exemplar_pat):
    photo = tmp_path / "photo.png"
    Image.fromarray(_stripes(1, 70)).save(photo)
    pattern, picture = load_exemplars([exemplar_pat, photo])
    assert pattern.tileable and not picture.tileable
    tile = pattern.pixels
    crops = CropSampler([pattern], 64, torch.Generator().manual_seed(0)).batch(3)  # larger than the 40 px pattern
    for crop in crops:  # as the pattern is oriented: a window of it tiled 3x3, never flipped
        assert any(
            torch.equal(crop, tile.repeat(1, 3, 3)[:, t : t + 64, c : c + 64]) for t in range(40) for c in range(40)
        )
    crops = CropSampler([pattern], 64, torch.Generator().manual_seed(0), flips=True).batch(3)
    assert crops.shape == (3, 3, 64, 64) and 0 <= crops.min() and crops.max() <= 1
    for crop in crops:  # every crop is a window of the pattern tiled 3x3, perhaps flipped
        found = any(
            torch.equal(crop.flip(flips), tile.repeat(1, 3, 3)[:, t : t + 64, c : c + 64])
            for flips in ([], [1], [2], [1, 2])
            for t in range(40)
            for c in range(40)
        )
        assert found
    with pytest.raises(SrkitError, match="photo.png: smaller than the 128-pixel crops"):
        CropSampler([picture], 128, torch.Generator())


def test_folders_are_searched_and_bad_data_is_named(tmp_path, exemplar_pat):
    folder = tmp_path / "set"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(_stripes()).save(folder / "sub" / "a.png")
    (folder / "notes.txt").write_text("not an image")
    assert exemplar_files([folder, exemplar_pat]) == [folder / "sub" / "a.png", exemplar_pat]
    with pytest.raises(SrkitError, match="missing: no such file"):
        exemplar_files([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SrkitError, match="no images"):
        exemplar_files([tmp_path / "empty"])


def test_statistics_loss_is_optional_and_reported(exemplar_pat):
    """--stats-weight 0 trains a plain GAN (statistics term 0); the default reports a positive term that falls."""
    plain = GANTrainer(GANTrainConfig(stats_weight=0.0, seed=3, **TINY), load_exemplars([exemplar_pat]), "cpu")
    assert all(plain.step(taken)[2] == 0.0 for taken in range(2))
    trainer = GANTrainer(GANTrainConfig(seed=3, **TINY), load_exemplars([exemplar_pat]), "cpu")
    stats = [trainer.step(taken)[2] for taken in range(30)]
    assert min(stats) > 0 and np.mean(stats[-5:]) < 0.8 * np.mean(stats[:5]), stats
    with pytest.raises(SrkitError, match="--stats-weight -1"):
        GANTrainConfig(stats_weight=-1.0).check()


def test_losses_match_their_definitions():
    real, fake = torch.tensor([2.0, -0.5]), torch.tensor([0.3, -1.5])
    softplus = torch.nn.functional.softplus  # BCE with logits: target 1 -> softplus(-x), target 0 -> softplus(x)
    bce = softplus(-real).mean() + softplus(fake).mean()
    smoothed = (0.9 * softplus(-real) + 0.1 * softplus(real)).mean() + softplus(fake).mean()
    torch.testing.assert_close(discriminator_loss("bce", real, fake), bce)
    torch.testing.assert_close(discriminator_loss("bce", real, fake, smoothing=0.1), smoothed)
    torch.testing.assert_close(discriminator_loss("hinge", real, fake), torch.tensor((0.0 + 1.5) / 2 + (1.3 + 0.0) / 2))
    torch.testing.assert_close(generator_loss("hinge", fake), torch.tensor(0.6))
    torch.testing.assert_close(generator_loss("bce", fake), softplus(-fake).mean())


def test_coarser_discriminators_join_and_one_scale_is_unchanged(exemplar_pat):
    one = GANTrainer(GANTrainConfig(seed=3, **TINY), load_exemplars([exemplar_pat]), "cpu")
    three = GANTrainer(GANTrainConfig(seed=3, scales=3, **TINY), load_exemplars([exemplar_pat]), "cpu")
    assert set(one.modules) == {"generator", "average_generator", "discriminator"} and len(three.coarse) == 2
    state = {key: value.clone() for key, value in one.generator.state_dict().items()}
    assert all(torch.equal(state[k], v) for k, v in three.generator.state_dict().items())  # same initialisation
    real = torch.rand(2, 3, 64, 64)
    shapes = [tuple(logits.shape) for logits in three.judged(real, torch.zeros(2, dtype=torch.long))]
    assert shapes == [(2, 1, 8, 8), (2, 1, 8, 8), (2, 1, 4, 4)]  # 64 px, pooled to 32 and 16
    assert np.isfinite(three.step(0)).all()
    with pytest.raises(SrkitError, match="--scales 4: use 1 to 3"):
        GANTrainConfig(scales=4, **TINY).check()


def test_checkpoints_log_the_realism_of_the_exported_generator(exemplar_pat, tmp_path):
    run = tmp_path / "run"
    state = train_gan(
        GANTrainConfig(steps=4, checkpoint_every=2, sample_every=100, scales=2, **TINY), [exemplar_pat], run
    )
    scores = [row for row in state.history if "realism" in row]
    assert [row["step"] for row in scores] == [2, 4]
    assert all(np.isfinite(row["realism"]) for row in scores)
    assert json.loads((run / "log.jsonl").read_text().splitlines()[-1])["realism"] == scores[-1]["realism"]


def test_a_generator_trained_on_registry_exemplars_carries_their_licenses(exemplar_pat, tmp_path, monkeypatch):
    from srkit.models.weights import read_weights
    from srkit.train import exemplar_sources

    entry = exemplar_sources.ExemplarSource("wood", "gimp-data", str(exemplar_pat))
    monkeypatch.setattr(exemplar_sources, "REGISTRY", (entry,))
    train_gan(GANTrainConfig(steps=1, sample_every=100, checkpoint_every=100, **TINY), [exemplar_pat], tmp_path / "r")
    _, metadata = read_weights(tmp_path / "r" / "generator.safetensors")
    assert metadata["training"]["exemplars"] == [entry.record()] and "scales" not in metadata["training"]


def test_init_starts_from_a_generator_file_or_family_and_is_recorded(exemplar_pat, tmp_path, capsys):
    """--init copies a trained generator (the discriminator starts afresh); a different network is one line."""
    from srkit.models.generators import load_family
    from srkit.models.weights import read_weights

    first = tmp_path / "first"
    train_gan(GANTrainConfig(steps=2, sample_every=100, checkpoint_every=100, **TINY), [exemplar_pat], first)
    source = first / "generator.safetensors"
    tuned = GANTrainer(GANTrainConfig(init=str(source), seed=5, **TINY), load_exemplars([exemplar_pat]), "cpu")
    fresh = GANTrainer(GANTrainConfig(seed=5, **TINY), load_exemplars([exemplar_pat]), "cpu")
    trained = read_generator(source).module.state_dict()
    assert all(torch.equal(trained[k], v) for k, v in tuned.generator.state_dict().items())
    assert all(torch.equal(fresh.discriminator.state_dict()[k], v) for k, v in tuned.discriminator.state_dict().items())
    family = GANTrainer(GANTrainConfig(init="fabric", waves=2, sample_every=100), load_exemplars([exemplar_pat]), "cpu")
    fabric = load_family("fabric").module.state_dict()
    assert all(torch.equal(fabric[k], v) for k, v in family.generator.state_dict().items())
    run = tmp_path / "tuned"
    train_gan(GANTrainConfig(steps=1, init=str(source), checkpoint_every=100, **TINY), [exemplar_pat], run)
    _, metadata = read_weights(run / "generator.safetensors")
    assert metadata["training"]["init"] == str(source)
    argv = ["train", "gan", str(exemplar_pat), "-o", str(tmp_path / "cli"), "--init", "fabric", "--steps", "1"]
    assert main(argv + ["--waves", "2", "--features", "8"]) == 1  # fabric is 32 features wide
    assert "--init fabric: not the network these options build" in capsys.readouterr().err
    assert not (tmp_path / "cli").exists()
    assert main(argv[:-4] + ["--init", "wood"]) == 1  # wood learnt three exemplars, one material each
    err = capsys.readouterr().err
    assert "--init wood: a generator of 3 materials, one per exemplar it learnt; start it with --materials on 3" in err
    assert not (tmp_path / "cli").exists()
    assert main(argv[:-4] + ["--init", "realesr-animevideov3"]) == 1  # an SR model's name
    assert "neither a built-in family (wood, stone, fabric, grass) nor a generator file" in capsys.readouterr().err
    assert not (tmp_path / "cli").exists()
    with pytest.raises(SystemExit) as stopped:
        main(argv + ["--lr", "0"])
    assert stopped.value.code == 2 and "--lr" in capsys.readouterr().err
    with pytest.raises(SrkitError, match="--lr 0.0: use a learning rate above 0"):
        GANTrainConfig(lr=0.0).check()


def test_the_exported_generator_is_the_moving_average_of_the_weights(exemplar_pat, tmp_path):
    """The average's decay ramps up as (1 + n) / (10 + n) at update n, to --ema-decay: 0.1, then 2/11, ...; with
    --ema-decay 0.15 the second update is already capped at 0.15."""
    trainer = GANTrainer(GANTrainConfig(seed=4, ema_decay=0.15, **TINY), load_exemplars([exemplar_pat]), "cpu")
    average = {k: v.clone() for k, v in trainer.generator.named_parameters()}
    assert trainer.average is not None
    for taken, decay in enumerate((0.1, 0.15)):
        trainer.step(taken)
        weights = dict(trainer.generator.named_parameters())
        average = {name: decay * average[name] + (1 - decay) * weights[name] for name in average}
        for name, value in trainer.average.named_parameters():
            torch.testing.assert_close(value, average[name])
    assert [average_decay(0.999, n) for n in (0, 1, 90, 8990, 10**6)] == [0.1, 2 / 11, 0.91, 0.999, 0.999]
    exported = trainer.inference_generator()
    assert torch.equal(exported.out.weight, trainer.average.out.weight)
    plain = GANTrainer(GANTrainConfig(seed=4, ema_decay=0.0, **TINY), load_exemplars([exemplar_pat]), "cpu")
    assert plain.average is None and "average_generator" not in plain.modules
    plain.step(0)
    assert torch.equal(plain.inference_generator().out.weight, plain.generator.out.weight)
    with pytest.raises(SrkitError, match="--ema-decay 1.0"):
        GANTrainConfig(ema_decay=1.0).check()


def test_a_run_from_before_the_moving_average_resumes_without_one(exemplar_pat, tmp_path):
    """A checkpoint whose options predate --ema-decay and --flips was trained without an average and with flipped
    crops: resuming keeps it so."""
    from srkit.train.checkpoint import checkpoint_metadata

    run = tmp_path / "old"
    config = dict(sample_every=100, checkpoint_every=100, **TINY)
    train_gan(GANTrainConfig(steps=1, ema_decay=0.0, **config), [exemplar_pat], run)
    header = checkpoint_metadata(run / "checkpoint.safetensors")
    assert header["config"]["ema_decay"] == 0.0
    saved = dict(header["config"])
    del saved["ema_decay"]
    from srkit.train.gan import _check_resumable

    del saved["flips"]
    _check_resumable(saved, GANTrainConfig(steps=2, ema_decay=0.0, flips=True, **config), run)
    with pytest.raises(SrkitError, match="started with --ema-decay 0.0"):
        _check_resumable(saved, GANTrainConfig(steps=2, flips=True, **config), run)
    with pytest.raises(SrkitError, match="started with --flips; resume with the options"):
        _check_resumable(saved, GANTrainConfig(steps=2, ema_decay=0.0, **config), run)


def _waves_image(size: int = 64) -> np.ndarray:
    """Grey (y, x) = 0.5 + 0.25 sin(2 pi 3y / size) + 0.12 sin(2 pi (2y - 5x) / size + 1) + 0.1 sin(2 pi 12x / size):
    three periodicities, the last finer than a generator's wave fields can carry (12 periods of 64 pixels)."""
    y, x = np.mgrid[:size, :size] * (2 * np.pi / size)
    grey = 0.5 + 0.25 * np.sin(3 * y) + 0.12 * np.sin(2 * y - 5 * x + 1) + 0.1 * np.sin(12 * x)
    return np.repeat((grey * 255).round().astype(np.uint8)[:, :, None], 3, axis=2)


def test_dominant_waves_are_the_strongest_periodicities_the_fields_can_carry():
    """Crops of a pattern with known sines: the two strongest come first, in whole periods per crop (one of each
    +-k pair); the finer one is left out (above the fields' Nyquist), and a third is no neighbour of the first two."""
    pattern = torch.from_numpy(_waves_image()).permute(2, 0, 1).float() / 255
    g = torch.Generator().manual_seed(0)
    shifts = torch.randint(64, (16, 2), generator=g).tolist()
    crops = torch.stack([pattern.roll(tuple(shift), (1, 2)) for shift in shifts])
    crops = crops + 0.02 * torch.randn(crops.shape, generator=g)
    assert (dominant_waves(crops, 2) * 64).tolist() == [[3.0, 0.0], [2.0, -5.0]]
    third = (dominant_waves(crops, 3) * 64).tolist()[2]
    assert max(map(abs, third)) < 8 and all(
        max(abs(a - b), abs(c - d)) > 1
        for (a, c), (b, d) in (
            (third, (3, 0)),
            (third, (2, -5)),
            ((-third[0], -third[1]), (3, 0)),
            ((-third[0], -third[1]), (2, -5)),
        )
    )


def test_a_generator_trained_with_waves_reads_the_exemplars_periodicities(tmp_path):
    path = tmp_path / "waves.pat"
    path.write_bytes(pat_bytes(_waves_image()))
    run = tmp_path / "run"
    train_gan(GANTrainConfig(steps=2, waves=2, sample_every=100, checkpoint_every=100, **TINY), [path], run)
    generator = read_generator(run / "generator.safetensors")
    assert (generator.module.waves * 64).tolist() == [[3.0, 0.0], [2.0, -5.0]]
    assert read_weights(run / "generator.safetensors")[1]["training"]["waves"] == 2
    texture = srkit.TextureGenerator(model=run / "generator.safetensors", device="cpu")
    assert np.array_equal(texture.generate(64, 1), texture.generate(64, 1))
    assert not np.array_equal(texture.generate(64, 1), texture.generate(64, 2))


def test_waves_are_fixed_for_a_run_and_refused_below_zero(exemplar_pat, tmp_path, capsys):
    from srkit.train.gan import _check_resumable

    with pytest.raises(SrkitError, match="--waves -1"):
        GANTrainConfig(waves=-1).check()
    saved = dict(GANTrainConfig(**TINY).__dict__)
    del saved["waves"]  # a run from before --waves had none
    _check_resumable(saved, GANTrainConfig(**TINY), tmp_path)
    with pytest.raises(SrkitError, match="started with --waves 0, not 2"):
        _check_resumable(saved, GANTrainConfig(waves=2, **TINY), tmp_path)
    with pytest.raises(SystemExit) as stop:  # argparse's own check
        main(["train", "gan", str(exemplar_pat), "-o", str(tmp_path / "r"), "--waves", "-1"])
    assert stop.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after argparse's usage lines
    assert last.endswith("--waves must be between 0 and 16, got -1") and not (tmp_path / "r").exists()


def test_a_generator_without_waves_starts_one_with_waves_as_it_was(exemplar_pat, tmp_path):
    """--init from a generator without waves: the field weights start at zero, so the first images are the
    source's own (same noise), and the run then learns to read the fields."""
    source = tmp_path / "plain"
    train_gan(GANTrainConfig(steps=2, sample_every=100, checkpoint_every=100, **TINY), [exemplar_pat], source)
    plain = read_generator(source / "generator.safetensors").module
    config = GANTrainConfig(waves=1, init=str(source / "generator.safetensors"), ema_decay=0.0, **TINY)
    trainer = GANTrainer(config, load_exemplars([exemplar_pat]), "cpu")
    cells = trainer.noise(2, 4, torch.Generator().manual_seed(3))
    fields = dcgan.wave_field_channels(1, 4)
    with torch.no_grad():
        started, own = trainer.generator.eval()(cells), plain(cells[:, :-fields])
    torch.testing.assert_close(started, own, atol=1e-6, rtol=0)
    assert not trainer.generator.stages[2].conv.weight[:, -2:].any()
    trainer.generator.train()
    trainer.step(0)
    assert trainer.generator.stages[2].conv.weight[:, -2:].abs().max() > 0, "the field weights did not learn"


@pytest.fixture
def two_exemplars(tmp_path, exemplar_pat) -> list[Path]:
    """The striped pattern and a plain noisy photo of other colours: two materials."""
    photo = tmp_path / "speckle.png"
    pixels = np.random.default_rng(5).uniform(size=(72, 72, 3)) * np.array([0.3, 0.8, 0.5])
    Image.fromarray((pixels * 255).round().astype(np.uint8)).save(photo)
    return [exemplar_pat, photo]


def test_labelled_crops_are_the_batch_s_crops_and_name_their_exemplars(two_exemplars):
    exemplars = load_exemplars(two_exemplars)
    crops, indices = CropSampler(exemplars, 64, torch.Generator().manual_seed(3)).labelled(12)
    assert torch.equal(crops, CropSampler(exemplars, 64, torch.Generator().manual_seed(3)).batch(12))
    assert set(indices.tolist()) == {0, 1}
    for crop, index in zip(crops, indices):  # the pattern's crops hold its stripes: each column is constant-ish
        assert (crop.std(1).mean() < 0.05) == (index == 0)


def test_a_run_with_materials_gives_each_fake_the_material_of_its_real_crop_and_resumes(two_exemplars, tmp_path):
    config = dict(materials=True, sample_every=100, checkpoint_every=2, **TINY)
    trainer = GANTrainer(GANTrainConfig(seed=1, **config), load_exemplars(two_exemplars), "cpu")
    assert trainer.discriminator.stages[0][0].in_channels == 3 + 2  # the image and the code beside it
    seen = []
    trainer.generator.register_forward_pre_hook(lambda module, args: seen.append(args[0][:, 8:10, 0, 0].argmax(1)))
    trainer.step(0)
    labels = CropSampler(load_exemplars(two_exemplars), 64, torch.Generator().manual_seed(1 * 4 + 2)).labelled(4)[1]
    assert torch.equal(seen[0], labels)
    train_gan(GANTrainConfig(steps=4, **config), two_exemplars, tmp_path / "whole")
    train_gan(GANTrainConfig(steps=2, **config), two_exemplars, tmp_path / "parts")
    train_gan(GANTrainConfig(steps=4, **config), two_exemplars, tmp_path / "parts", resume=True)
    whole = read_generator(tmp_path / "whole" / "generator.safetensors").module.state_dict()
    parts = read_generator(tmp_path / "parts" / "generator.safetensors").module.state_dict()
    assert all(torch.equal(whole[key], parts[key]) for key in whole) and torch.equal(whole["materials"], torch.eye(2))
    _, metadata = read_weights(tmp_path / "whole" / "generator.safetensors")
    assert metadata["training"]["materials"] is True
    texture = srkit.TextureGenerator(model=tmp_path / "whole" / "generator.safetensors", device="cpu")
    assert texture.materials == ["stripes", "speckle"] and texture.texture_fields(3)["material_name"] == "speckle"
    only = srkit.TextureGenerator(model=tmp_path / "whole" / "generator.safetensors", device="cpu", material=1)
    assert np.array_equal(only.generate(64, 3), texture.generate(64, 3))  # seed 3 is material 3 mod 2 anyway
    assert not np.array_equal(only.generate(64, 2), texture.generate(64, 2))


def test_materials_of_exemplars_sharing_a_stem_are_named_by_file_name(two_exemplars, tmp_path):
    """grass trains on OpenArena's grass.jpg and scikit-image's grass.png: their stems alone would name two
    materials alike."""
    from srkit.models.weights import write_safetensors

    run = tmp_path / "run"
    train_gan(
        GANTrainConfig(steps=1, materials=True, sample_every=100, checkpoint_every=100, **TINY), two_exemplars, run
    )
    state, metadata = read_weights(run / "generator.safetensors")
    metadata["training"]["data"] = ["/usr/share/a.pk3:textures/grass.jpg", "$SKIMAGE_DATA/grass.png"]
    write_safetensors(tmp_path / "renamed.safetensors", state, metadata)
    texture = srkit.TextureGenerator(model=tmp_path / "renamed.safetensors", device="cpu")
    assert texture.materials == ["grass.jpg", "grass.png"]


def test_materials_need_two_exemplars_and_are_fixed_for_a_run(exemplar_pat, tmp_path, capsys):
    from srkit.train.gan import _check_resumable

    with pytest.raises(SrkitError, match="two exemplars or more"):
        GANTrainer(GANTrainConfig(materials=True, **TINY), load_exemplars([exemplar_pat]), "cpu")
    saved = dict(GANTrainConfig(**TINY).__dict__)
    del saved["materials"]  # a run from before --materials had none
    _check_resumable(saved, GANTrainConfig(**TINY), tmp_path)
    with pytest.raises(SrkitError, match="started without --materials"):
        _check_resumable(saved, GANTrainConfig(materials=True, **TINY), tmp_path)
    argv = ["train", "gan", str(exemplar_pat), "-o", str(tmp_path / "r"), "--materials", "--device", "cpu"]
    assert main(argv) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("needs two exemplars or more")
    assert not (tmp_path / "r" / "generator.safetensors").exists()


def test_a_generator_without_materials_starts_one_with_materials_as_it_was(two_exemplars, tmp_path):
    """--init from a generator without materials: the code's weights start at zero, so every material's first
    images are the source's own (same noise), and the run then learns to tell them apart."""
    source = tmp_path / "plain"
    train_gan(GANTrainConfig(steps=2, sample_every=100, checkpoint_every=100, **TINY), two_exemplars, source)
    plain = read_generator(source / "generator.safetensors").module
    config = GANTrainConfig(materials=True, init=str(source / "generator.safetensors"), ema_decay=0.0, **TINY)
    trainer = GANTrainer(config, load_exemplars(two_exemplars), "cpu")
    for material in (0, 1):
        cells = trainer.noise(2, 4, torch.Generator().manual_seed(3), torch.tensor(material))
        with torch.no_grad():
            started, own = trainer.generator.eval()(cells), plain(torch.cat([cells[:, :8], cells[:, 10:]], 1))
        torch.testing.assert_close(started, own, atol=1e-6, rtol=0)
    assert not trainer.generator.stages[0].conv.weight[:, 8:].any()
    trainer.generator.train()
    trainer.step(0)
    assert trainer.generator.stages[0].conv.weight[:, 8:].abs().max() > 0, "the code's weights did not learn"
