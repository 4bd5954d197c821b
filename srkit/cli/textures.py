"""`srkit textures`: write a pack of seamless textures; `srkit textures convert`: existing images as a pack."""

from __future__ import annotations

import argparse

from .values import add_max_pixels, device, positive_number, seed


def _pack_options(args: argparse.Namespace, **fields):
    """The map options shared by `srkit textures` and `srkit textures convert`."""
    from ..pipelines.textures import PackOptions

    return PackOptions(
        normal_maps=args.normal_maps,
        mipmaps=args.mipmaps,
        zip=args.zip,
        overwrite=args.overwrite,
        format=args.format,
        compression=args.compression,
        pbr=args.pbr,
        **fields,
    )


def _textures(args: argparse.Namespace) -> int:
    from ..pipelines.textures import PackError, pack_target, write_pack
    from ..texture_generator import TextureGenerator

    if args.output is None:
        raise PackError("srkit textures needs -o PACK (the folder to write)")
    options = _pack_options(args, count=args.count, size=args.size, seed=args.seed)
    options.map_format.check()
    options.check_seeds()
    pack_target(args.output, options)  # an unusable -o is refused before any model loads
    generator = TextureGenerator(
        args.family,
        model=args.model,
        method=args.method,
        exemplar=args.exemplar,
        device=args.device,
        upscale=args.upscale,
        colormap=args.colormap,
        octaves=args.octaves,
        material=args.material,
        max_pixels=args.max_pixels,
        patch=args.patch,
    )
    write_pack(generator, args.output, options)
    return 0


def _textures_convert(args: argparse.Namespace) -> int:
    from ..pipelines.textures import convert_images

    convert_images(args.inputs, args.output, _pack_options(args), kind=args.map, max_pixels=args.max_pixels)
    return 0


def _add_map_options(parser: argparse.ArgumentParser) -> None:
    """Options of how maps are written, shared by `srkit textures` and `srkit textures convert`."""
    parser.add_argument("--format", default="png", help="png or dds (png); KTX2 is not written")
    parser.add_argument(
        "--compression",
        default="auto",
        metavar="CODEC",
        help="DDS codec: bc1, bc3, bc4, bc5, bc7, none, or auto (BC7 sRGB colour, BC5 normal maps, "
        "BC4 height/roughness/ao)",
    )
    parser.add_argument(
        "--mipmaps",
        action="store_true",
        help="the full mip chain down to 1x1 (inside the .dds; <name>_mipN.png for png)",
    )
    parser.add_argument(
        "--pbr", action="store_true", help="per texture the PBR set: albedo, _normal, _height, _roughness, _ao"
    )
    parser.add_argument("--normal-maps", action="store_true", help="also write <name>_normal (luminance as height)")
    parser.add_argument("--zip", action="store_true", help="write PACK.zip instead of a folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing pack")


def add_textures(commands) -> None:
    """`srkit textures`: write a pack of seamless textures; `srkit textures convert`: existing images as a pack."""
    from ..catalog import DEFAULT_FAMILY, EXEMPLAR_METHOD, FAMILIES
    from ..synth.noise import COLORMAPS, METHODS

    textures = commands.add_parser(
        "textures", help="synthesize a pack of seamless (tileable) textures, or `convert` images into one"
    )
    textures.add_argument("-o", "--output", metavar="PACK", help="pack folder (or PACK.zip with --zip)")
    textures.add_argument("-n", "--count", type=positive_number(int, "-n", 1), default=8, help="textures (8)")
    textures.add_argument(
        "--size", type=positive_number(int, "--size", 1), default=512, help="pixels per side, a power of two (512)"
    )
    source = textures.add_mutually_exclusive_group()
    source.add_argument(
        "--family",
        help=f"built-in GAN texture family: {', '.join(f.name for f in FAMILIES)} (default: {DEFAULT_FAMILY})",
    )
    source.add_argument("--model", metavar="PATH", help="a generator.safetensors written by `srkit train gan`")
    source.add_argument(
        "--method",
        choices=(*METHODS, EXEMPLAR_METHOD),
        help=f"classic periodic noise instead of a GAN, or {EXEMPLAR_METHOD}: image quilting from --exemplar",
    )
    textures.add_argument(
        "--exemplar",
        metavar="FILE",
        help="an image of a material (a photo, a game texture, a "
        f"GIMP .pat) to quilt seamless textures from (implies --method {EXEMPLAR_METHOD})",
    )
    textures.add_argument(
        "--patch",
        type=positive_number(int, "--patch", 1),
        metavar="PX",
        help="side of the patches quilting copies from --exemplar (default: a quarter of its shorter side, 16-64; "
        "at most about half the texture): larger patches keep larger features whole",
    )
    textures.add_argument("--seed", type=seed, default=0, help="seed of the first texture; texture i uses seed+i (0)")
    textures.add_argument(
        "--material",
        type=positive_number(int, "--material", 0),
        metavar="M",
        help="for a family of several materials (stone, wood, grass): only material M "
        "(default: seed i makes material i mod M)",
    )
    textures.add_argument(
        "--upscale", metavar="MODEL", help="generate at size/scale, upscale with this SR model (x2 or x4) in wrap mode"
    )
    add_max_pixels(textures, "an --exemplar")
    _add_map_options(textures)
    textures.add_argument("--colormap", choices=list(COLORMAPS), default="gray", help="colours for --method (gray)")
    textures.add_argument(
        "--octaves", type=positive_number(int, "--octaves", 1, 12), default=4, help="noise octaves for --method (4)"
    )
    textures.add_argument("--device", type=device, help="cpu or cuda[:i] (default: cuda if available)")
    textures.set_defaults(run=_textures)
    actions = textures.add_subparsers(dest="textures_command", metavar="[convert]")
    convert = actions.add_parser("convert", help="write existing images as a pack (DDS, mips, PBR maps)")
    convert.add_argument("inputs", nargs="+", metavar="IN", help="image files, or folders of them")
    convert.add_argument("-o", "--output", required=True, metavar="OUT", help="pack folder (or OUT.zip with --zip)")
    convert.add_argument(
        "--map",
        choices=("auto", "albedo", "normal", "height", "roughness", "ao"),
        default="auto",
        help="what the inputs hold (auto: from the name, e.g. rock_normal.png; else albedo)",
    )
    add_max_pixels(convert)
    _add_map_options(convert)
    convert.set_defaults(run=_textures_convert)
