"""The ncnn graph reader: every layer type it runs computes what the ncnn runtime computes (small seeded graphs,
fp32 and fp16 weights), and every bad value, unsupported layer or ill-sized .bin is one line naming the file,
the .param line and the fix, found before anything large is allocated."""

from __future__ import annotations

import os

import ncnn
import numpy as np
import pytest
import torch
from PIL import Image

from srkit.cli import main
from srkit.models.ncnn_graph import (
    TAG_FP16,
    NcnnGraphError,
    blobs_of,
    load_graph,
    parse_param,
)
from srkit.models.ncnn_module import NcnnGraphNet

LAYERS = {  # name: (input shape (c, h, w), .param lines after the Input; the output blob is `out`)
    "conv same stride 2 relu": ((3, 13, 11), ["Convolution c 1 1 in out 0=5 1=3 3=2 4=-233 5=1 6=135 9=1"]),
    "conv same lower": ((3, 12, 9), ["Convolution c 1 1 in out 0=4 1=2 3=2 4=-234 5=1 6=48"]),
    "conv asymmetric dilated clip": (
        (3, 13, 11),
        [
            (
                "Convolution c 1 1 in out 0=4 1=3 11=1 2=2 4=1 15=2 14=0 16=1 18=5.000000e-01 6=36 9=3 "
                "-23310=2,-2.000000e-01,3.000000e-01"
            )
        ],
    ),
    "depthwise leaky": (
        (3, 10, 9),
        [("ConvolutionDepthWise c 1 1 in out 0=6 1=3 4=1 5=1 6=54 7=3 9=2 -23310=1,1.000000e-01")],
    ),
    "deconv pads mish": ((3, 7, 6), ["Deconvolution d 1 1 in out 0=4 1=3 3=2 4=1 15=0 14=1 16=2 18=1 5=1 6=108 9=5"]),
    "deconv 4x4 sigmoid": ((3, 7, 6), ["Deconvolution d 1 1 in out 0=2 1=4 3=2 4=3 5=1 6=96 9=4"]),
    "max pool full padding": ((3, 12, 11), ["Pooling p 1 1 in out 0=0 1=3 2=2 3=1"]),
    "avg pool valid": ((3, 12, 11), ["Pooling p 1 1 in out 0=1 1=2 2=2 5=1"]),
    "avg pool padded": ((3, 9, 10), ["Pooling p 1 1 in out 0=1 1=3 2=1 3=1 5=1"]),
    "interp bilinear": ((3, 7, 6), ["Interp i 1 1 in out 0=2 1=1.500000e+00 2=2.000000e+00"]),
    "interp bicubic down": ((3, 12, 10), ["Interp i 1 1 in out 0=3 1=5.000000e-01 2=5.000000e-01"]),
    "interp nearest": ((3, 5, 4), ["Interp i 1 1 in out 0=1 1=3.000000e+00 2=3.000000e+00"]),
    "interp fixed size": ((3, 5, 4), ["Interp i 1 1 in out 0=2 3=7 4=9 6=1"]),
    "pixel shuffle dcr": ((12, 4, 5), ["PixelShuffle s 1 1 in out 0=2 1=1"]),
    "crop arrays": ((4, 12, 11), ["Crop c 1 1 in out -23309=2,2,1 -23310=2,-3,-2 -23311=2,-2,-1"]),
    "crop offsets": ((4, 12, 11), ["Crop c 1 1 in out 0=1 1=2 2=1 3=5 4=6 5=2"]),
    "crop to reference": (
        (3, 12, 11),
        ["Split s 1 2 in a b", "Pooling p 1 1 b r 0=0 1=2 2=2 5=1", "Crop c 2 1 a r out 0=1 1=2"],
    ),
    "padding replicate": ((3, 5, 6), ["Padding p 1 1 in out 0=1 1=2 2=3 3=0 4=1"]),
    "padding reflect": ((3, 5, 6), ["Padding p 1 1 in out 0=2 1=1 2=1 3=2 4=2"]),
    "padding constant": ((3, 5, 6), ["Padding p 1 1 in out 0=1 1=1 2=2 3=1 5=7.500000e-01"]),
    "reduction mean": ((3, 5, 6), ["Reduction r 1 1 in out 0=3 1=0 -23303=1,-1 4=1 5=1"]),
    "reduction max over channels": ((3, 5, 6), ["Reduction r 1 1 in out 0=4 1=0 -23303=1,0 4=0 5=1"]),
    "reduction sum of all": ((3, 5, 6), ["Reduction r 1 1 in out 0=0 2=5.000000e-01"]),
    "eltwise sum sigmoid swish": (
        (3, 5, 6),
        [
            "Split s 1 3 in a b c",
            "Sigmoid g 1 1 a a2",
            "Swish w 1 1 b b2",
            "Eltwise e 3 1 a2 b2 c out 0=1 -23301=3,5.000000e-01,-1.0,2.0",
        ],
    ),
    "eltwise prod max": ((3, 5, 6), ["Split s 1 3 in a b c", "Eltwise e 2 1 a b m 0=0", "Eltwise x 2 1 m c out 0=2"]),
    "binary broadcast vector": (
        (3, 5, 6),
        ["Split s 1 2 in a b", "Pooling p 1 1 b v 0=1 4=1", "BinaryOp d 2 1 a v out 0=3"],
    ),
    "binary scalar rsub": ((3, 5, 6), ["BinaryOp d 1 1 in out 0=7 1=1 2=2.500000e-01"]),
    "squeeze excitation with scale": (
        (4, 6, 5),
        [
            "Split s 1 2 in a b",
            "Pooling p 1 1 b g 0=1 4=1",
            "InnerProduct f 1 1 g h 0=2 1=1 2=8 9=1",
            "InnerProduct k 1 1 h v 0=4 1=1 2=8 9=4",
            "Scale m 2 1 a v out 0=-233",
        ],
    ),
    "scale with bias": ((3, 5, 6), ["Scale m 1 1 in out 0=3 1=1"]),
    "concat width": ((3, 5, 6), ["Split s 1 2 in a b", "ReLU r 1 1 b c 0=1.000000e-01", "Concat k 2 1 a c out 0=2"]),
    "concat channels prelu clip": (
        (3, 5, 6),
        [
            "Split s 1 2 in a b",
            "PReLU r 1 1 b c 0=3",
            "Clip k 1 1 c d 0=-1.000000e-01 1=2.000000e-01",
            "Concat j 2 1 a d out 0=0",
        ],
    ),
    "memory data noop": (
        (3, 5, 6),
        ["MemoryData m 0 1 md 0=1 1=1 2=3", "Noop n 1 1 in x", "BinaryOp a 2 1 x md out 0=0"],
    ),
}


