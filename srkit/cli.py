"""The `srkit` command line: parse and validate arguments, then hand over to a pipeline (no math here)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

from . import __version__
from .defaults import DEFAULT_MAX_PIXELS, DEFAULT_MODEL, DEFAULT_ONNX_OPSET, DEFAULT_SEGMENT_SECONDS, MAX_SEED
from .errors import SrkitError
from .io.paths import one_line


def _info(args: argparse.Namespace) -> int:
    from .environment import report

    rows = report()
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0


def _models_list(args: argparse.Namespace) -> int:
    from .models.zoo import list_models, model_dir

    rows = list_models()
    width = max(len(row["name"]) for row in rows)
    print(f"{'name':<{width}} {'scale':>5} {'arch':<14} {'size':>9}  {'from':<34} available")
    for row in rows:
        size = f"{row['size_mb']:.1f} MB" if row["size_mb"] is not None else "-"
        print(f"{row['name']:<{width}} {row['scale'] or '-':>5} {row['arch'] or '-':<14} {size:>9}  "
              f"{row['source']:<34} {row['available']}")
    print(f"user models: {model_dir()}")
    return 0


def _models_info(args: argparse.Namespace) -> int:
    from .models.zoo import load_model

    model = load_model(args.model)
    info = model.info
    rules = f"multiple of {info.multiple_of}" if info.multiple_of > 1 else "any"
    rules += f", at least {info.min_size} px" if info.min_size > 1 else ""
    rules += ", square" if info.square else ""
    rows = [("model", model.name), ("source", model.source), ("architecture", info.arch),
            ("variant", info.variant or "-"), ("scale", f"x{model.scale}" + (
                f" (network x{info.scale}, then resized)" if model.output_resize else "")),
            ("channels", f"{info.in_channels} in, {info.out_channels} out"), ("features", info.features or "-"),
            ("blocks", info.blocks or "-"), ("parameters", f"{info.parameters:,}"), ("dtypes", ", ".join(info.dtypes)),
            ("size rules", rules), ("receptive radius", f"{info.receptive_radius} px"),
            ("tile overlap", f"{info.tile_overlap} px"), ("fused", "yes" if info.fused else "no (runs eagerly)")]
    for label, value in rows:
        print(f"{label:<17} {value}")
    return 0


def _models_export(args: argparse.Namespace) -> int:
    from .models.export import export_onnx
    from .models.zoo import load_model

    target = export_onnx(load_model(args.model), args.output, args.opset, args.overwrite)
    print(f"exported {args.model} to {target} (ONNX opset {args.opset}; input NCHW float32 RGB in [0, 1], "
          "batch, height and width dynamic)")
    return 0


def _models_import(args: argparse.Namespace) -> int:
    from .models.zoo import import_model

    print(f"imported {args.path} as {args.name}: {import_model(args.path, args.name, args.force)}")
    return 0


def _video_options(args: argparse.Namespace):
    """The VideoOptions the video options describe."""
    from .io.video import EncodeSettings
    from .pipelines.video import VideoOptions

    encode = EncodeSettings(codec=args.codec, crf=args.crf, preset=args.preset, pix_fmt=args.pix_fmt,
                            options=dict(args.encoder_opt))
    return VideoOptions(encode, start=args.start, duration=args.duration, max_frames=args.frames,
                        deinterlace=args.deinterlace, allow_truncated=args.allow_truncated,
                        reuse_threshold=args.reuse_frames, segment_seconds=args.segment_seconds,
                        resume=args.resume)


def _upscale(args: argparse.Namespace) -> int:
    from .models.zoo import model_scale
    from .pipelines.batch import plan_jobs, run_plan
    from .pipelines.photos import PhotoOptions

    existing = "overwrite" if args.overwrite else "skip" if args.skip_existing else "refuse"
    options = PhotoOptions(format=args.format, quality=args.quality, suffix=args.suffix, existing=existing,
                           recursive=args.recursive, compare=args.compare, max_pixels=args.max_pixels)
    video = _video_options(args)
    scale_out = _scale_out(args)
    # an unsafe plan is refused before the model loads
    plan = plan_jobs(args.inputs, args.output, options, video, lambda: args.scale or model_scale(args.model))
    spec = _upscaler_spec(args)
    return run_plan(plan, spec.build, options, video, args.output, spec, scale_out).exit_code


def _scale_out(args: argparse.Namespace):
    """The ScaleOut that --workers, --devices, --backend and --ray-address describe (exit 2 when they conflict)."""
    from .pipelines.scaleout import scale_out_options

    return scale_out_options(args.backend, args.workers, args.devices, args.ray_address, args.device)


def _upscaler_spec(args: argparse.Namespace):
    """The UpscalerSpec the upscale options describe (each worker builds its Upscaler from it)."""
    from .pipelines.scaleout import UpscalerSpec

    tile = args.tile if args.tile == "auto" else int(args.tile)
    device = args.device or (args.devices.split(",")[0].strip() if getattr(args, "devices", None) else None)
    return UpscalerSpec(str(args.model), device=device, dtype=args.dtype, tile=tile, batch=args.batch,
                        outscale=args.scale)


def _upscaler(args: argparse.Namespace):
    """The Upscaler the upscale options describe (batch: 4 on CUDA, 1 on CPU unless given)."""
    return _upscaler_spec(args).build()


MAX_INT = 2**31 - 1  # the default upper bound of an integer option: what a C int (torch, FFmpeg, OpenCV) holds
MAX_OUTSCALE = 16.0  # -s: an output side 16x the input's is past any model srkit ships (x4) resized up
MAX_SECONDS = 1e7  # --start, --duration, --segment-seconds: about 116 days


def _positive_number(kind: type, name: str, low: float, high: float | None = None):
    """An argparse type for a numeric option: a finite `kind` in [low, high] (ints: high defaults to MAX_INT), else
    exit 2 with one line naming the option and its range. Every numeric option of every subcommand uses it."""
    limit = MAX_INT if high is None and kind is int else high

    def text(number: float) -> str:
        return f"{number:g}" if isinstance(number, float) else str(number)

    def parse(value: str):
        try:
            number = kind(value)
        except (ValueError, OverflowError):
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{name} must be {what}, got {value!r}") from None
        if not math.isfinite(number) or number < low or (limit is not None and number > limit):
            bounds = (f"between {text(low)} and {text(high)}" if high is not None else
                      f"at least {text(low)} (at most {limit})" if limit is not None else
                      f"a finite number of at least {text(low)}")
            raise argparse.ArgumentTypeError(f"{name} must be {bounds}, got {value}")
        return number

    return parse


_seed = _positive_number(int, "--seed", 0, MAX_SEED)  # every --seed: an integer from 0 to MAX_SEED


def _reuse_threshold(value: str) -> int | None:
    if value.strip().lower() == "off":
        return None
    return _positive_number(int, "--reuse-frames", 0, 255)(value)


def _device(value: str) -> str:
    import torch

    try:
        device = torch.device(value)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"--device must be cpu or cuda[:index], got {value!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"--device {value}: no CUDA device is available here (use --device cpu)")
    if device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"--device must be cpu or cuda[:index], got {value!r}")
    return value


def _key_value(value: str) -> tuple[str, str]:
    key, sep, setting = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--encoder-opt must look like key=value, got {value!r}")
    return key, setting


def _suffix(value: str) -> str:
    """--suffix: text for the end of a file name, so no path separator or NUL that could lead out of -o."""
    if any(char in value for char in "/\0" + os.sep + (os.altsep or "")):
        raise argparse.ArgumentTypeError(f"--suffix must be part of a file name, without path separators, got "
                                         f"{value!r}")
    return value


def _tile(value: str) -> str:
    if value == "auto" or (value.isdigit() and 32 <= int(value) <= MAX_INT):
        return value
    raise argparse.ArgumentTypeError(f"--tile must be 'auto' or an integer from 32 to {MAX_INT}, got {value!r}")


def _train_sr(args: argparse.Namespace) -> int:
    from .environment import default_device
    from .train.options import SRTrainConfig
    from .train.sr import train_sr

    config = SRTrainConfig(arch=args.arch, scale=args.scale, features=args.features, num_conv=args.num_conv,
                           patch=args.patch, batch=args.batch, steps=args.steps, lr=args.lr, loss=args.loss,
                           degradation=args.degradation, seed=args.seed, val_every=args.val_every,
                           checkpoint_every=args.checkpoint_every, max_side=args.max_side or None,
                           init=args.init)
    if not args.val:
        print("srkit: no --val photos given: training without a validation PSNR", file=sys.stderr)
    state = train_sr(config, args.data, args.output, args.val, args.device or default_device(), args.resume)
    last = state.history[-1] if state.history else {}
    summary = f", val PSNR {last['val_psnr']:.3f} dB" if last else ""
    print(f"srkit: trained {state.step} steps in {state.seconds / 60:.1f} min{summary} -> {args.output}/model.safetensors")
    return 0


def _add_train_sr(train_commands) -> None:
    """`srkit train sr`: train an SR network on folders of photos."""
    from .train.options import DEFAULT_MAX_SIDE, DEGRADATIONS, LOSSES, SRTrainConfig

    defaults = SimpleNamespace(**{field.name: field.default for field in fields(SRTrainConfig)})  # unchecked
    sr = train_commands.add_parser("sr", help="train an SR network on photos (pairs made on the fly)")
    sr.add_argument("data", nargs="+", metavar="DATA", help="photo files or folders (searched recursively)")
    sr.add_argument("-o", "--output", required=True, help="run folder (checkpoint, model.safetensors, log.jsonl)")
    sr.add_argument("--arch", default=defaults.arch,
                    help=f"network to train; a wrong name lists the choices ({defaults.arch})")
    sr.add_argument("--scale", type=int, choices=(2, 3, 4), default=defaults.scale, help=f"({defaults.scale})")
    sr.add_argument("--features", type=_positive_number(int, "--features", 4), default=defaults.features,
                    help=f"channels per conv ({defaults.features})")
    sr.add_argument("--num-conv", type=_positive_number(int, "--num-conv", 1), default=defaults.num_conv,
                    help=f"body convs (compact, seednet) or blocks (rrdb) ({defaults.num_conv})")
    sr.add_argument("--patch", type=_positive_number(int, "--patch", 8), default=defaults.patch,
                    help=f"LR crop size in pixels ({defaults.patch})")
    sr.add_argument("--batch", type=_positive_number(int, "--batch", 1), default=defaults.batch,
                    help=f"crops per step ({defaults.batch})")
    sr.add_argument("--steps", type=_positive_number(int, "--steps", 1), default=defaults.steps,
                    help=f"total optimizer steps, also when resuming ({defaults.steps})")
    sr.add_argument("--lr", type=_positive_number(float, "--lr", 1e-8), default=defaults.lr,
                    help=f"peak learning rate of the cosine schedule ({defaults.lr})")
    sr.add_argument("--loss", choices=LOSSES, default=defaults.loss, help=f"({defaults.loss})")
    sr.add_argument("--degradation", choices=DEGRADATIONS, default=defaults.degradation,
                    help="bicubic: clean downscale; real: plus blur, noise and JPEG of random strength")
    sr.add_argument("--val", nargs="+", default=[], metavar="PHOTO",
                    help="held-out photos/folders (never trained on, even if inside DATA)")
    sr.add_argument("--val-every", type=_positive_number(int, "--val-every", 1), default=defaults.val_every,
                    help=f"validate every N steps ({defaults.val_every})")
    sr.add_argument("--checkpoint-every", type=_positive_number(int, "--checkpoint-every", 1),
                    default=defaults.checkpoint_every, help=f"checkpoint every N steps ({defaults.checkpoint_every})")
    sr.add_argument("--max-side", type=_positive_number(int, "--max-side", 0), default=DEFAULT_MAX_SIDE,
                    help=f"reduce lossy photos longer than this by area first; 0: never ({DEFAULT_MAX_SIDE})")
    sr.add_argument("--init", metavar="MODEL", help="start from this model's weights (name or file; fine-tuning)")
    sr.add_argument("--seed", type=_seed, default=0, help="seed for initialisation and sampling (0)")
    sr.add_argument("--device", type=_device, help="cpu or cuda[:i] (default: cuda if available)")
    sr.add_argument("--resume", action="store_true", help="continue the run in -o from its checkpoint")
    sr.set_defaults(run=_train_sr)


def _eval(args: argparse.Namespace) -> int:
    from .pipelines.evaluate import evaluate, report_json

    scored = []

    def show(score) -> None:
        if not scored:  # the header only once a photo is scored, so an early error stays one line
            print(f"{'photo':<40} {'size':>11} {'PSNR':>8} {'SSIM':>7} {'bicubic':>8} {'SSIM':>7} {'gain':>7}")
        scored.append(score)
        print(f"{score.file:<40} {score.width:>5}x{score.height:<5} {score.psnr:8.3f} {score.ssim:7.4f} "
              f"{score.bicubic_psnr:8.3f} {score.bicubic_ssim:7.4f} {score.psnr - score.bicubic_psnr:+7.3f}")

    report = evaluate(args.hr, _upscaler(args), args.max_side or None, None if args.json else show)
    mean = report["mean"]
    if args.json:
        print(report_json(report))
    else:
        print(f"{'mean of ' + str(len(report['images'])):<52} {mean['psnr']:8.3f} {mean['ssim']:7.4f} "
              f"{mean['bicubic_psnr']:8.3f} {mean['bicubic_ssim']:7.4f} {mean['psnr_gain']:+7.3f}")
    return 0


def _add_eval(commands) -> None:
    """`srkit eval`: PSNR / SSIM of a model and of bicubic on high-resolution photos."""
    from .train.options import DEFAULT_MAX_SIDE

    evaluation = commands.add_parser("eval", help="PSNR/SSIM (Y channel) of a model vs bicubic on HR photos")
    evaluation.add_argument("hr", nargs="+", metavar="HR", help="high-resolution photos or folders")
    evaluation.add_argument("-m", "--model", default=DEFAULT_MODEL, help=f"model name or weights file ({DEFAULT_MODEL})")
    evaluation.add_argument("-s", "--scale", type=_positive_number(int, "-s/--scale", 2, int(MAX_OUTSCALE)),
                            help="scale if not the model's (the model's output is resized to it)")
    evaluation.add_argument("--json", action="store_true", help="print one JSON object instead of a table (strict "
                            "JSON: a score that is not finite, as the PSNR of an exact output, is null)")
    evaluation.add_argument("--max-side", type=_positive_number(int, "--max-side", 0), default=DEFAULT_MAX_SIDE,
                            help=f"reduce lossy photos longer than this by area first, as training does; "
                                 f"0: never ({DEFAULT_MAX_SIDE})")
    evaluation.add_argument("--tile", type=_tile, default="auto", help="tile size in input pixels, or auto")
    evaluation.add_argument("--device", type=_device, help="cpu or cuda[:i] (default: cuda if available)")
    evaluation.add_argument("--dtype", choices=("fp16", "bf16", "fp32"), help="precision (fp16 on CUDA, fp32 on CPU)")
    evaluation.set_defaults(run=_eval, batch=None)


def _train_gan(args: argparse.Namespace) -> int:
    from .environment import default_device
    from .train.gan import GANTrainConfig, train_gan

    config = GANTrainConfig(size=args.size, loss=args.loss, label_smoothing=args.label_smoothing,
                            stats_weight=args.stats_weight, steps=args.steps, batch=args.batch, noise_channels=args.noise_channels, features=args.features,
                            seed=args.seed, scales=args.scales,
                            sample_every=args.sample_every, checkpoint_every=args.checkpoint_every,
                            family=args.family or "")
    state = train_gan(config, args.data, args.output, args.device or default_device(), args.resume)
    last = state.history[-1] if state.history else {}
    losses = f", D loss {last['d_loss']:.3f}, G loss {last['g_loss']:.3f}" if "d_loss" in last else ""
    losses += f", realism {last['realism']:.3f} (0 = exemplar, 1 = noise)" if last.get("realism") is not None else ""
    print(f"srkit: trained {state.step} steps in {state.seconds / 60:.1f} min{losses} -> "
          f"{Path(args.output) / 'generator.safetensors'}", file=sys.stderr)
    return 0


def _add_train_gan(train_commands) -> None:
    """`srkit train gan`: train a seamless texture generator on exemplar textures."""
    gan = train_commands.add_parser("gan", help="train a texture generator (DCGAN) on exemplar textures")
    gan.add_argument("data", nargs="+", metavar="DATA", help="images, GIMP .pat patterns, or folders of them")
    gan.add_argument("-o", "--output", required=True, help="run folder (checkpoint, generator, samples, log)")
    gan.add_argument("--size", type=int, choices=(64, 128), default=64, help="training crop size in pixels (64)")
    gan.add_argument("--loss", choices=("bce", "hinge"), default="hinge", help="adversarial loss (hinge)")
    gan.add_argument("--label-smoothing", type=_positive_number(float, "--label-smoothing", 0.0, 0.49), default=0.0,
                     help="bce: aim the discriminator at 1-S for real crops; 0.1 steadies multi-exemplar families (0)")
    gan.add_argument("--stats-weight", type=_positive_number(float, "--stats-weight", 0.0), default=1.0,
                     help="weight of the texture statistics loss (colour, feature and spectrum distributions) "
                          "beside the adversarial one; 0 for a plain GAN (1)")
    gan.add_argument("--steps", type=_positive_number(int, "--steps", 1), default=2000,
                     help="total steps, also when resuming (2000)")
    gan.add_argument("--batch", type=_positive_number(int, "--batch", 2), default=16, help="crops per step (16)")
    gan.add_argument("--features", type=_positive_number(int, "--features", 4), default=32,
                     help="width of the networks' last stages (32)")
    gan.add_argument("--noise-channels", type=_positive_number(int, "--noise-channels", 1), default=32,
                     help="noise channels per cell (32)")
    gan.add_argument("--sample-every", type=_positive_number(int, "--sample-every", 1), default=250,
                     help="write a sample grid every N steps (250)")
    gan.add_argument("--checkpoint-every", type=_positive_number(int, "--checkpoint-every", 1), default=250,
                     help="checkpoint every N steps (250)")
    gan.add_argument("--scales", type=_positive_number(int, "--scales", 1), default=1,
                     help="patch discriminators at this many scales: the crops, then pooled 2x, 4x (1)")
    gan.add_argument("--family", help="name stored with the generator (default: the run folder's name)")
    gan.add_argument("--seed", type=_seed, default=0, help="seed for initialisation, noise and crops (0)")
    gan.add_argument("--device", type=_device, help="cpu or cuda[:i] (default: cuda if available)")
    gan.add_argument("--resume", action="store_true", help="continue the run in -o from its checkpoint")
    gan.set_defaults(run=_train_gan)


def _pack_options(args: argparse.Namespace, **fields):
    """The map options shared by `srkit textures` and `srkit textures convert`."""
    from .pipelines.textures import PackOptions

    return PackOptions(normal_maps=args.normal_maps, mipmaps=args.mipmaps, zip=args.zip, overwrite=args.overwrite,
                       format=args.format, compression=args.compression, pbr=args.pbr, **fields)


def _textures(args: argparse.Namespace) -> int:
    from .pipelines.textures import PackError, pack_target, write_pack
    from .texture_generator import TextureGenerator

    if args.output is None:
        raise PackError("srkit textures needs -o PACK (the folder to write)")
    options = _pack_options(args, count=args.count, size=args.size, seed=args.seed)
    options.map_format.check()
    options.check_seeds()
    pack_target(args.output, options)  # an unusable -o is refused before any model loads
    generator = TextureGenerator(args.family, model=args.model, method=args.method, exemplar=args.exemplar,
                                 device=args.device, upscale=args.upscale, colormap=args.colormap,
                                 octaves=args.octaves)
    write_pack(generator, args.output, options)
    return 0


def _textures_convert(args: argparse.Namespace) -> int:
    from .pipelines.textures import convert_images

    convert_images(args.inputs, args.output, _pack_options(args), kind=args.map, max_pixels=args.max_pixels)
    return 0


def _add_map_options(parser: argparse.ArgumentParser) -> None:
    """Options of how maps are written, shared by `srkit textures` and `srkit textures convert`."""
    parser.add_argument("--format", default="png", help="png or dds (png); KTX2 is not written")
    parser.add_argument("--compression", default="auto", metavar="CODEC",
                        help="DDS codec: bc1, bc3, bc4, bc5, bc7, none, or auto (BC7 sRGB colour, BC5 normal maps, "
                             "BC4 height/roughness/ao)")
    parser.add_argument("--mipmaps", action="store_true",
                        help="the full mip chain down to 1x1 (inside the .dds; <name>_mipN.png for png)")
    parser.add_argument("--pbr", action="store_true",
                        help="per texture the PBR set: albedo, _normal, _height, _roughness, _ao")
    parser.add_argument("--normal-maps", action="store_true",
                        help="also write <name>_normal (luminance as height)")
    parser.add_argument("--zip", action="store_true", help="write PACK.zip instead of a folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing pack")


def _add_textures(commands) -> None:
    """`srkit textures`: write a pack of seamless textures; `srkit textures convert`: existing images as a pack."""
    from .catalog import DEFAULT_FAMILY, EXEMPLAR_METHOD, FAMILIES
    from .synth.noise import COLORMAPS, METHODS

    textures = commands.add_parser("textures", help="synthesize a pack of seamless (tileable) textures, or "
                                   "`convert` images into one")
    textures.add_argument("-o", "--output", metavar="PACK", help="pack folder (or PACK.zip with --zip)")
    textures.add_argument("-n", "--count", type=_positive_number(int, "-n", 1), default=8, help="textures (8)")
    textures.add_argument("--size", type=_positive_number(int, "--size", 1), default=512,
                          help="pixels per side, a power of two (512)")
    source = textures.add_mutually_exclusive_group()
    source.add_argument("--family", help=f"built-in GAN texture family: {', '.join(f.name for f in FAMILIES)} "
                        f"(default: {DEFAULT_FAMILY})")
    source.add_argument("--model", metavar="PATH", help="a generator.safetensors written by `srkit train gan`")
    source.add_argument("--method", choices=(*METHODS, EXEMPLAR_METHOD),
                        help=f"classic periodic noise instead of a GAN, or {EXEMPLAR_METHOD}: image quilting from "
                        "--exemplar")
    textures.add_argument("--exemplar", metavar="FILE", help="an image of a material (a photo, a game texture, a "
                          f"GIMP .pat) to quilt seamless textures from (implies --method {EXEMPLAR_METHOD})")
    textures.add_argument("--seed", type=_seed, default=0,
                          help="seed of the first texture; texture i uses seed+i (0)")
    textures.add_argument("--upscale", metavar="MODEL", help="generate at size/scale, upscale with this SR model "
                          "(x2 or x4) in wrap mode")
    _add_map_options(textures)
    textures.add_argument("--colormap", choices=list(COLORMAPS), default="gray", help="colours for --method (gray)")
    textures.add_argument("--octaves", type=_positive_number(int, "--octaves", 1, 12), default=4,
                          help="noise octaves for --method (4)")
    textures.add_argument("--device", type=_device, help="cpu or cuda[:i] (default: cuda if available)")
    textures.set_defaults(run=_textures)
    actions = textures.add_subparsers(dest="textures_command", metavar="[convert]")
    convert = actions.add_parser("convert", help="write existing images as a pack (DDS, mips, PBR maps)")
    convert.add_argument("inputs", nargs="+", metavar="IN", help="image files, or folders of them")
    convert.add_argument("-o", "--output", required=True, metavar="OUT", help="pack folder (or OUT.zip with --zip)")
    convert.add_argument("--map", choices=("auto", "albedo", "normal", "height", "roughness", "ao"), default="auto",
                         help="what the inputs hold (auto: from the name, e.g. rock_normal.png; else albedo)")
    convert.add_argument("--max-pixels", type=_positive_number(int, "--max-pixels", 1), default=DEFAULT_MAX_PIXELS,
                         help=f"refuse images with more pixels (decompression-bomb guard, {DEFAULT_MAX_PIXELS})")
    _add_map_options(convert)
    convert.set_defaults(run=_textures_convert)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every srkit subcommand."""
    parser = argparse.ArgumentParser(prog="srkit", description="Upscale photos and videos, synthesize textures.")
    parser.add_argument("--version", action="version", version=f"srkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    info = commands.add_parser("info", help="print versions, devices and the active kernel backend")
    info.set_defaults(run=_info)

    upscale = commands.add_parser("upscale", help="upscale photos, animated images and videos: files, directories "
                                  "(recursively) or globs")
    upscale.add_argument("inputs", nargs="+", metavar="INPUT",
                         help="image or video files, directories or globs; a name that exists is that file or "
                              "directory even if it holds *, ? or [ ]; only a name that exists as nothing is "
                              "expanded as a pattern")
    upscale.add_argument("-o", "--output", required=True, help="output file (one input file) or directory")
    upscale.add_argument("-m", "--model", default=DEFAULT_MODEL, help=f"model name or weights file ({DEFAULT_MODEL})")
    upscale.add_argument("-s", "--scale", type=_positive_number(float, "-s/--scale", 0.05, MAX_OUTSCALE),
                         help="output scale if not the model's (area / Lanczos resize after the model)")
    upscale.add_argument("--tile", type=_tile, default="auto", help="tile size in input pixels, or auto")
    upscale.add_argument("--device", type=_device, help="cpu or cuda[:i] (default: cuda if available)")
    upscale.add_argument("--dtype", choices=("fp16", "bf16", "fp32"), help="precision (fp16 on CUDA, fp32 on CPU)")
    upscale.add_argument("--batch", type=_positive_number(int, "--batch", 1),
                         help="tiles or video frames per model call (4 on CUDA, 1 on CPU)")
    upscale.add_argument("--format", choices=("keep", "png", "jpg", "webp", "tiff", "bmp"), default="keep",
                         help="output format (keep: the input's)")
    upscale.add_argument("--quality", type=_positive_number(int, "--quality", 1, 100), default=95,
                         help="JPEG / WebP quality (95)")
    upscale.add_argument("--suffix", type=_suffix, default="",
                         help="added to each output file name before the extension (no path separators)")
    existing = upscale.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that exist")
    existing.add_argument("--skip-existing", action="store_true", help="leave outputs that exist (resume a run)")
    upscale.add_argument("--recursive", action=argparse.BooleanOptionalAction, default=True,
                         help="descend into sub-directories of directory inputs (default: yes)")
    upscale.add_argument("--compare", action="store_true", help="also write a before/after crop beside each output")
    upscale.add_argument("--max-pixels", type=_positive_number(int, "--max-pixels", 1), default=DEFAULT_MAX_PIXELS,
                         help=f"refuse images with more pixels (decompression-bomb guard, {DEFAULT_MAX_PIXELS})")
    video = upscale.add_argument_group("video (for inputs that are videos)")
    video.add_argument("--codec", help="video encoder (libx264, libx265, libsvtav1, ffv1, ...; default: the "
                       "container's own, libvpx-vp9 for .webm, else libx264)")
    video.add_argument("--crf", type=_positive_number(int, "--crf", 0, 63), default=18, help="quality (18)")
    video.add_argument("--preset", help="encoder preset (e.g. slow, medium, veryfast)")
    video.add_argument("--pix-fmt", help="output pixel format (default: the input's bit depth and chroma where "
                       "the codec takes them, e.g. yuv420p or yuv420p10le)")
    video.add_argument("--deinterlace", choices=("auto", "on", "off"), default="auto",
                       help="deinterlace with FFmpeg's bwdif (auto: input flagged interlaced)")
    video.add_argument("--allow-truncated", action="store_true",
                       help="keep the output of a video that ends before its container says (else an error)")
    video.add_argument("--encoder-opt", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                       help="extra encoder option (repeatable)")
    video.add_argument("--start", type=_positive_number(float, "--start", 0.0, MAX_SECONDS), default=0.0,
                       help="seconds to skip at the start")
    video.add_argument("--duration", type=_positive_number(float, "--duration", 0.001, MAX_SECONDS),
                       help="seconds to process")
    video.add_argument("--frames", type=_positive_number(int, "--frames", 1), help="process only this many frames")
    video.add_argument("--reuse-frames", type=_reuse_threshold, default=0, metavar="THRESHOLD",
                       help="reuse the last output for a frame whose every pixel is within THRESHOLD 8-bit codes of "
                            "the frame that made it (held frames; 0: exactly equal, the default; off: never)")
    video.add_argument("--segment-seconds", type=_positive_number(float, "--segment-seconds", 0.0, MAX_SECONDS),
                       default=DEFAULT_SEGMENT_SECONDS, metavar="SECONDS",
                       help="cut longer videos at keyframes into segments of about this length, kept in "
                            f".<output name>.srkit/ until joined, so a crash loses one segment; 0: off "
                            f"({DEFAULT_SEGMENT_SECONDS:g})")
    video.add_argument("--resume", action="store_true",
                       help="continue an interrupted segmented run from its finished segments (same input and "
                            "options)")
    scale = upscale.add_argument_group("many workers (units of work: photo files, video segments)")
    scale.add_argument("--workers", type=_positive_number(int, "--workers", 1),
                       help="worker processes (local) or Ray actors, each with its own model; CPU workers split the "
                            "cores (default: 1; with --devices one per device; Ray on CUDA: one per GPU)")
    scale.add_argument("--devices", metavar="cuda:0,cuda:1,...", help="one local worker per CUDA device")
    scale.add_argument("--backend", choices=("local", "ray"), default="local",
                       help="local processes, or Ray actors (pip install 'srkit[ray]') (local)")
    scale.add_argument("--ray-address", metavar="ADDR",
                       help="the Ray cluster to join (default: start a local Ray instance)")
    upscale.set_defaults(run=_upscale)

    models = commands.add_parser("models", help="list, describe, import and export models")
    models_commands = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    models_commands.add_parser("list", help="models usable here").set_defaults(run=_models_list)
    importer = models_commands.add_parser("import", help="convert .pth/.safetensors/ncnn .param to srkit format")
    importer.add_argument("path", help="weights file (.pth, .pt, .safetensors, or ncnn .param beside its .bin)")
    importer.add_argument("--name", required=True, help="name to use with -m")
    importer.add_argument("--force", action="store_true", help="replace a user model of that name")
    importer.set_defaults(run=_models_import)
    describe = models_commands.add_parser("info", help="describe a model: architecture, scale, sizes, fused or not")
    describe.add_argument("model", metavar="NAME|FILE", help="model name or weights file")
    describe.set_defaults(run=_models_info)
    exporter = models_commands.add_parser("export", help="write a model as ONNX (dynamic batch, height, width)")
    exporter.add_argument("model", metavar="NAME|FILE", help="model name or weights file")
    exporter.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    exporter.add_argument("--opset", type=_positive_number(int, "--opset", 13, 21), default=DEFAULT_ONNX_OPSET,
                          help=f"ONNX opset ({DEFAULT_ONNX_OPSET})")
    exporter.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    exporter.set_defaults(run=_models_export)

    train = commands.add_parser("train", help="train an SR model on photos, or a texture generator")
    train_commands = train.add_subparsers(dest="train_command", metavar="WHAT", required=True)
    _add_train_sr(train_commands)
    _add_train_gan(train_commands)
    _add_eval(commands)
    _add_textures(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run srkit with `argv` (default: sys.argv[1:]); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SrkitError as error:
        print(f"srkit: error: {one_line(str(error))}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("srkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
