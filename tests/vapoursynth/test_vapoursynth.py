"""srkit.vapoursynth.upscale against srkit.Upscaler on the same frames and vs-mlrt's ONNX Runtime filter on
srkit's ONNX export; formats, frame properties, out-of-order parallel requests, errors, the .vpy example."""

from __future__ import annotations

import runpy
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

vs = pytest.importorskip(
    "vapoursynth", reason="needs the VapourSynth wheels (Python >= 3.12): pip install 'srkit[vapoursynth]'"
)

import srkit  # noqa: E402
import srkit.vapoursynth as svs  # noqa: E402
from srkit.engine.tiling import OutOfMemory  # noqa: E402
from srkit.models.export import export_onnx  # noqa: E402
from srkit.models.zoo import LoadedModel, load_model  # noqa: E402

from ..engine._models import small_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
core = vs.core


@pytest.fixture(scope="module")
def gray_model():
    module, info = small_model("compact-gray-x2", seed=8)
    return LoadedModel.of(module, info, "test-gray-x2")


def _frames(shape, count, seed=0):
    """Seeded random float32 (H, W, C) frames in [0, 1]."""
    rng = np.random.default_rng(seed)
    return [rng.random(shape, dtype=np.float32) for _ in range(count)]


def _clip(frames, fmt=vs.RGBS) -> vs.VideoNode:
    """A clip of the given float frames, converted to `fmt` by the core's resizer."""
    height, width = frames[0].shape[:2]
    channels = frames[0].shape[2]
    blank = core.std.BlankClip(
        width=width, height=height, length=len(frames), format=vs.RGBS if channels == 3 else vs.GRAYS
    )

    def fill(n, f):
        out = f.copy()
        for p in range(channels):
            np.copyto(np.asarray(out[p]), frames[n][..., p])
        return out

    clip = core.std.ModifyFrame(blank, blank, fill)
    return clip if fmt == clip.format.id else core.resize.Point(clip, format=fmt)


def _planes(frame: vs.VideoFrame) -> np.ndarray:
    return np.stack([np.asarray(frame[p]) for p in range(frame.format.num_planes)], axis=2)


