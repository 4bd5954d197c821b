"""Engine-ready packs: `--format dds --pbr --mipmaps` read back level by level in Pillow, PBR sets, `convert`,
and bad options refused in one line with nothing written."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from srkit.cli import main
from srkit.synth.maps import normal_map, pbr_maps
from srkit.synth.measures import pooled_seam_score
from srkit.synth.mipmaps import decode_normals, mip_chain
from srkit.texture_generator import TextureGenerator

from ._dds import psnr, read_dds

SPACES = {"albedo": "srgb", "normal": "normal", "height": "linear", "roughness": "linear", "ao": "linear"}
CODECS = {"albedo": "bc7", "normal": "bc5", "height": "bc4", "roughness": "bc4", "ao": "bc4"}
# level-0 PSNR floors against the maps srkit derives from the generated stone textures (seeds 3, 4), measured:
# albedo BC7 32.9 / 34.3 dB, height BC4 35.9 / 38.9, roughness 47.7 / 47.7, ao 33.6 / 34.4. These GAN textures
# carry pixel-level noise, harder for 4x4 blocks than real textures (test_dds: GIMP patterns, BC7 41.2 dB pooled).
ALBEDO_FLOOR = 32.0  # dB, BC7 at level 0
# dB that etcpak's fast BC4 may read below the plain block coder (_block_coded) on the same map: measured 2.2-2.8
# (height, ao) and 4.1-5.5 (roughness, smooth) on stone's materials. Another texture or a flip reads 20 dB or more
# below, the smooth roughness map shifted one pixel 13 dB below.
BC4_MARGIN = 6.5


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _block_coded(channel: np.ndarray) -> np.ndarray:
    """One channel as the simplest BC4 coder makes it: per 4x4 block, endpoints at the block's min and max, each
    texel at the nearest of the eight levels between them, decoded to 8 bits (levels under 4 pixels a side are one
    block). BC5 is two such channels."""
    height, width = channel.shape
    blocks = channel.astype(np.float64).reshape(height // min(4, height), min(4, height), width // min(4, width), -1)
    low, high = blocks.min((1, 3), keepdims=True), blocks.max((1, 3), keepdims=True)
    levels = low[..., None] + (high - low)[..., None] * np.arange(8) / 7.0
    nearest = np.abs(blocks[..., None] - levels).argmin(-1)
    return np.round(np.take_along_axis(levels, nearest[..., None], -1)[..., 0]).reshape(height, width)


def _angles(decoded: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Degrees between BC5-decoded normals (z rebuilt from x, y) and reference unit vectors."""
    xy = decoded[..., :2].astype(np.float64) / 255.0 * 2.0 - 1.0
    z = np.sqrt(np.maximum(1.0 - (xy**2).sum(-1, keepdims=True), 0.0))
    vectors = np.concatenate([xy, z], axis=-1)
    vectors /= np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip((vectors * reference).sum(-1), -1.0, 1.0)))