def write_model(folder, name: str, shape: tuple[int, int, int], lines: list[str], seed: int = 0):
    """A .param/.bin pair for `lines` after an Input, weights seeded, tagged blobs alternately fp32 and fp16."""
    blobs = len({blob for line in lines for blob in line.split()[4 : 4 + sum(map(int, line.split()[2:4]))]}) + 1
    header = f"Input input 0 1 in 0={shape[2]} 1={shape[1]} 2={shape[0]}"
    text = "\n".join(["7767517", f"{len(lines) + 1} {blobs}", header, *lines]) + "\n"
    param = folder / f"{name}.param"
    param.write_text(text)
    rng = np.random.default_rng(seed)
    data = bytearray()
    for index, layer in enumerate(parse_param(text, param).layers):
        for blob in blobs_of(layer):
            values = rng.uniform(-0.5, 0.5, blob.count).astype(np.float32)
            if blob.tagged and index % 2:
                data += TAG_FP16.to_bytes(4, "little") + values.astype("<f2").tobytes()
                data += b"\0" * (-len(data) % 4)
            elif blob.tagged:
                data += (0).to_bytes(4, "little") + values.tobytes()
            else:
                data += values.tobytes()
    param.with_suffix(".bin").write_bytes(bytes(data))
    return param


def run_ncnn(param, image: np.ndarray) -> np.ndarray:
    """The ncnn runtime (CPU, fp32 storage and arithmetic) on a CHW float image."""
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = net.opt.use_fp16_packed = False
    net.opt.use_bf16_storage = False
    net.load_param(str(param))
    net.load_model(str(param.with_suffix(".bin")))
    pixels = ncnn.Mat(image).clone()  # ncnn-owned: in-place first layers write into their input
    extractor = net.create_extractor()
    extractor.input("in", pixels)
    _, out = extractor.extract("out")
    return np.array(out).copy()


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_computes_what_ncnn_computes(tmp_path, name):
    shape, lines = LAYERS[name]
    param = write_model(tmp_path, "m", shape, lines)
    image = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
    theirs = run_ncnn(param, image)
    with torch.no_grad():
        ours = NcnnGraphNet(load_graph(param))(torch.from_numpy(image)[None])[0].numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