def test_rgbs_equals_the_upscaler_on_the_same_frames_with_tiles(model):
    frames = _frames((23, 37, 3), 3, seed=1)
    out = svs.upscale(_clip(frames), model, tile=16, device="cpu")
    assert (out.width, out.height, out.format.id, out.num_frames) == (111, 69, vs.RGBS, 3)
    reference = srkit.Upscaler(model, device="cpu", tile=16)
    for n, frame in enumerate(out.frames()):
        np.testing.assert_allclose(_planes(frame), reference.upscale(frames[n]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("fmt,top", [(vs.RGB24, 255), (vs.RGB30, 1023), (vs.RGB48, 65535), (vs.RGBH, None)])
def test_other_formats_come_back_in_their_own_format(model, fmt, top):
    frames = _frames((17, 21, 3), 2, seed=2)
    source = _clip(frames, fmt)
    out = svs.upscale(source, model, tile=12)
    assert out.format.id == fmt and (out.width, out.height) == (63, 51)
    reference = srkit.Upscaler(model, device="cpu", tile=12)
    for n, frame in enumerate(out.frames()):
        seen = _planes(frame).astype(np.float64)
        given = _planes(source.get_frame(n)).astype(np.float32)
        if top is None:  # half floats: the fp32 result rounded to fp16
            expected = reference.upscale(given).astype(np.float16).astype(np.float64)
            assert np.abs(seen - expected).max() <= 1e-3
        else:  # integer codes: the result on the same codes as floats, rounded to the nearest code
            expected = np.round(reference.upscale(given / top) * top)
            assert np.abs(seen - expected).max() <= 1


def _float_path(clip: vs.VideoNode, upscale) -> vs.VideoNode:
    """The filter as it ran before integer clips stayed integer: to 32-bit float (codes as full range), the
    model on float frames, back to the clip's format (rounded to the nearest code)."""
    target = vs.GRAYS if clip.format.color_family == vs.GRAY else vs.RGBS
    untagged = core.std.RemoveFrameProps(clip, props=["_Range"])  # the resizer follows a tag over its arguments
    floats = upscale(core.resize.Point(untagged, format=target, range_in_s="full", range_s="full"))
    return core.resize.Point(
        core.std.RemoveFrameProps(floats, props=["_Range"]), format=clip.format.id, range_in_s="full", range_s="full"
    )


@pytest.mark.parametrize(
    "fmt,codes",
    [
        (vs.RGB24, np.uint8),
        (vs.RGB30, np.uint16),
        (vs.RGB48, np.uint16),
        (vs.GRAY8, np.uint8),
        (vs.GRAY10, np.uint16),
        (vs.GRAY16, np.uint16),
    ],
    ids=["RGB24", "RGB30", "RGB48", "GRAY8", "GRAY10", "GRAY16"],
)
def test_integer_clips_run_on_integer_planes_within_one_code_of_the_float_path(
    model, gray_model, monkeypatch, fmt, codes
):
    gray = fmt in (vs.GRAY8, vs.GRAY10, vs.GRAY16)
    source = _clip(_frames((19, 23, 1 if gray else 3), 2, seed=13), fmt)
    chosen = gray_model if gray else model
    seen, real = [], srkit.Upscaler.upscale

    def recorded(self, image, *args):
        seen.append(image.dtype)
        return real(self, image, *args)

    monkeypatch.setattr(srkit.Upscaler, "upscale", recorded)
    out = svs.upscale(source, chosen, tile=12)
    got = [_planes(frame).astype(np.int64) for frame in out.frames()]
    assert out.format.id == fmt and seen == [np.dtype(codes)] * 2  # the model saw this clip's codes, no floats
    before = _float_path(source, lambda clip: svs.upscale(clip, chosen, tile=12))
    assert (out.width, out.height) == (before.width, before.height)
    for n, frame in enumerate(before.frames()):
        assert np.abs(got[n] - _planes(frame)).max() <= 1


def test_gray_clips_run_one_channel_models(gray_model):
    frames = _frames((19, 25, 1), 2, seed=3)
    reference = srkit.Upscaler(gray_model, device="cpu", tile=10)
    for fmt in (vs.GRAYS, vs.GRAY16):
        source = _clip(frames, fmt)
        out = svs.upscale(source, gray_model, tile=10)
        assert out.format.id == fmt and (out.width, out.height) == (50, 38)
        given = _planes(source.get_frame(1)).astype(np.float32) / (65535 if fmt == vs.GRAY16 else 1)
        expected = reference.upscale(given[..., 0]) * (65535 if fmt == vs.GRAY16 else 1)
        assert np.abs(_planes(out.get_frame(1))[..., 0] - expected).max() <= (1 if fmt == vs.GRAY16 else 1e-6)


def test_frame_properties_are_carried_and_the_aspect_ratio_kept(model):
    source = core.std.SetFrameProps(
        _clip(_frames((23, 37, 3), 2, seed=4)),
        _SARNum=16,
        _SARDen=15,
        _Matrix=0,
        _Transfer=16,
        _Primaries=9,
        _Range=vs.RANGE_FULL,
        _SceneChangePrev=1,
        _DurationNum=1001,
        _DurationDen=24000,
        custom="kept",
    )
    given = core.resize.Point(source, format=vs.RGB48)
    out = svs.upscale(given, model, output_scale=1.5)
    assert (out.width, out.height) == (56, 34)  # 37 x 1.5 and 23 x 1.5, rounded
    props = dict(out.get_frame(1).props)
    expected = dict(given.get_frame(1).props)
    assert expected["custom"] == "kept" and expected["_SceneChangePrev"] == 1
    sar = props.pop("_SARNum") / props.pop("_SARDen")
    assert sar * 56 / 34 == pytest.approx(16 / 15 * 37 / 23, rel=1e-12)  # the display aspect ratio is kept
    assert props.pop(svs.MODEL_PROP) == "test-compact-x3"
    del expected["_SARNum"], expected["_SARDen"]
    assert props == expected


def test_frames_asked_out_of_order_and_in_parallel_match_and_two_filters_coexist(model, gray_model):
    threads = core.num_threads
    core.num_threads = 4
    try:
        frames = _frames((21, 27, 3), 6, seed=5)
        rgb = svs.upscale(_clip(frames), model, tile=12)
        gray = svs.upscale(core.resize.Point(_clip(frames), format=vs.GRAYS, matrix_s="709"), gray_model)
        order = np.random.default_rng(0).permutation(6)
        pending = [(n, rgb.get_frame_async(int(n)), gray.get_frame_async(int(n))) for n in order]
        reference = srkit.Upscaler(model, device="cpu", tile=12)
        for n, rgb_frame, gray_frame in pending:
            np.testing.assert_allclose(_planes(rgb_frame.result()), reference.upscale(frames[n]), rtol=0, atol=1e-6)
            assert gray_frame.result().props[svs.MODEL_PROP] == "test-gray-x2"
    finally:
        core.num_threads = threads


def test_repeated_frames_are_reused_not_recomputed(model, monkeypatch):
    calls = []
    real = srkit.Upscaler.upscale
    monkeypatch.setattr(srkit.Upscaler, "upscale", lambda self, image, *a: calls.append(1) or real(self, image, *a))
    a, b = _frames((9, 11, 3), 2, seed=6)
    source = _clip([a, a, b, a, b])
    out = svs.upscale(source, model)
    results = [_planes(frame) for frame in out.frames()]
    assert len(calls) == 2
    np.testing.assert_array_equal(results[3], results[0])
    calls.clear()
    assert len([_planes(frame) for frame in svs.upscale(source, model, reuse_frames=0).frames()]) == 5
    assert len(calls) == 5


def test_on_the_cpu_one_frame_runs_at_a_time_however_many_core_threads(model, monkeypatch):
    running, peak, lock = [0], [0], threading.Lock()
    real = srkit.Upscaler.upscale

    def counted(self, image, *args):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            time.sleep(0.05)  # long enough for the core's other threads to ask for their frames
            return real(self, image, *args)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(srkit.Upscaler, "upscale", counted)
    threads = core.num_threads
    core.num_threads = 4
    try:
        frames = [frame for frame in svs.upscale(_clip(_frames((9, 11, 3), 8, seed=10)), model).frames()]
    finally:
        core.num_threads = threads
    assert len(frames) == 8 and peak[0] == 1


def test_an_error_while_a_frame_runs_is_a_vs_error_with_srkits_line(model, monkeypatch):
    def fail(self, image, *args):
        raise OutOfMemory("out of device memory even with 32-pixel tiles and batch 1; use --device cpu")

    monkeypatch.setattr(srkit.Upscaler, "upscale", fail)
    out = svs.upscale(_clip(_frames((9, 11, 3), 3, seed=11)), model)
    with pytest.raises(vs.Error) as caught:
        out.get_frame(2)
    # VapourSynth puts the traceback of a Python callback before the error it raised: srkit's line comes last
    last = str(caught.value).strip().splitlines()[-1]
    assert last.endswith(
        "srkit.upscale: frame 2: out of device memory even with 32-pixel tiles and batch 1; use --device cpu"
    )


def test_bad_clips_and_options_are_one_line_vs_errors(model, gray_model):
    rgb = _clip(_frames((8, 8, 3), 1))
    cases = [
        (lambda: svs.upscale(rgb, "no-such-model"), "no model or weights file named 'no-such-model'"),
        (lambda: svs.upscale(core.std.BlankClip(format=vs.YUV420P8), model), "takes RGB clips, this one is YUV420P8"),
        (lambda: svs.upscale(rgb, gray_model), "takes GRAY clips, this one is RGBS"),
        (lambda: svs.upscale(rgb, model, dtype="fp8"), "dtype 'fp8'"),
        (lambda: svs.upscale(rgb, model, device="tpu"), "device 'tpu'"),
        (lambda: svs.upscale(rgb, model, tile=3), "tile must be"),
        (lambda: svs.upscale(rgb, model, num_streams=0), "num_streams must be"),
        (lambda: svs.upscale(core.std.BlankClip(varsize=True, varformat=True), model), "variable format or size"),
    ]
    for call, message in cases:
        with pytest.raises(vs.Error) as caught:
            call()
        assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "size,fmt,top",
    [
        ((45, 31), vs.RGBS, 1),
        ((64, 48), vs.RGBS, 1),
        ((45, 31), vs.RGB24, 255),
        ((45, 31), vs.RGB30, 1023),
        ((45, 31), vs.RGB48, 65535),
    ],
    ids=["RGBS-45x31", "RGBS-64x48", "RGB24", "RGB30", "RGB48"],
)
def test_equals_vs_mlrt_onnx_runtime_on_srkit_export(tmp_path, size, fmt, top, psnr):
    onnx_path = export_onnx(load_model("srkit-photo-x2"), tmp_path / "photo-x2.onnx")
    width, height = size
    rng = np.random.default_rng(9)
    base = np.clip(np.cumsum(rng.normal(0, 0.05, (height, width, 3)), axis=1) + 0.5, 0, 1).astype(np.float32)
    clip = _clip([base, base[::-1].copy()], fmt)
    ours = svs.upscale(clip, "srkit-photo-x2", tile=24)
    # vs-mlrt takes float clips: the same codes as full-range floats
    floats = clip if fmt == vs.RGBS else core.resize.Point(clip, format=vs.RGBS, range_in_s="full")
    theirs = core.ort.Model(floats, network_path=str(onnx_path), provider="CPU", tilesize=[24, 24], overlap=[8, 8])
    assert ours.format.id == fmt
    assert (theirs.width, theirs.height) == (ours.width, ours.height) == (2 * width, 2 * height)
    for n in range(2):
        a = _planes(ours.get_frame(n)) / np.float32(top)
        b = np.clip(_planes(theirs.get_frame(n)), 0, 1)
        assert psnr(a, b, 1.0) >= 45


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs FFmpeg's ffprobe (apt-get install ffmpeg)")
def test_the_vpy_example_runs_through_vspipe_into_ffmpeg(tmp_path):
    vspipe, script = Path(sys.executable).with_name("vspipe"), ROOT / "examples" / "upscale.vpy"
    y4m = subprocess.run([str(vspipe), str(script), "-c", "y4m", "-"], capture_output=True, timeout=300)
    assert y4m.returncode == 0, y4m.stderr.decode()
    target = tmp_path / "example.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "-", "-c:v", "ffv1", str(target)], input=y4m.stdout, check=True, timeout=300
    )
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height,nb_read_frames,pix_fmt",
            "-of",
            "csv=p=0",
            str(target),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "192,144,yuv444p,24"
    # FFmpeg decodes exactly the frames the script gives in this process (ffv1 is lossless)
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(target), "-f", "rawvideo", "-pix_fmt", "yuv444p", "-"],
        capture_output=True,
        check=True,
    ).stdout
    decoded = np.frombuffer(raw, np.uint8).reshape(24, 3, 144, 192)
    runpy.run_path(str(script))
    clip = vs.get_output(0).clip
    for n in (0, 13):
        assert np.array_equal(_planes(clip.get_frame(n)).transpose(2, 0, 1), decoded[n])
    vs.clear_outputs()


@pytest.mark.gpu
def test_several_cuda_streams_give_the_cpu_result(model):
    threads = core.num_threads
    core.num_threads = 4
    try:
        frames = _frames((45, 61, 3), 6, seed=12)
        gpu = svs.upscale(_clip(frames), model, tile=32, device="cuda", dtype="fp32", num_streams=3, reuse_frames=0)
        cpu = svs.upscale(_clip(frames), model, tile=32, device="cpu")
        pending = [(gpu.get_frame_async(n), cpu.get_frame_async(n)) for n in (5, 0, 3, 1, 4, 2)]
        for got, expected in pending:
            np.testing.assert_allclose(_planes(got.result()), _planes(expected.result()), rtol=0, atol=2e-3)
    finally:
        core.num_threads = threads