def test_dds_pbr_mipmap_pack_loads_in_pillow_level_by_level(tmp_path):
    pack = tmp_path / "pack"
    assert (
        main(
            [
                "textures",
                "-o",
                str(pack),
                "-n",
                "4",
                "--size",
                "128",
                "--family",
                "stone",
                "--seed",
                "3",
                "--format",
                "dds",
                "--pbr",
                "--mipmaps",
            ]
        )
        == 0
    )
    manifest = json.loads((pack / "manifest.json").read_text())
    assert manifest["format"] == "dds" and len(manifest["textures"]) == 4
    generator = TextureGenerator("stone")
    seams: dict[tuple[str, int], list[np.ndarray]] = {}
    for entry in manifest["textures"]:
        reference = pbr_maps(generator.generate(128, entry["seed"]))
        assert sorted(entry["maps"]) == sorted(SPACES)
        for name, described in entry["maps"].items():
            path = pack / described["file"]
            dds = read_dds(path)
            assert described == dict(
                described,
                format="dds",
                compression=CODECS[name],
                width=128,
                height=128,
                mip_levels=8,
                sha256=_sha(path),
                colour_space="srgb" if name == "albedo" else "linear",
            )
            assert (dds.codec, dds.srgb, dds.width, dds.height) == (CODECS[name], name == "albedo", 128, 128)
            assert [level.shape[0] for level in dds.levels] == [128, 64, 32, 16, 8, 4, 2, 1]
            chain = mip_chain(reference[name], SPACES[name])
            if name == "normal":
                for level, expected in zip(dds.levels, chain):  # unit vectors at every level, within BC5's error
                    # as a plain block coder (written below) makes it: etcpak's fast BC5 reads 0.3-0.7 degrees more
                    # on average and up to 4.5 more at the 99th percentile (stone's steep relief: 3.3 and 11.7)
                    truth = decode_normals(expected)
                    coded = np.stack([_block_coded(expected[..., 0]), _block_coded(expected[..., 1])], -1)
                    angles, plain = _angles(level, truth), _angles(coded, truth)
                    assert angles.mean() < plain.mean() + 1.0, (angles.mean(), plain.mean())
                    assert np.percentile(angles, 99) < np.percentile(plain, 99) + 6.0, angles.max()
            else:
                decoded = dds.levels[0] if dds.levels[0].ndim == 2 else dds.levels[0][..., :3]
                if name == "albedo":
                    assert psnr(decoded, chain[0]) >= ALBEDO_FLOOR, psnr(decoded, chain[0])
                else:  # BC4: as close as the plain block coder, within BC4_MARGIN
                    plain = psnr(_block_coded(chain[0]), chain[0])
                    assert psnr(decoded, chain[0]) >= plain - BC4_MARGIN, (name, psnr(decoded, chain[0]), plain)
            for index, level in enumerate(dds.levels[:5]):
                seams.setdefault(index, []).append(level if level.ndim == 2 else level[..., :3].mean(-1))
    # Each level tiles: its wrap seam is no rougher than the interior lines of the generator's 16-pixel grid (halved
    # per level), pooled over the 20 maps. Measured 1.19 (level 0, the source), 1.21, 1.15, 1.08, 1.13; the same
    # filter clamping at the border instead of wrapping gives 1.47, 1.54, 1.52, 1.44 on levels 1-4.
    for index, levels in seams.items():
        score = pooled_seam_score(levels, max(1, generator.grid >> index))
        assert score <= 1.3, (index, score)


def test_png_pbr_maps_share_one_size_tile_and_match_the_manifest(tmp_path):
    pack = tmp_path / "pack"
    assert (
        main(
            [
                "textures",
                "-o",
                str(pack),
                "-n",
                "3",
                "--size",
                "64",
                "--method",
                "perlin",
                "--colormap",
                "stone",
                "--pbr",
            ]
        )
        == 0
    )
    manifest = json.loads((pack / "manifest.json").read_text())
    listed = {"manifest.json", "preview.png"}
    for entry in manifest["textures"]:
        for name, described in entry["maps"].items():
            path = pack / described["file"]
            listed.add(path.name)
            with Image.open(path) as image:
                assert image.size == (64, 64) and image.mode == ("RGB" if name in ("albedo", "normal") else "L")
            assert (described["sha256"], described["width"], described["height"]) == (_sha(path), 64, 64)
    assert {p.name for p in pack.iterdir()} == listed and len(listed) == 2 + 3 * 5
    maps = [np.asarray(Image.open(pack / e["maps"][n]["file"])) for e in manifest["textures"] for n in SPACES]
    assert pooled_seam_score(maps) <= 1.2


