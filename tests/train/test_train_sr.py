"""`srkit train sr`: the loss goes down, checkpoints resume to exactly the same weights, bad runs are refused."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from srkit.cli import main
from srkit.models.weights import read_weights
from srkit.models.zoo import load_model
from srkit.train.data import PairSampler, load_photo, validation_pairs
from srkit.train.sr import SRTrainConfig, build_network, train_sr

from ._photos import write_photos

TINY = dict(
    arch="compact",
    scale=2,
    features=8,
    num_conv=2,
    patch=12,
    batch=4,
    lr=2e-3,
    val_every=5,
    checkpoint_every=5,
    val_crop=None,
)


@pytest.fixture
def photos(tmp_path):
    train = write_photos(tmp_path / "train", [(61, 75), (80, 53), (47, 90)])
    val = write_photos(tmp_path / "val", [(41, 47)], seed=10)
    return tmp_path, train, val


def _l1_on(pairs, module) -> float:
    with torch.no_grad():
        return sum(float(F.l1_loss(module(lr), hr)) for lr, hr in pairs) / len(pairs)


def test_training_reduces_the_loss_on_held_out_photos_and_writes_a_loadable_model(photos):
    root, _, val = photos
    config = SRTrainConfig(steps=40, **TINY)
    state = train_sr(config, [str(root / "train")], root / "run", [str(val[0])], progress=False)
    pairs = validation_pairs([load_photo(val[0])], 2, None)
    torch.manual_seed(config.seed)
    before = _l1_on(pairs, build_network(config))
    loaded = load_model(root / "run" / "model.safetensors")
    after = _l1_on(pairs, loaded.module)
    assert after < 0.85 * before, (before, after)
    assert [r["step"] for r in state.history] == [5 * i for i in range(1, 9)]
    _, metadata = read_weights(root / "run" / "model.safetensors")
    assert metadata["arch"] == "compact" and metadata["scale"] == 2
    assert metadata["training"]["held_out"] == ["photo0.png"]
    assert sorted(metadata["training"]["train_photos"]) == ["photo0.png", "photo1.png", "photo2.png"]
    log = [json.loads(line) for line in (root / "run" / "log.jsonl").read_text().splitlines()]
    assert log == state.history


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize(
    "arch, loss, degradation",
    [("compact", "l1+ssim", "real"), ("seednet", "mse", "bicubic"), ("rrdb", "ssim", "bicubic")],
)
def test_resume_after_an_interruption_gives_the_same_weights_as_an_uninterrupted_run(
    photos, monkeypatch, arch, loss, degradation
):
    root, _, val = photos
    params = {**TINY, "arch": arch, "loss": loss, "degradation": degradation, "checkpoint_every": 3}
    if arch == "rrdb":
        params.update(features=8, num_conv=1, growth=4, patch=8)
    config = SRTrainConfig(steps=7, **params)
    train_sr(config, [str(root / "train")], root / "straight", [str(val[0])], progress=False)

    calls = {"n": 0}
    original = PairSampler.batch

    def interrupted(self, size):
        calls["n"] += 1
        if calls["n"] == 5:
            raise _Interrupt
        return original(self, size)

    monkeypatch.setattr(PairSampler, "batch", interrupted)
    with pytest.raises(_Interrupt):
        train_sr(config, [str(root / "train")], root / "resumed", [str(val[0])], progress=False)
    monkeypatch.setattr(PairSampler, "batch", original)
    with pytest.raises(Exception, match="holds a training run"):
        train_sr(config, [str(root / "train")], root / "resumed", [str(val[0])], progress=False)
    state = train_sr(config, [str(root / "train")], root / "resumed", [str(val[0])], resume=True, progress=False)
    assert state.step == 7
    straight, _ = read_weights(root / "straight" / "model.safetensors")
    resumed, _ = read_weights(root / "resumed" / "model.safetensors")
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_large_lossy_photos_are_reduced_by_area_before_training(tmp_path):
    path = write_photos(tmp_path, [(90, 120)], suffix=".jpg")[0]
    png = write_photos(tmp_path / "png", [(90, 120)])[0]
    assert load_photo(path, max_side=60).shape == (3, 45, 60)
    assert load_photo(png, max_side=60).shape == (3, 90, 120)  # lossless photos keep every pixel
    assert load_photo(path, max_side=None).shape == (3, 90, 120)


def test_sampler_pairs_are_a_downscale_of_their_crop_and_follow_the_seed(photos):
    _, train, _ = photos
    images = [load_photo(p) for p in train]
    first = PairSampler(images, 3, 10, "bicubic", torch.Generator().manual_seed(5)).batch(3)
    again = PairSampler(images, 3, 10, "bicubic", torch.Generator().manual_seed(5)).batch(3)
    other = PairSampler(images, 3, 10, "bicubic", torch.Generator().manual_seed(6)).batch(3)
    assert first[0].shape == (3, 3, 10, 10) and first[1].shape == (3, 3, 30, 30)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])
    # LR is the antialiased area-like downscale of HR: its block means agree to within blur and 8-bit rounding.
    assert (F.avg_pool2d(first[1], 3) - first[0]).abs().mean() < 0.02


def test_cli_trains_resumes_and_refuses_bad_runs(photos, capsys):
    root, _, val = photos
    args = [
        "train",
        "sr",
        str(root / "train"),
        "-o",
        str(root / "cli"),
        "--arch",
        "seednet",
        "--scale",
        "2",
        "--features",
        "6",
        "--num-conv",
        "1",
        "--patch",
        "12",
        "--batch",
        "2",
        "--val",
        str(val[0]),
        "--val-every",
        "2",
        "--checkpoint-every",
        "2",
        "--device",
        "cpu",
    ]
    assert main([*args, "--steps", "2"]) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    assert main([*args, "--steps", "4"]) != 0
    assert "holds a training run; pass --resume" in capsys.readouterr().err
    assert main([*args, "--steps", "4", "--resume"]) == 0
    assert "trained 4 steps" in capsys.readouterr().out
    assert main([*args, "--steps", "6", "--resume", "--features", "7"]) != 0
    assert "--resume with different options: features (6 in the checkpoint, 7 now)" in capsys.readouterr().err
    assert main(["train", "sr", str(root / "nothing"), "-o", str(root / "x")]) != 0
    assert "no such file or directory" in capsys.readouterr().err
    assert main(["train", "sr", str(val[0]), "--val", str(val[0]), "-o", str(root / "y")]) != 0
    assert "every training photo is also a validation photo" in capsys.readouterr().err
    assert main(["train", "sr", str(root / "train"), "-o", str(root / "z"), "--patch", "100"]) != 0
    assert "use a smaller --patch" in capsys.readouterr().err
    assert main(["train", "sr", str(root / "train"), "-o", str(root / "w"), "--resume"]) != 0
    assert "no checkpoint.safetensors" in capsys.readouterr().err


def test_init_starts_from_a_trained_model_and_refuses_another_network(photos):
    root, _, val = photos
    first = SRTrainConfig(steps=3, **TINY)
    train_sr(first, [str(root / "train")], root / "first", [str(val[0])], progress=False)
    trained, _ = read_weights(root / "first" / "model.safetensors")
    tuned = SRTrainConfig(steps=1, **{**TINY, "lr": 1e-12}, init=str(root / "first" / "model.safetensors"))
    train_sr(tuned, [str(root / "train")], root / "tuned", [str(val[0])], progress=False)
    after, metadata = read_weights(root / "tuned" / "model.safetensors")
    for key in trained:  # one step at a negligible learning rate: still the initial weights
        assert torch.allclose(after[key], trained[key], atol=1e-6), key
    assert metadata["training"]["init"].endswith("model.safetensors")
    wrong = SRTrainConfig(steps=1, **{**TINY, "features": 6}, init=str(root / "first" / "model.safetensors"))
    with pytest.raises(Exception, match="not the network these options build"):
        train_sr(wrong, [str(root / "train")], root / "wrong", [str(val[0])], progress=False)
