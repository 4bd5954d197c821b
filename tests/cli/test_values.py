"""Numeric option values: every one is checked for a finite number in its range when the command line is parsed
(exit 2, one line naming the option), so nothing bad reaches a model, a seed or a video reader."""

from __future__ import annotations

import pytest

from srkit.cli import build_parser, main
from srkit.defaults import MAX_SEED

BAD_VALUES = [
    (["upscale", "in.png", "-o", "out", "--segment-seconds", "nan"], "--segment-seconds"),
    (["upscale", "in.png", "-o", "out", "--segment-seconds", "inf"], "--segment-seconds"),
    (["upscale", "in.png", "-o", "out", "--start", "nan"], "--start"),
    (["upscale", "in.png", "-o", "out", "--start", "inf"], "--start"),
    (["upscale", "in.png", "-o", "out", "--duration", "nan"], "--duration"),
    (["upscale", "in.png", "-o", "out", "--duration", "inf"], "--duration"),
    (["upscale", "in.png", "-o", "out", "-s", "nan"], "-s/--scale"),
    (["upscale", "in.png", "-o", "out", "-s", "inf"], "-s/--scale"),
    (["upscale", "in.png", "-o", "out", "-s", "1e9"], "-s/--scale"),
    (["upscale", "in.png", "-o", "out", "--batch", str(2**64)], "--batch"),
    (["upscale", "in.png", "-o", "out", "--tile", str(2**64)], "--tile"),
    (["eval", "hr", "-s", str(10**12)], "-s/--scale"),
    (["textures", "-o", "pack", "--method", "perlin", "--seed", "-1"], "--seed"),
    (["textures", "-o", "pack", "--seed", str(2**64)], "--seed"),
    (["textures", "-o", "pack", "--size", "-4"], "--size"),
    (["train", "sr", "data", "-o", "run", "--seed", "-1"], "--seed"),
    (["train", "sr", "data", "-o", "run", "--lr", "nan"], "--lr"),
    (["train", "gan", "data", "-o", "run", "--seed", str(2**64)], "--seed"),
    (["train", "gan", "data", "-o", "run", "--stats-weight", "inf"], "--stats-weight"),
]


@pytest.mark.parametrize("argv, option", BAD_VALUES, ids=[" ".join(argv[:1] + argv[-2:]) for argv, _ in BAD_VALUES])
def test_a_non_finite_or_out_of_range_number_is_refused_when_parsed_with_exit_2(argv, option, capsys):
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"{option} must be" in err and "Traceback" not in err


@pytest.mark.parametrize("value", ["0", "0.0", "2.5", "1e3"])
def test_finite_values_in_range_still_parse(value):
    args = build_parser().parse_args(
        [
            "upscale",
            "in.png",
            "-o",
            "out",
            "--start",
            value,
            "--duration",
            "1e3",
            "--segment-seconds",
            value,
            "-s",
            "2.5",
        ]
    )
    assert args.start == float(value) and args.duration == 1e3 and args.output_scale == 2.5


def test_a_texture_seed_range_past_the_largest_seed_is_refused_before_any_model_loads(tmp_path, capsys):
    # texture i uses seed + i: the last of 3 textures from MAX_SEED - 1 would be MAX_SEED + 1
    code = main(
        [
            "textures",
            "-o",
            str(tmp_path / "pack"),
            "--method",
            "perlin",
            "--size",
            "16",
            "-n",
            "3",
            "--seed",
            str(MAX_SEED - 1),
        ]
    )
    assert code == 2 and not (tmp_path / "pack").exists()
    assert f"--seed {MAX_SEED - 1} with -n 3" in capsys.readouterr().err
