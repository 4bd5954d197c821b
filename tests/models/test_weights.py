"""Weights files: restricted unpickling, checkpoint unwrapping, safetensors metadata, atomic writes."""

from __future__ import annotations

import os

import pytest
import torch

from srkit.errors import ModelFormatError
from srkit.models import compact
from srkit.models.weights import read_weights, write_safetensors


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
