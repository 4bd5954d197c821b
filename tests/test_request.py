"""The one request: checked where it enters (Python API, command line), each default decided by one rule, the
output size by one rule that the written files follow, and the tile held by the Upscaler, not written into it."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

import srkit
from srkit.cli import build_parser, main
from srkit.cli.upscale import upscale_request
from srkit.defaults import DTYPE_NAMES, MIN_TILE, default_batch
from srkit.engine import memory, tiling
from srkit.engine.plan import DTYPE_NAMES as ENGINE_DTYPES
from srkit.errors import SrkitError
from srkit.request import RequestError, UpscaleRequest


@pytest.mark.parametrize(
    "options, needle",
    [
        ({"dtype": "int4"}, "dtype 'int4': use one of fp16, bf16, fp32, int8"),
        ({"batch": 0}, "batch must be an integer >= 1, got 0"),
        ({"batch": 2.5}, "batch must be an integer >= 1, got 2.5"),
        ({"overlap": -1}, "overlap must be an integer >= 0, got -1"),
        ({"tile": 3}, "tile must be 'auto' or an integer >= 8, got 3"),
        ({"tile": "big"}, "tile must be 'auto' or an integer >= 8, got 'big'"),
        ({"output_scale": 0}, "output_scale must be a positive number, got 0"),
        ({"output_scale": float("nan")}, "output_scale must be a positive number, got nan"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_option_from_the_request_and_the_api(model, options, needle):
    with pytest.raises(RequestError) as refused:
        UpscaleRequest("tiny", **options)
    assert str(refused.value) == needle and refused.value.exit_code == 2
    assert isinstance(refused.value, SrkitError) and isinstance(refused.value, ValueError)
    with pytest.raises(RequestError, match=needle.split(",")[0].split(":")[0]):
        srkit.Upscaler(model, device="cpu", **options)


def test_the_command_line_and_the_api_build_the_same_request(model):
    args = build_parser().parse_args(
        [
            "upscale",
            "in.png",
            "-o",
            "out",
            "-m",
            "tiny",
            "--tile",
            "64",
            "-s",
            "1.5",
            "--dtype",
            "fp32",
            "--batch",
            "2",
            "--device",
            "cpu",
        ]
    )
    request = upscale_request(args)
    assert request == UpscaleRequest("tiny", device="cpu", dtype="fp32", batch=2, tile=64, output_scale=1.5)
    up = srkit.Upscaler(model, device="cpu", dtype="fp32", tile=64, batch=2, output_scale=1.5)
    assert up.request == UpscaleRequest(
        "test-compact-x3", device="cpu", dtype="fp32", batch=2, tile=64, output_scale=1.5
    )
    auto = upscale_request(build_parser().parse_args(["upscale", "in.png", "-o", "out"]))
    assert auto.tile is None and auto.batch is None and auto.device is None and auto.dtype is None


def test_each_default_has_one_definition():
    assert set(ENGINE_DTYPES.values()) | {"int8"} == set(DTYPE_NAMES)
    assert tiling.MIN_TILE is MIN_TILE and memory.MIN_TILE is MIN_TILE
    assert (default_batch("cpu"), default_batch("cuda")) == (1, 4)


def test_a_worker_builds_the_same_upscaler_from_the_pickled_request(home):
    up = srkit.Upscaler("tiny", device="cpu", tile=16, output_scale=2)
    request = pickle.loads(pickle.dumps(up.request))
    twin = srkit.Upscaler.from_request(request)
    assert twin.request == up.request and twin.batch == up.batch == default_batch("cpu")
    image = np.random.default_rng(3).integers(0, 256, (21, 30, 3), np.uint8)
    assert np.array_equal(twin.upscale(image), up.upscale(image))
    assert request.on("cuda:1").device == "cuda:1" and request.on(None) is request


@pytest.mark.parametrize("output_scale", [None, 2, 1.7, 0.35])
def test_output_size_is_the_size_of_what_is_written(home, tmp_path, output_scale):
    """The API's output_size, its arrays and the command line's files agree, for sizes that round both ways."""
    up = srkit.Upscaler("tiny", device="cpu", output_scale=output_scale)
    for height, width in ((13, 21), (7, 5)):
        image = np.random.default_rng(height).integers(0, 256, (height, width, 3), np.uint8)
        scale = output_scale or 3
        expected = (max(1, round(height * scale)), max(1, round(width * scale)))  # oracle: the rule, by hand
        assert up.output_size(height, width) == expected == up.upscale(image).shape[:2]
        Image.fromarray(image).save(tmp_path / f"in{height}.png")
        out = tmp_path / f"out{height}-{output_scale}.png"
        scale_option = ["-s", str(output_scale)] if output_scale else []
        assert main(["upscale", str(tmp_path / f"in{height}.png"), "-o", str(out), "-m", "tiny", *scale_option]) == 0
        with Image.open(out) as written:
            assert (written.height, written.width) == expected


def test_holding_the_tile_pins_the_automatic_choice_and_leaves_the_request(model, monkeypatch):
    up = srkit.Upscaler(model, device="cpu")
    chosen = up.tile_size(37)
    up.hold_tile(37)
    monkeypatch.setattr("srkit.upscaler.auto_tile", lambda *_, **__: pytest.fail("the tile was chosen again"))
    assert up.tile_size(4000) == up.fitted_tile == chosen and up.request.tile is None
