"""Weights files: restricted unpickling, checkpoint unwrapping, safetensors metadata, atomic writes, and the
checks every loaded file passes (keys, tensor kinds, empty layers, non-finite weights, metadata fields)."""

from __future__ import annotations

import json
import os
import warnings
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from srkit.cli import main
from srkit.errors import ModelFormatError
from srkit.models import compact, seednet
from srkit.models.weights import METADATA_KEY, read_metadata, read_weights, write_safetensors


def _state():
    return compact.CompactSR(features=8, num_conv=1, scale=2).state_dict()


@pytest.mark.parametrize("wrap", ["params_ema", "params", "state_dict", None])
def test_pth_wrappers_and_module_prefix_are_removed(tmp_path, wrap):
    state = {f"module.{k}": v for k, v in _state().items()}
    path = tmp_path / "model.pth"
    torch.save({wrap: state, "iter": torch.tensor(5)} if wrap else state, path)
    loaded, metadata = read_weights(path)
    assert metadata == {}
    assert set(loaded) == set(_state())


def test_params_ema_wins_over_params(tmp_path):
    ema, raw = _state(), {k: torch.zeros_like(v) for k, v in _state().items()}
    torch.save({"params": raw, "params_ema": ema}, tmp_path / "m.pth")
    loaded, _ = read_weights(tmp_path / "m.pth")
    assert torch.equal(loaded["body.0.weight"], ema["body.0.weight"])


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


def test_a_pickle_that_needs_code_is_refused_not_run(tmp_path, capfd):
    path = tmp_path / "evil.pth"
    torch.save({"params": {"body.0.weight": _Payload()}}, path)
    with pytest.raises(ModelFormatError, match="evil.pth: refused"):
        read_weights(path)
    assert "should-never-run" not in capfd.readouterr().out


@pytest.mark.parametrize("content,needle", [(b"", "not a readable"), (b"garbage" * 10, "not a readable")])
def test_damaged_files_give_one_line_errors(tmp_path, content, needle):
    for suffix in (".pth", ".safetensors"):
        path = tmp_path / f"bad{suffix}"
        path.write_bytes(content)
        with pytest.raises(ModelFormatError, match=needle) as error:
            read_weights(path)
        assert "\n" not in str(error.value)


def test_unknown_extension_and_missing_file(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(ModelFormatError, match="unknown weights format"):
        read_weights(tmp_path / "m.onnx")
    with pytest.raises(ModelFormatError, match="no such file"):
        read_weights(tmp_path / "absent.pth")


def test_safetensors_keep_metadata_and_leave_no_temporary_file(tmp_path):
    state = _state()
    path = write_safetensors(tmp_path / "sub" / "m.safetensors", state, {"arch": "compact", "scale": 2})
    loaded, metadata = read_weights(path)
    assert metadata == {"arch": "compact", "scale": 2}
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], v) for k, v in state.items())
    assert [p.name for p in path.parent.iterdir()] == ["m.safetensors"]