GOOD = [
    "Convolution c 1 1 in x 0=4 1=3 4=1 5=1 6=108",
    "PReLU p 1 1 x y 0=4",
    "Interp i 1 1 y out 0=1 1=2.000000e+00 2=2.000000e+00",
]


@pytest.mark.parametrize(
    "line,message",
    [
        (1, r"line 6, layer i \(Interp\): parameter height_scale = 1e-30 is outside 0.015625 .. 64"),
        (2, r"line 5, layer p \(PReLU\): parameter num_slope = '1e999' is not an integer"),
        (3, r"line 4, layer c \(Convolution\): parameter weight_data_size = 1000000000000 is outside"),
        (4, r"line 5, layer p \(Softmax\): srkit cannot run Softmax layers"),
        (5, r"line 6, layer i \(Interp\): parameter id 9 is not one srkit reads for Interp layers"),
        (6, r"line 4, layer c \(Convolution\): parameter stride_w = '1.5' is not an integer"),
        (7, r"line 6, layer i \(Interp\): reads blob 'q', which no earlier layer writes"),
    ],
)
def test_bad_graph_is_one_line_naming_line_and_layer(tmp_path, line, message):
    edits = {
        1: (2, "1=2.000000e+00", "1=1e-30"),
        2: (1, "0=4", "0=1e999"),
        3: (0, "6=108", "6=1000000000000"),
        4: (1, "PReLU", "Softmax"),
        5: (2, "0=1", "0=1 9=1"),
        6: (0, "4=1", "3=1.5 4=1"),
        7: (2, " y ", " q "),
    }
    index, old, new = edits[line]
    lines = list(GOOD)
    lines[index] = lines[index].replace(old, new, 1)
    param = write_model(tmp_path, "m", (3, 8, 8), GOOD)
    param.write_text(param.read_text().replace(GOOD[index], lines[index]))
    with pytest.raises(NcnnGraphError, match=rf"^{tmp_path / 'm.param'}: {message}") as caught:
        load_graph(param)
    assert "\n" not in str(caught.value)


def test_short_and_oversized_bin_are_refused_before_reading(tmp_path):
    param = write_model(tmp_path, "m", (3, 8, 8), GOOD)
    binary = param.with_suffix(".bin")
    data = binary.read_bytes()
    binary.write_bytes(data[:100])
    with pytest.raises(NcnnGraphError, match=r"m\.bin: holds 100 bytes, but the graph's weights need at least"):
        load_graph(param)
    binary.write_bytes(data + b"\0" * 4096)
    with pytest.raises(NcnnGraphError, match=r"m\.bin: holds \d+ bytes, more than the \d+ the graph's weights"):
        load_graph(param)
    binary.write_bytes(data + b"\0" * 4)  # within what fp32 storage could take: found after the last layer
    with pytest.raises(NcnnGraphError, match=r"m\.bin: 4 bytes left after the last layer's weights"):
        load_graph(param)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    param = write_model(tmp_path, "m", (3, 8, 8), GOOD)
    binary = param.with_suffix(".bin")
    binary.unlink()
    os.mkfifo(binary)  # opening it for reading would wait for a writer forever
    with pytest.raises(NcnnGraphError, match=r"m\.bin: not a regular file"):
        load_graph(param)


def test_graph_with_two_outputs_is_refused(tmp_path):
    param = write_model(tmp_path, "m", (3, 8, 8), GOOD)
    param.write_text(param.read_text() + "ReLU q 1 1 y out2\n")
    with pytest.raises(NcnnGraphError, match=r"m\.param: an SR graph has one output blob; this one leaves out, out2"):
        load_graph(param)


def test_cli_prints_one_line_and_exits_2_for_an_unsupported_layer(tmp_path, capsys):
    lines = list(GOOD)
    lines[1] = lines[1].replace("PReLU", "LRN")
    param = write_model(tmp_path, "m", (3, 8, 8), GOOD)
    param.write_text(param.read_text().replace(GOOD[1], lines[1]))
    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    assert main(["upscale", str(image), "-o", str(tmp_path / "out.png"), "-m", str(param)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "line 5, layer p (LRN): srkit cannot run LRN layers" in err[0]
    assert not (tmp_path / "out.png").exists()
