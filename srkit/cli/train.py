"""`srkit train sr` and `srkit train gan`: train an SR network on photos, or a texture generator on exemplars."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

from .values import add_max_pixels, device, positive_number, seed


def _train_sr(args: argparse.Namespace) -> int:
    from ..environment import default_device
    from ..train.options import SRTrainConfig
    from ..train.sr import train_sr

    config = SRTrainConfig(
        arch=args.arch,
        scale=args.scale,
        features=args.features,
        num_conv=args.num_conv,
        patch=args.patch,
        batch=args.batch,
        steps=args.steps,
        lr=args.lr,
        loss=args.loss,
        degradation=args.degradation,
        seed=args.seed,
        val_every=args.val_every,
        checkpoint_every=args.checkpoint_every,
        max_side=args.max_side or None,
        init=args.init,
    )
    if not args.val:
        print("srkit: no --val photos given: training without a validation PSNR", file=sys.stderr)
    state = train_sr(
        config,
        args.data,
        args.output,
        args.val,
        args.device or default_device(),
        args.resume,
        max_pixels=args.max_pixels,
    )
    last = state.history[-1] if state.history else {}
    summary = f", val PSNR {last['val_psnr']:.3f} dB" if last else ""
    print(
        f"srkit: trained {state.step} steps in {state.seconds / 60:.1f} min{summary} -> {args.output}/model.safetensors"
    )
    return 0


def _add_train_sr(train_commands) -> None:
    """`srkit train sr`: train an SR network on folders of photos."""
    from ..train.options import DEFAULT_MAX_SIDE, DEGRADATIONS, LOSSES, SRTrainConfig

    defaults = SimpleNamespace(**{field.name: field.default for field in fields(SRTrainConfig)})  # unchecked
    sr = train_commands.add_parser("sr", help="train an SR network on photos (pairs made on the fly)")
    sr.add_argument("data", nargs="+", metavar="DATA", help="photo files or folders (searched recursively)")
    sr.add_argument("-o", "--output", required=True, help="run folder (checkpoint, model.safetensors, log.jsonl)")
    sr.add_argument(
        "--arch", default=defaults.arch, help=f"network to train; a wrong name lists the choices ({defaults.arch})"
    )
    sr.add_argument("--scale", type=int, choices=(2, 3, 4), default=defaults.scale, help=f"({defaults.scale})")
    sr.add_argument(
        "--features",
        type=positive_number(int, "--features", 4),
        default=defaults.features,
        help=f"channels per conv ({defaults.features})",
    )
    sr.add_argument(
        "--num-conv",
        type=positive_number(int, "--num-conv", 1),
        default=defaults.num_conv,
        help=f"body convs (compact, seednet) or blocks (rrdb) ({defaults.num_conv})",
    )
    sr.add_argument(
        "--patch",
        type=positive_number(int, "--patch", 8),
        default=defaults.patch,
        help=f"LR crop size in pixels ({defaults.patch})",
    )
    sr.add_argument(
        "--batch",
        type=positive_number(int, "--batch", 1),
        default=defaults.batch,
        help=f"crops per step ({defaults.batch})",
    )
    sr.add_argument(
        "--steps",
        type=positive_number(int, "--steps", 1),
        default=defaults.steps,
        help=f"total optimizer steps, also when resuming ({defaults.steps})",
    )
    sr.add_argument(
        "--lr",
        type=positive_number(float, "--lr", 1e-8),
        default=defaults.lr,
        help=f"peak learning rate of the cosine schedule ({defaults.lr})",
    )
    sr.add_argument("--loss", choices=LOSSES, default=defaults.loss, help=f"({defaults.loss})")
    sr.add_argument(
        "--degradation",
        choices=DEGRADATIONS,
        default=defaults.degradation,
        help="bicubic: clean downscale; real: plus blur, noise and JPEG of random strength",
    )
    sr.add_argument(
        "--val",
        nargs="+",
        default=[],
        metavar="PHOTO",
        help="held-out photos/folders (never trained on, even if inside DATA)",
    )
    sr.add_argument(
        "--val-every",
        type=positive_number(int, "--val-every", 1),
        default=defaults.val_every,
        help=f"validate every N steps ({defaults.val_every})",
    )
    sr.add_argument(
        "--checkpoint-every",
        type=positive_number(int, "--checkpoint-every", 1),
        default=defaults.checkpoint_every,
        help=f"checkpoint every N steps ({defaults.checkpoint_every})",
    )
    sr.add_argument(
        "--max-side",
        type=positive_number(int, "--max-side", 0),
        default=DEFAULT_MAX_SIDE,
        help=f"reduce lossy photos longer than this by area first; 0: never ({DEFAULT_MAX_SIDE})",
    )
    sr.add_argument("--init", metavar="MODEL", help="start from this model's weights (name or file; fine-tuning)")
    sr.add_argument("--seed", type=seed, default=0, help="seed for initialisation and sampling (0)")
    sr.add_argument("--device", type=device, help="cpu or cuda[:i] (default: cuda if available)")
    sr.add_argument("--resume", action="store_true", help="continue the run in -o from its checkpoint")
    add_max_pixels(sr, "photos")
    sr.set_defaults(run=_train_sr)


def _train_gan(args: argparse.Namespace) -> int:
    from ..environment import default_device
    from ..train.gan import GANTrainConfig, train_gan

    config = GANTrainConfig(
        size=args.size,
        loss=args.loss,
        label_smoothing=args.label_smoothing,
        stats_weight=args.stats_weight,
        steps=args.steps,
        batch=args.batch,
        noise_channels=args.noise_channels,
        features=args.features,
        seed=args.seed,
        scales=args.scales,
        ema_decay=args.ema_decay,
        flips=args.flips,
        waves=args.waves,
        materials=args.materials,
        lr=args.lr,
        init=args.init or "",
        sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every,
        family=args.family or "",
    )
    state = train_gan(config, args.data, args.output, args.device or default_device(), args.resume, args.max_pixels)
    last = state.history[-1] if state.history else {}
    losses = f", D loss {last['d_loss']:.3f}, G loss {last['g_loss']:.3f}" if "d_loss" in last else ""
    losses += f", realism {last['realism']:.3f} (0 = exemplar, 1 = noise)" if last.get("realism") is not None else ""
    print(
        f"srkit: trained {state.step} steps in {state.seconds / 60:.1f} min{losses} -> "
        f"{Path(args.output) / 'generator.safetensors'}",
        file=sys.stderr,
    )
    return 0


def _add_train_gan(train_commands) -> None:
    """`srkit train gan`: train a seamless texture generator on exemplar textures."""
    gan = train_commands.add_parser("gan", help="train a texture generator (DCGAN) on exemplar textures")
    gan.add_argument("data", nargs="+", metavar="DATA", help="images, GIMP .pat patterns, or folders of them")
    gan.add_argument("-o", "--output", required=True, help="run folder (checkpoint, generator, samples, log)")
    gan.add_argument("--size", type=int, choices=(64, 128), default=64, help="training crop size in pixels (64)")
    gan.add_argument("--loss", choices=("bce", "hinge"), default="hinge", help="adversarial loss (hinge)")
    gan.add_argument(
        "--label-smoothing",
        type=positive_number(float, "--label-smoothing", 0.0, 0.49),
        default=0.0,
        help="bce: aim the discriminator at 1-S for real crops; 0.1 steadies multi-exemplar families (0)",
    )
    gan.add_argument(
        "--stats-weight",
        type=positive_number(float, "--stats-weight", 0.0),
        default=1.0,
        help="weight of the texture statistics loss (colour, feature and spectrum distributions) "
        "beside the adversarial one; 0 for a plain GAN (1)",
    )
    gan.add_argument(
        "--lr",
        type=positive_number(float, "--lr", 1e-7),
        default=2e-4,
        help="Adam's learning rate for both networks; lower when fine-tuning with --init (0.0002)",
    )
    gan.add_argument(
        "--ema-decay",
        type=positive_number(float, "--ema-decay", 0.0, 0.9999),
        default=0.999,
        help="export a moving average of the generator's weights with this decay per step (ramped up from 0.1 "
        "over the first steps); 0 for the weights as trained (0.999)",
    )
    gan.add_argument(
        "--flips",
        action="store_true",
        help="flip training crops at random (only for materials with no light direction or twist: flipped wood "
        "or fabric no longer looks like its exemplar)",
    )
    gan.add_argument(
        "--waves",
        type=positive_number(int, "--waves", 0, 16),
        default=0,
        metavar="K",
        help="give the generator sine fields at the exemplars' K strongest periodicities, so a regular material "
        "(a weave, tiles) stays in step across the texture (0)",
    )
    gan.add_argument(
        "--materials",
        action="store_true",
        help="one material per exemplar: each texture imitates one exemplar, chosen by its seed or by "
        "`srkit textures --material`, rather than blending them all",
    )
    gan.add_argument(
        "--init",
        help="start the generator from a built-in family or a generator.safetensors (fine-tuning on DATA)",
    )
    gan.add_argument(
        "--steps", type=positive_number(int, "--steps", 1), default=2000, help="total steps, also when resuming (2000)"
    )
    gan.add_argument("--batch", type=positive_number(int, "--batch", 2), default=16, help="crops per step (16)")
    gan.add_argument(
        "--features",
        type=positive_number(int, "--features", 4),
        default=32,
        help="width of the networks' last stages (32)",
    )
    gan.add_argument(
        "--noise-channels",
        type=positive_number(int, "--noise-channels", 1),
        default=32,
        help="noise channels per cell (32)",
    )
    gan.add_argument(
        "--sample-every",
        type=positive_number(int, "--sample-every", 1),
        default=250,
        help="write a sample grid every N steps (250)",
    )
    gan.add_argument(
        "--checkpoint-every",
        type=positive_number(int, "--checkpoint-every", 1),
        default=250,
        help="checkpoint every N steps (250)",
    )
    gan.add_argument(
        "--scales",
        type=positive_number(int, "--scales", 1),
        default=1,
        help="patch discriminators at this many scales: the crops, then pooled 2x, 4x (1)",
    )
    gan.add_argument("--family", help="name stored with the generator (default: the run folder's name)")
    gan.add_argument("--seed", type=seed, default=0, help="seed for initialisation, noise and crops (0)")
    gan.add_argument("--device", type=device, help="cpu or cuda[:i] (default: cuda if available)")
    gan.add_argument("--resume", action="store_true", help="continue the run in -o from its checkpoint")
    add_max_pixels(gan, "exemplar images")
    gan.set_defaults(run=_train_gan)


def add_train(commands) -> None:
    """`srkit train sr | gan`."""
    train = commands.add_parser("train", help="train an SR model on photos, or a texture generator")
    train_commands = train.add_subparsers(dest="train_command", metavar="WHAT", required=True)
    _add_train_sr(train_commands)
    _add_train_gan(train_commands)
