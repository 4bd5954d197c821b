"""`srkit train sr`: train an SR network on photos (Adam, cosine schedule, EMA, gradient clipping, bf16 autocast on
CUDA), with a validation PSNR on held-out photos, resumable checkpoints and an srkit model file in the run folder.

Run folder: `checkpoint.safetensors` (everything needed to resume), `model.safetensors` (the EMA weights with their
metadata, loadable by `srkit upscale -m`), `log.jsonl` (one line per validation).
"""

from __future__ import annotations

import copy
import math
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from ..defaults import DEFAULT_MAX_PIXELS
from ..errors import SrkitError
from ..models.weights import write_safetensors
from .averaging import update_average
from .checkpoint import (
    RunState,
    checkpoint_metadata,
    checkpoint_path,
    create_run_dir,
    load_checkpoint,
    save_checkpoint,
    start_from,
    write_log,
)
from .data import PairSampler, find_photos, load_photo, validation_pairs
from .degrade import quantize
from .metrics import crop_border, psnr, psnr_from_mse, rgb_to_y, ssim
from .options import RESUMABLE_CHANGES, SRTrainConfig

MODEL = "model.safetensors"
# l1+ssim mixes as Zhao et al. (2017) mix L1 and MS-SSIM: 0.16 L1 + 0.84 (1 - SSIM).
L1_SSIM_ALPHA = 0.16


def build_network(config: SRTrainConfig) -> nn.Module:
    """A freshly initialised network of the configured architecture."""
    return config.architecture().build(
        features=config.features, depth=config.num_conv, scale=config.scale, growth=config.growth
    )


def _load_initial_weights(model: nn.Module, init: str) -> None:
    """Start from a trained model's weights; it must be the same network (arch, scale, sizes)."""
    from ..models.zoo import load_model

    start_from(model, load_model(init).module.state_dict(), init, "--arch, --scale, --features and --num-conv")


def model_metadata(config: SRTrainConfig) -> dict:
    """srkit model-file metadata for the network (what the zoo needs to rebuild it)."""
    return {"arch": config.arch, "scale": config.scale, **config.architecture().hints(build_network(config))}


