"""Autotune cache: timed once per key, reused from the file by a new process, robust to a corrupt file."""

from __future__ import annotations

import json

import pytest
import torch

from srkit.kernels import _autotune, _launch, triton_conv
from srkit.kernels._launch import GPU_CONV_CONFIGS, ConvConfig

from ._cases import make_case, torch_conv_act
from ._compare import assert_close_dtype

CANDIDATES = (
    ConvConfig(64, 32, 32, num_warps=4, num_stages=2),
    ConvConfig(128, 64, 64, num_warps=4, num_stages=3),
    ConvConfig(256, 64, 64, num_warps=8, num_stages=3),
)
KEY = _autotune.make_key(
    "conv2d_act", "NVIDIA H100 80GB HBM3", "torch.float16", kernel=3, c_in=64, c_out=64, pixels=524288
)


class FakeTimer:
    """Times by table lookup (ms per candidate) and counts what it was asked to time."""

    def __init__(self, ms: dict[ConvConfig, float]) -> None:
        self.ms = ms
        self.timed: list[ConvConfig] = []

    def trial(self, config: ConvConfig) -> None:
        self.timed.append(config)

    def __call__(self, fn) -> float:
        fn()
        return self.ms[self.timed[-1]]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh, empty autotune cache folder for the test, and no state left from earlier tests."""
    monkeypatch.setenv(_autotune.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(_autotune.AUTOTUNE_ENV, raising=False)
    _autotune.forget()
    yield tmp_path / _autotune.CACHE_FILE
    _autotune.forget()


def _choose(timer: FakeTimer, key=KEY) -> ConvConfig:
    return _autotune.choose(key, lambda: CANDIDATES, timer.trial, timer)


def test_times_each_candidate_once_then_reuses_the_winner(cache):
    timer = FakeTimer({CANDIDATES[0]: 3.0, CANDIDATES[1]: 1.0, CANDIDATES[2]: 2.0})
    assert _choose(timer) == CANDIDATES[1]
    assert timer.timed == list(CANDIDATES)
    assert _choose(timer) == CANDIDATES[1]
    assert len(timer.timed) == 3, "second call in the same process re-timed"
    _autotune.forget()  # as a new process: only the file remains
    assert _choose(timer) == CANDIDATES[1]
    assert len(timer.timed) == 3, "a new process re-timed a key stored in the cache file"
    entry = json.loads(cache.read_text())["entries"]["|".join(KEY)]
    assert entry["config"] == {"block_m": 128, "block_n": 64, "block_k": 64, "num_warps": 4, "num_stages": 3}
    assert entry["ms"] == 1.0 and len(entry["timed_ms"]) == 3


def test_key_holds_device_name_and_dtype(cache):
    timer = FakeTimer({CANDIDATES[0]: 1.0, CANDIDATES[1]: 2.0, CANDIDATES[2]: 3.0})
    _choose(timer)
    other_gpu = _autotune.make_key(
        "conv2d_act", "NVIDIA H200", "torch.float16", kernel=3, c_in=64, c_out=64, pixels=524288
    )
    other_dtype = _autotune.make_key(
        "conv2d_act", "NVIDIA H100 80GB HBM3", "torch.bfloat16", kernel=3, c_in=64, c_out=64, pixels=524288
    )
    _choose(timer, other_gpu)
    _choose(timer, other_dtype)
    assert len(timer.timed) == 9
    stored = json.loads(cache.read_text())["entries"]
    assert {"|".join(KEY), "|".join(other_gpu), "|".join(other_dtype)} == set(stored)
    assert "NVIDIA H200" in "|".join(other_gpu) and "bfloat16" in "|".join(other_dtype)


@pytest.mark.parametrize("content", ["{not json", '{"format": 0, "entries": {}}', "[1, 2]"])
def test_corrupt_cache_is_reported_retimed_and_rewritten(cache, content):
    cache.write_text(content)
    timer = FakeTimer({CANDIDATES[0]: 1.0, CANDIDATES[1]: 2.0, CANDIDATES[2]: 3.0})
    with pytest.warns(RuntimeWarning, match="autotune cache"):
        assert _choose(timer) == CANDIDATES[0]
    assert len(timer.timed) == 3
    payload = json.loads(cache.read_text())
    assert payload["format"] == _autotune.FORMAT and "|".join(KEY) in payload["entries"]
    assert [p.name for p in cache.parent.iterdir()] == [cache.name], "temporary file left behind"


def test_stored_winner_that_is_no_longer_a_candidate_is_retimed(cache):
    stale = {"format": _autotune.FORMAT, "entries": {"|".join(KEY): {"config": {"block_m": 512}, "ms": 0.1}}}
    cache.write_text(json.dumps(stale))
    timer = FakeTimer({CANDIDATES[0]: 2.0, CANDIDATES[1]: 2.0, CANDIDATES[2]: 1.0})
    assert _choose(timer) == CANDIDATES[2] and len(timer.timed) == 3


def test_candidate_that_cannot_run_here_is_skipped(cache):
    class TooBig(Exception):
        pass

    def trial(config: ConvConfig) -> None:
        if config.block_m == 256:
            raise TooBig("shared memory")

    timed = []
    winner = _autotune.choose(KEY, lambda: CANDIDATES, trial, lambda fn: (fn(), timed.append(1), 5.0)[2], (TooBig,))
    assert winner == CANDIDATES[0] and len(timed) == 2
    with pytest.raises(RuntimeError, match="no candidate could run"):
        _autotune.choose(KEY[:-1], lambda: CANDIDATES[2:], trial, lambda fn: fn(), (TooBig,))


def test_unwritable_cache_folder_warns_and_keeps_the_winner(cache, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(_autotune.CACHE_ENV, str(blocker / "sub"))  # a folder cannot be made inside a file
    timer = FakeTimer({CANDIDATES[0]: 2.0, CANDIDATES[1]: 1.0, CANDIDATES[2]: 3.0})
    with pytest.warns(RuntimeWarning) as warned:
        assert _choose(timer) == CANDIDATES[1]
    assert any("cannot write the autotune cache" in str(w.message) for w in warned)
    assert _choose(timer) == CANDIDATES[1] and len(timer.timed) == 3


def test_interpreter_and_autotune_off_use_the_static_choice_untimed(cache, monkeypatch):
    def refuse(*_):
        raise AssertionError("timed although it must not be")

    args = ("conv2d_act", "cpu", "torch.float32", 3, 64, 48, 1000, refuse, refuse)
    assert _launch.INTERPRETING  # tests run Triton in its interpreter (conftest)
    assert _launch.tuned_conv_config(*args) == _launch.conv_config(64, 48)
    assert _launch.conv_config(64, 48).block_m == _launch.INTERPRETER_BLOCK_PIXELS
    monkeypatch.setattr(_launch, "INTERPRETING", False)
    monkeypatch.setenv(_autotune.AUTOTUNE_ENV, "0")
    monkeypatch.setitem(_launch.CONV_CONFIG_TABLE, (3, 64, 48), CANDIDATES[0])
    assert _launch.tuned_conv_config(*args) == CANDIDATES[0]
    assert _launch.conv_config(64, 48, kernel=1) != CANDIDATES[0]  # the table is keyed by kernel size too
    assert not cache.exists()


def test_compiled_path_times_static_choice_and_gpu_configs_into_scratch(cache, monkeypatch):
    """With the interpreter standing in for the GPU: every candidate is tried, the output is right, x untouched."""
    monkeypatch.setattr(_launch, "INTERPRETING", False)  # tune as on a GPU; launches still run interpreted
    x, weight, bias, slope = make_case(16, 16, 3, "prelu", h=5, w=6, batch=1)
    residual = torch.randn(1, 16, 5, 6).contiguous(memory_format=torch.channels_last)
    out = residual.clone()
    x_before = x.clone()
    timed = []

    def timer(fn) -> float:
        fn()
        timed.append(1)
        return float(len(timed))  # the first candidate (the static choice) wins

    monkeypatch.setattr(triton_conv, "_time_on_gpu", timer)
    triton_conv.conv2d_act(x, weight, bias, "prelu", slope, residual=out, res_scale=0.5, out=out)  # in place
    assert len(timed) == len(dict.fromkeys((_launch.conv_config(16, 16), *GPU_CONV_CONFIGS)))
    assert_close_dtype(out, torch_conv_act(x, weight, bias, "prelu", slope, residual, 0.5), torch.float32)
    assert torch.equal(x, x_before)
    assert len(json.loads(cache.read_text())["entries"]) == 1


@pytest.mark.gpu
def test_on_cuda_tunes_once_and_caches(cache, monkeypatch):
    calls = []
    timer = triton_conv._time_on_gpu
    monkeypatch.setattr(triton_conv, "_time_on_gpu", lambda fn: (calls.append(1), timer(fn))[1])
    x, weight, bias, slope = make_case(64, 64, 3, "prelu", h=37, w=53, dtype=torch.float16, device="cuda")
    first = triton_conv.conv2d_act(x, weight, bias, "prelu", slope)
    tried = len(calls)
    assert tried >= len(GPU_CONV_CONFIGS)
    second = triton_conv.conv2d_act(x, weight, bias, "prelu", slope)
    _autotune.forget()
    third = triton_conv.conv2d_act(x, weight, bias, "prelu", slope)
    assert len(calls) == tried, "re-timed a shape that was already tuned"
    expected = torch_conv_act(x, weight, bias, "prelu", slope)
    for got in (first, second, third):
        assert_close_dtype(got, expected, torch.float16)
    (key,) = json.loads(cache.read_text())["entries"]
    assert torch.cuda.get_device_name() in key and "float16" in key