def test_metadata_is_read_from_the_header_alone(tmp_path, monkeypatch):
    path = write_safetensors(tmp_path / "m.safetensors", _state(), {"arch": "compact", "training": {"steps": 3}})
    monkeypatch.setattr("safetensors.safe_open.get_tensor", lambda *args: pytest.fail("a tensor was read"))
    assert read_metadata(path) == {"arch": "compact", "training": {"steps": 3}}
    torch.save(_state(), tmp_path / "m.pth")
    assert read_metadata(tmp_path / "m.pth") == {}
    (tmp_path / "bad.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(ModelFormatError, match="bad.safetensors: not a readable safetensors file"):
        read_metadata(tmp_path / "bad.safetensors")


# Hostile and damaged files: each is refused by `srkit models info` (and every other loading path) in one line,
# before any network is built.


def _models_info(path, capsys) -> str:
    """`srkit models info PATH`'s error line (it must fail with exit status 1 and nothing on stdout)."""
    assert main(["models", "info", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1, captured.err
    return captured.err


@pytest.mark.timeout(60)  # before the fix, unwrapping went round the loop forever
@pytest.mark.parametrize("loop", ["itself", "pair"])
def test_a_wrapper_that_contains_itself_is_refused(tmp_path, capsys, loop):
    outer = {"iter": torch.tensor(1)}
    inner = {"params_ema": outer} if loop == "pair" else outer
    outer["params"] = inner
    torch.save(outer, tmp_path / "loop.pth")
    assert "loop.pth: its wrappers" in _models_info(tmp_path / "loop.pth", capsys)


@pytest.mark.parametrize("key", [0, ("body", 0)], ids=["int", "tuple"])
def test_keys_that_are_not_names_are_refused(tmp_path, capsys, key):
    torch.save({**_state(), key: torch.zeros(3)}, tmp_path / "keys.pth")
    assert f"has the key {key!r}" in _models_info(tmp_path / "keys.pth", capsys)


def _quantized(tensor: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notice that quantized dtypes are deprecated
        return torch.quantize_per_tensor(tensor, 0.01, 0, torch.qint8)


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")  # torch reading a quantized tensor
@pytest.mark.parametrize(
    "kind,make",
    [("sparse", torch.Tensor.to_sparse), ("quantized", _quantized), ("complex", lambda t: t.to(torch.complex64))],
)
def test_tensors_that_are_not_dense_real_weights_are_refused(tmp_path, capsys, kind, make):
    state = _state()
    state["body.2.weight"] = make(state["body.2.weight"])
    torch.save(state, tmp_path / f"{kind}.pth")
    assert f"entry 'body.2.weight' is a {kind} tensor" in _models_info(tmp_path / f"{kind}.pth", capsys)


def test_a_zip_checkpoint_with_a_truncated_pickle_is_refused(tmp_path, capsys):
    torch.save(_state(), tmp_path / "whole.pth")
    with zipfile.ZipFile(tmp_path / "whole.pth") as whole, zipfile.ZipFile(tmp_path / "cut.pth", "w") as cut:
        for entry in whole.infolist():
            data = whole.read(entry)
            cut.writestr(entry, data[: len(data) // 2] if entry.filename.endswith("data.pkl") else data)
    assert "cut.pth: not a readable PyTorch checkpoint" in _models_info(tmp_path / "cut.pth", capsys)


@pytest.mark.parametrize(
    "metadata,needle",
    [
        ("[1, 2]", "metadata is [1, 2], not a JSON object"),
        ('"compact"', 'metadata is "compact", not a JSON object'),
        ('{"arch": 5}', "metadata has arch 5, not a string"),
        ('{"arch": "compact", "act": ["relu"]}', 'has act ["relu"], not a string'),
        ('{"arch": "compact", "output_resize": "abc"}', 'has output_resize "abc", not a number above 0'),
        ('{"arch": "compact", "output_resize": -0.5}', "has output_resize -0.5, not a number above 0"),
        ('{"arch": "compact", "output_resize": NaN}', "has output_resize NaN, not a number above 0"),
        ('{"arch": "compact", "output_resize": 1e-9}', "output resize of 1e-09 after the x2 network gives no whole"),
        ('{"arch": "compact", "output_resize": 0.3}', "output resize of 0.3 after the x2 network gives no whole"),
        ("[" * 100000 + "]" * 100000, "metadata is not valid JSON"),
    ],
    ids=[
        "list",
        "string",
        "arch-number",
        "act-list",
        "resize-text",
        "resize-negative",
        "resize-nan",
        "resize-tiny",
        "resize-no-whole-scale",
        "nested-too-deep",
    ],
)
def test_srkit_metadata_of_the_wrong_shape_or_value_is_refused(tmp_path, capsys, metadata, needle):
    path = tmp_path / "odd.safetensors"
    save_file(_state(), str(path), metadata={METADATA_KEY: metadata})
    assert needle in _models_info(path, capsys)


def _seednet_file(path, scale) -> None:
    state = seednet.SeedNet(features=4, num_conv=1, scale=2).state_dict()
    save_file(state, str(path), metadata={METADATA_KEY: json.dumps({"arch": "seednet", "scale": scale})})


@pytest.mark.parametrize("scale", [0, -2, None, 2.5, True, 1_000_000])
def test_an_impossible_seednet_scale_is_refused_before_anything_is_allocated(tmp_path, capsys, scale):
    """scale 1e6 once tried to allocate 768 TB for the first tile; `upscale` must refuse it as `models info` does."""
    path = tmp_path / "seed.safetensors"
    _seednet_file(path, scale)
    needle = f"has scale {json.dumps(scale)}, not an integer from 1 to 16"
    assert needle in _models_info(path, capsys)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.png")
    assert main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "-m", str(path)]) == 1
    assert needle in capsys.readouterr().err and not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(
    "layer,shape",
    [("body.0.weight", (8, 0, 3, 3)), ("body.4.weight", (0, 8, 3, 3))],
    ids=["no-input-channels", "no-output-channels"],
)
def test_a_layer_without_channels_is_refused(tmp_path, capsys, layer, shape):
    state = _state()
    state[layer] = torch.zeros(shape)
    if layer == "body.4.weight":
        state["body.4.bias"] = torch.zeros(0)
    torch.save(state, tmp_path / "empty.pth")
    assert f"entry {layer!r} has shape {shape}, a layer without channels" in _models_info(
        tmp_path / "empty.pth", capsys
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_non_finite_weights_are_refused_not_run_to_a_black_image(tmp_path, capsys, value, suffix):
    state = _state()
    state["body.2.weight"][0, 0, 0, 0] = value
    path = tmp_path / f"broken{suffix}"
    torch.save(state, path) if suffix == ".pth" else save_file(state, str(path))
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (8, 8, 3), np.uint8)).save(tmp_path / "in.png")
    assert main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "-m", str(path)]) == 1
    assert "entry 'body.2.weight' holds 1 NaN or infinite weights" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["upscale", "{photo}", "-o", "{out}/x.png", "-m", "{model}"],
        ["models", "info", "{model}"],
        ["models", "import", "{model}", "--name", "imported"],
        ["models", "export", "{model}", "-o", "{out}/x.onnx"],
        ["eval", "{photo}", "-m", "{model}"],
        ["textures", "-o", "{out}/pack", "-n", "1", "--size", "32", "--method", "value", "--upscale", "{model}"],
        ["textures", "-o", "{out}/pack", "-n", "1", "--size", "32", "--model", "{model}"],
        ["train", "sr", "{photo}", "-o", "{out}/run", "--steps", "1", "--init", "{model}"],
    ],
    ids=[
        "upscale",
        "models-info",
        "models-import",
        "models-export",
        "eval",
        "textures-upscale",
        "textures-model",
        "train-init",
    ],
)
def test_every_loading_path_refuses_a_damaged_model_in_one_line(tmp_path, monkeypatch, capsys, command):
    monkeypatch.setenv("SRKIT_HOME", str(tmp_path / "home"))
    state = _state()
    state["body.0.bias"][1] = float("nan")
    torch.save({"params": state}, tmp_path / "broken.pth")
    Image.fromarray(np.random.default_rng(4).integers(0, 256, (32, 32, 3), np.uint8)).save(tmp_path / "photo.png")
    (tmp_path / "out").mkdir()
    argv = [
        part.format(photo=tmp_path / "photo.png", out=tmp_path / "out", model=tmp_path / "broken.pth")
        for part in command
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]  # train sr notes the missing --val first
    assert (
        err == f"srkit: error: {tmp_path / 'broken.pth'}: entry 'body.0.bias' holds 1 NaN or infinite weights "
        "(damaged file or diverged training); use an earlier checkpoint"
    )
    assert list((tmp_path / "out").iterdir()) == [] and not (tmp_path / "home").exists()