def _loss_function(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def structural(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return 1.0 - ssim(hr, sr, data_range=1.0).mean()

    if name == "l1":
        return F.l1_loss
    if name == "mse":
        return F.mse_loss
    if name == "ssim":
        return structural
    return lambda sr, hr: L1_SSIM_ALPHA * F.l1_loss(sr, hr) + (1 - L1_SSIM_ALPHA) * structural(sr, hr)


def cosine_lr(config: SRTrainConfig, step: int) -> float:
    """Learning rate at `step` (0-based): cosine from lr down to lr_min over the run."""
    progress = min(1.0, step / max(1, config.steps))
    return config.lr_min + 0.5 * (config.lr - config.lr_min) * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def validate(
    model: nn.Module, pairs: list[tuple[torch.Tensor, torch.Tensor]], scale: int, device: torch.device
) -> dict[str, float]:
    """Mean PSNR / SSIM on Y (border `scale` cropped) of the model's 8-bit outputs on the validation pairs."""
    psnrs, ssims = [], []
    for lr, hr in pairs:
        sr = quantize(model(lr.to(device)).float()).cpu()
        y_sr, y_hr = (crop_border(rgb_to_y(255.0 * t.double()), scale) for t in (sr, hr))
        psnrs.append(float(psnr(y_hr[0], y_sr[0])))
        ssims.append(float(ssim(y_hr[0], y_sr[0])))
    return {"val_psnr": sum(psnrs) / len(psnrs), "val_ssim": sum(ssims) / len(ssims)}


def _check_resumable(saved: dict, config: SRTrainConfig, path: Path) -> None:
    mismatched = [
        f"{key} ({saved[key]} in the checkpoint, {value} now)"
        for key, value in asdict(config).items()
        if key not in RESUMABLE_CHANGES and saved.get(key) != value
    ]
    if mismatched:
        raise SrkitError(f"{path}: --resume with different options: {', '.join(mismatched)}")


def split_photos(data: list[str], val: list[str]) -> tuple[list[Path], list[Path]]:
    """Training and held-out photo paths; held-out photos are removed from the training set wherever they lie."""
    held_out = find_photos(val) if val else []
    excluded = {p.resolve() for p in held_out}
    training = [p for p in find_photos(data) if p.resolve() not in excluded]
    if not training:
        raise SrkitError("every training photo is also a validation photo; give --val other photos")
    return training, held_out


def train_sr(
    config: SRTrainConfig,
    data: list[str],
    run_dir: str | Path,
    val: list[str] | None = None,
    device: str | torch.device = "cpu",
    resume: bool = False,
    progress: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> RunState:
    """Train (or resume training) to `config.steps`; returns the run state. Writes checkpoint, model, log. Photos
    over `max_pixels` are refused from their header."""
    run_dir = Path(run_dir)
    checkpoint = checkpoint_path(run_dir, resume)
    device = torch.device(device)
    training, held_out = split_photos(data, val or [])
    torch.manual_seed(config.seed)
    # channels_last: NHWC is the engine's layout, and oneDNN / cuDNN train 20-30 % faster in it.
    model = build_network(config)
    if config.init:
        _load_initial_weights(model, config.init)
    model = model.to(device, memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]  (documented; torch's overloads omit it)
    ema = copy.deepcopy(model).eval()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.99))
    generator = torch.Generator().manual_seed(config.seed)
    state = RunState()
    if resume:
        _check_resumable(checkpoint_metadata(checkpoint)["config"], config, checkpoint)
        saved = load_checkpoint(checkpoint, {"model": model, "ema": ema}, {"adam": optimizer}, {"data": generator})
        state = RunState(saved["step"], saved["seconds"], saved["history"])
    sampler = PairSampler(
        [load_photo(p, config.max_side, max_pixels) for p in training],
        config.scale,
        config.patch,
        config.degradation,
        generator,
    )
    pairs = validation_pairs(
        [load_photo(p, config.max_side, max_pixels) for p in held_out],
        config.scale,
        config.val_crop,
        config.architecture().train_multiple(config.scale),
    )
    loss_function = _loss_function(config.loss)
    provenance = {
        "command": shlex.join(["srkit", *sys.argv[1:]]) if sys.argv[1:] else None,
        "train_photos": [p.name for p in training],
        "held_out": [p.name for p in held_out],
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }

    def save() -> None:
        meta = {"config": asdict(config), "step": state.step, "seconds": state.seconds, "history": state.history}
        save_checkpoint(checkpoint, {"model": model, "ema": ema}, {"adam": optimizer}, {"data": generator}, meta)
        training_meta = {
            **provenance,
            **asdict(config),
            "steps_done": state.step,
            "seconds": round(state.seconds, 1),
            "last_validation": state.history[-1:] or None,
        }
        write_safetensors(
            run_dir / MODEL, ema.state_dict(), {**model_metadata(config), "training": training_meta}, overwrite=True
        )
        write_log(run_dir, state.history)

    create_run_dir(run_dir)  # only now: bad photos, options or --init leave no folder behind
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    model.train()
    with tqdm(
        total=config.steps, initial=state.step, disable=not progress, unit="step", dynamic_ncols=True
    ) as bar:  # closed before an error line is printed
        while state.step < config.steps:
            started = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(config, state.step)
            lr_batch, hr_batch = (
                t.to(device, memory_format=torch.channels_last, non_blocking=True) for t in sampler.batch(config.batch)
            )
            with autocast:
                sr = model(lr_batch)
            sr = sr.float()
            loss = loss_function(sr, hr_batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            update_average(ema, model, config.ema_decay, state.step)
            state.step += 1
            state.seconds += time.perf_counter() - started
            batch_psnr = psnr_from_mse(float(F.mse_loss(sr.detach().clamp(0, 1), hr_batch)))
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{batch_psnr:.2f}")
            last = state.step == config.steps
            if pairs and (state.step % config.val_every == 0 or last):
                record = {
                    "step": state.step,
                    "seconds": round(state.seconds, 1),
                    "loss": loss.item(),
                    **validate(ema, pairs, config.scale, device),
                }
                state.history.append(record)
                bar.write(f"step {state.step}: val PSNR {record['val_psnr']:.3f} dB, SSIM {record['val_ssim']:.4f}")
            if state.step % config.checkpoint_every == 0 or last:
                save()
    return state