def test_convert_writes_engine_ready_files(tmp_path):
    """The upscaled-texture workflow's last step: a user's images to DDS with mips and PBR maps; a normal map
    given as such (told by its name) is stored as BC5."""
    brick = np.repeat(skimage.data.brick()[..., None], 3, axis=2)  # 512x512 CC0 texture
    Image.fromarray(brick).save(tmp_path / "brick.png")
    Image.fromarray(normal_map(brick[:256, :256])).save(tmp_path / "rock_normal.png")
    out = tmp_path / "out"
    assert (
        main(
            [
                "textures",
                "convert",
                str(tmp_path / "brick.png"),
                str(tmp_path / "rock_normal.png"),
                "-o",
                str(out),
                "--format",
                "dds",
                "--mipmaps",
                "--pbr",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"brick{m}.dds" for m in ("", "_normal", "_height", "_roughness", "_ao")]
        + ["rock_normal.dds", "manifest.json", "preview.png"]
    )
    colour, normal = read_dds(out / "brick.dds"), read_dds(out / "rock_normal.dds")
    assert (colour.codec, colour.srgb, len(colour.levels)) == ("bc7", True, 10)
    assert (normal.codec, normal.srgb, len(normal.levels), normal.width) == ("bc5", False, 9, 256)
    assert psnr(colour.levels[0][..., :3], brick) >= 44.0  # measured 53.8 dB
    assert read_dds(out / "brick_height.dds").codec == "bc4"
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(e["source"], e["kind"]) for e in manifest["textures"]] == [
        ("brick.png", "albedo"),
        ("rock_normal.png", "normal"),
    ]
    for entry in manifest["textures"]:
        assert all(m["sha256"] == _sha(out / m["file"]) for m in entry["maps"].values())


def test_convert_refuses_two_inputs_writing_one_file(tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / folder / "wall.png")
    assert main(["textures", "convert", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "out")]) == 2
    assert "would both write wall" in capsys.readouterr().err and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--format", "ktx2"], "--format ktx2: choose png or dds"),
        (["--format", "dds", "--compression", "bc5"], "bc5 holds only normal maps, not albedo maps"),
        (["--format", "dds", "--compression", "bc4", "--pbr"], "bc4 holds only one-channel maps"),
        (["--compression", "bc7"], "--compression bc7 needs --format dds"),
        (["--format", "dds", "--compression", "bc9"], "--compression bc9: choose one of auto, bc1"),
    ],
)
def test_bad_pack_options_fail_in_one_line_and_write_nothing(tmp_path, capsys, argv, needle):
    code = main(["textures", "-o", str(tmp_path / "pack"), "--method", "value", "--size", "16", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "shape,argv,needle",
    [
        ((3, 3, 3), ["--format", "dds", "--compression", "bc7"], "in.png: 3x3 cannot be stored as bc7"),
        ((3, 3, 3), ["--format", "dds"], "in.png: 3x3 cannot be stored as bc7"),
        ((20, 12, 3), ["--mipmaps"], "in.png: 12x20 has no mip chain"),
        ((8, 8, 3), ["--format", "ktx2"], "--format ktx2: choose png or dds"),
        ((8, 8, 4), ["--format", "dds", "--compression", "bc1"], "in.png: has transparent pixels, which bc1 cannot"),
        ((8, 8, 4), ["--map", "height"], "in.png: a height map with transparent pixels"),
    ],
)
def test_bad_convert_inputs_fail_in_one_line_and_write_nothing(tmp_path, capsys, shape, argv, needle):
    pixels = np.random.default_rng(0).integers(0, 255, shape, np.uint8)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    code = main(["textures", "convert", str(tmp_path / "in.png"), "-o", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_convert_never_replaces_its_own_inputs(tmp_path, capsys):
    folder = tmp_path / "textures"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "wall.png")
    before = (folder / "wall.png").read_bytes()
    assert main(["textures", "convert", str(folder), "-o", str(folder), "--overwrite"]) == 2
    assert "holds the input" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["wall.png"] and (folder / "wall.png").read_bytes() == before


def test_convert_keeps_alpha_of_colour_textures(tmp_path):
    """A decal with a soft alpha edge: BC7 (alpha mode straight) and PNG keep it; its mips filter it as it is."""
    rgb = np.repeat(skimage.data.grass()[:64, :64, None], 3, axis=2)
    alpha = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (64, 1))
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "decal.png")
    for fmt in ("dds", "png"):
        out = tmp_path / fmt
        assert (
            main(["textures", "convert", str(tmp_path / "decal.png"), "-o", str(out), "--format", fmt, "--mipmaps"])
            == 0
        )
        entry = json.loads((out / "manifest.json").read_text())["textures"][0]["maps"]["albedo"]
        assert entry["alpha"] is True
    dds = read_dds(tmp_path / "dds" / "decal.dds")
    assert (dds.codec, dds.srgb, dds.alpha_mode, len(dds.levels)) == ("bc7", True, 1, 7)
    assert psnr(dds.levels[0][..., 3], alpha) >= 35.0  # measured 36.4 dB (a steep ramp: 16 steps per block)
    # level 1 away from the wrap (where the ramp jumps from 255 to 0): on a ramp the filter gives the pair's mean
    level1 = alpha[::2, 2:62:2] / 2.0 + alpha[::2, 3:62:2] / 2.0
    assert psnr(dds.levels[1][:, 1:-1, 3], level1) >= 33.0  # measured 34.2 dB
    assert (
        main(
            [
                "textures",
                "convert",
                str(tmp_path / "decal.png"),
                "-o",
                str(tmp_path / "bc3"),
                "--format",
                "dds",
                "--compression",
                "bc3",
            ]
        )
        == 0
    )
    bc3 = read_dds(tmp_path / "bc3" / "decal.dds")
    assert (bc3.codec, bc3.alpha_mode) == ("bc3", 1) and psnr(bc3.levels[0][..., 3], alpha) >= 40.0
    with Image.open(tmp_path / "png" / "decal.png") as image:
        assert image.mode == "RGBA" and np.array_equal(np.asarray(image)[..., 3], alpha)


def test_convert_rounds_sixteen_bit_colour_to_the_nearest_code(tmp_path):
    """A 48-bit PNG becomes the 8-bit map of round(code / 257), written losslessly as PNG."""
    import cv2

    rgb16 = np.random.default_rng(7).integers(0, 65536, size=(16, 32, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    assert main(["textures", "convert", str(tmp_path / "deep.png"), "-o", str(out), "--format", "png"]) == 0
    with Image.open(out / "deep.png") as image:
        assert image.mode == "RGB"
        assert np.array_equal(np.asarray(image), np.floor(rgb16 / 257.0 + 0.5).astype(np.uint8))


def test_convert_names_a_fifo_or_device_for_what_it_is_without_reading_it(tmp_path, capsys):
    os.mkfifo(tmp_path / "pipe.png")  # opening it to read would wait for a writer forever
    for special, kind in ((tmp_path / "pipe.png", "a FIFO"), ("/dev/zero", "a character device")):
        assert main(["textures", "convert", str(special), "-o", str(tmp_path / "out")]) == 2
        assert f"is {kind}" in capsys.readouterr().err and not (tmp_path / "out").exists()


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height RGB pixels, with almost no data (a decompression bomb's shape)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")
    )
    return path


def test_convert_refuses_a_decompression_bomb_in_one_line_as_upscale_does(tmp_path, capsys):
    bomb = _png_header_only(tmp_path / "bomb.png", 20000, 20000)  # 400 MP: over Pillow's own hard limit
    limit = Image.MAX_IMAGE_PIXELS
    assert main(["textures", "convert", str(bomb), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "bomb.png: 20000x20000 is over the decompression-bomb limit" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() and Image.MAX_IMAGE_PIXELS == limit  # Pillow's limit is given back
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "small.png")
    assert (
        main(["textures", "convert", str(tmp_path / "small.png"), "-o", str(tmp_path / "out"), "--max-pixels", "100"])
        == 1
    )
    assert "16x16 is over the decompression-bomb limit of 100 pixels" in capsys.readouterr().err
