"""Train the texture generator (`srkit train gan`): a DCGAN on random crops of exemplar textures.

Losses: the hinge (max-margin) loss against a spectrally normalised patch discriminator, or DCGAN's binary
cross-entropy (the generator's non-saturating form; optionally with one-sided label smoothing, real crops aimed
at 1 - s); with `scales` > 1, one more patch discriminator per coarser scale (the crops average-pooled 2x, 4x),
their losses summed; plus, weighted by `stats_weight`, the texture statistics loss of srkit.train.texture_loss
between each generated batch and the real one (colour, multi-scale feature and spectrum distributions), which the
adversarial loss alone matches only slowly. Adam(2e-4, beta1 0.5) for both networks. What is exported is a
moving average of the generator's weights (`ema_decay`), and `init` starts the generator from a trained one (a
built-in family or a generator file: fine-tuning on new exemplars); with `waves`, the generator also reads wave
fields at the exemplars' strongest periodicities (srkit.models.dcgan.wave_fields). The generator pads
circularly during training too, so what it learns is what runs seamlessly at inference. A run folder holds
`checkpoint.safetensors` (everything needed to resume exactly), `generator.safetensors` (the weights
`srkit textures --model` reads), `log.jsonl` (mean losses every LOG_EVERY steps, and at every checkpoint the
exported generator's realism: srkit/synth/realism.py, a statistic no loss here optimises, 0 = the exemplars'
own crops, 1 = Perlin noise with their colours) and `samples/step-N.png` (fixed noise, each sample tiled 2x2).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from ..defaults import DEFAULT_MAX_PIXELS
from ..errors import SrkitError
from ..io.atomic import atomic_path
from ..io.sheets import contact_sheet
from ..models import dcgan
from ..models.generators import available_families, load_family, read_generator
from ..models.weights import write_safetensors
from ..synth import noise
from ..synth.realism import RealismScale
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
from .exemplar_sources import records
from .exemplars import CropSampler, Exemplar, dominant_waves, exemplar_files, load_exemplar
from .texture_loss import TextureLoss

LOSSES = ("bce", "hinge")
SIZES = (64, 128)
NOISE_CELLS = 4  # side of the noise grid during training: crops are NOISE_CELLS * 2^k pixels
LOG_EVERY = 10
SAMPLE_COUNT = 4  # samples in each grid, at twice the training size
CALIBRATION_BATCHES = 32  # noise batches whose BatchNorm statistics the exported generator uses
GENERATOR = "generator.safetensors"
MAX_SCALES = 3  # 64-pixel crops pooled 4x are 16 pixels: the coarsest a 2-stage patch discriminator reads
REALISM_SAMPLES = 32  # textures (and exemplar crops) behind each checkpoint's realism figure
REALISM_PERLIN = (8, 6)  # frequency and octaves of the realism scale's Perlin noise (1 on the scale)
# Options that shape the networks or the losses: a resumed run must use the values it was started with.
FIXED_ON_RESUME = (
    "size",
    "loss",
    "label_smoothing",
    "stats_weight",
    "batch",
    "noise_channels",
    "features",
    "lr",
    "beta1",
    "seed",
    "scales",
    "ema_decay",
    "flips",
    "waves",
    "materials",
)
# What options newer than a checkpoint were before they existed (the run it holds went without them).
BEFORE_OPTION = {"ema_decay": 0.0, "flips": True, "waves": 0, "materials": False}
WAVE_CROPS = 256  # exemplar crops whose mean spectrum gives a generator's waves


@dataclass
class GANTrainConfig:
    """Options of one training run (the CLI's flags)."""

    size: int = 64
    loss: str = "hinge"
    label_smoothing: float = 0.0
    """BCE only: the discriminator's target for real crops is 1 - label_smoothing."""
    stats_weight: float = 1.0
    """Weight of the texture statistics loss in the generator's loss (0: adversarial only)."""
    steps: int = 2000
    batch: int = 16
    noise_channels: int = 32
    features: int = 32
    lr: float = 2e-4
    beta1: float = 0.5
    seed: int = 0
    sample_every: int = 250
    checkpoint_every: int = 250
    family: str = ""
    """Name recorded in the generator's metadata (default: the run folder's name)."""
    scales: int = 1
    """Patch discriminators, one per scale: the crops as they are, then average-pooled 2x, 4x, ..."""
    ema_decay: float = 0.999
    """The exported generator is an exponential moving average of the trained one's weights with this decay per
    step (as in PGGAN, Karras et al. 2018), which smooths the adversarial game's oscillation, ramped up over the
    first steps (`averaging.average_decay`); 0: the weights as they are."""
    flips: bool = False
    """Random horizontal and vertical flips of the training crops (for materials with no light direction or
    twist; off, the generator learns the exemplars as they are oriented)."""
    waves: int = 0
    """Wave fields the generator reads (srkit.models.dcgan.wave_fields) at the exemplars' strongest spectral peaks
    (`exemplars.dominant_waves`): a global phase for regular materials such as a weave; 0: noise cells only."""
    materials: bool = False
    """One material per exemplar: the generator reads a one-hot code of the exemplar its texture imitates and the
    discriminators judge each crop beside the code of the exemplar it came from (a conditional GAN, Mirza and
    Osindero 2014), so a family of several exemplars makes one of them per texture; off, one generator learns
    them all at once and its textures are patchworks of them."""
    init: str = ""
    """A built-in family or generator file whose weights the generator starts from (fine-tuning); "" for DCGAN's
    random initialisation. The discriminators always start afresh."""

    @property
    def num_up(self) -> int:
        """Transposed stages of the generator: crops of `size` pixels from a 4x4 noise grid."""
        return int(math.log2(self.size // NOISE_CELLS))

    def check(self) -> None:
        """Refuse options the networks cannot use."""
        if self.size not in SIZES:
            raise SrkitError(f"--size {self.size}: use one of {', '.join(map(str, SIZES))}")
        if self.loss not in LOSSES:
            raise SrkitError(f"--loss {self.loss}: use one of {', '.join(LOSSES)}")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise SrkitError(f"--label-smoothing {self.label_smoothing}: use a value from 0 to below 0.5")
        if self.stats_weight < 0:
            raise SrkitError(f"--stats-weight {self.stats_weight}: use a value of 0 or more")
        if self.batch < 2:
            raise SrkitError(f"--batch {self.batch}: BatchNorm needs at least 2 crops per step")
        if not 1 <= self.scales <= MAX_SCALES:
            raise SrkitError(f"--scales {self.scales}: use 1 to {MAX_SCALES} discriminator scales")
        if not self.lr > 0:
            raise SrkitError(f"--lr {self.lr}: use a learning rate above 0")
        if not 0.0 <= self.ema_decay < 1.0:
            raise SrkitError(f"--ema-decay {self.ema_decay}: use a value from 0 (no average) to below 1")
        if self.waves < 0:
            raise SrkitError(f"--waves {self.waves}: use 0 (none) or more")


def discriminator_loss(kind: str, real: torch.Tensor, fake: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """The discriminator's loss on patch logits of real and generated crops (BCE aims real ones at 1 - smoothing)."""
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    return F.binary_cross_entropy_with_logits(
        real, torch.full_like(real, 1.0 - smoothing)
    ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))


def generator_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss on the discriminator's logits of its crops (non-saturating BCE, or hinge)."""
    if kind == "hinge":
        return -fake.mean()
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


def sum_of(losses: Iterable[torch.Tensor]) -> torch.Tensor:
    """The sum of the per-scale losses (one scale: that loss itself, bit for bit)."""
    total, *rest = losses
    for loss in rest:
        total = total + loss
    return total


class GANTrainer:
    """Both networks, their optimizers and seeded random streams; `step()` runs one D update and one G update."""

    def __init__(self, config: GANTrainConfig, exemplars: list[Exemplar], device: torch.device | str) -> None:
        config.check()
        self.config = config
        self.device = torch.device(device)
        self.rngs = {
            name: torch.Generator().manual_seed(config.seed * 4 + i)
            for i, name in enumerate(("init", "noise", "crops", "projections"))
        }
        self.sampler = CropSampler(exemplars, config.size, self.rngs["crops"], flips=config.flips)
        widths = dcgan.generator_widths(config.features, config.num_up)
        if config.materials and len(exemplars) < 2:
            raise SrkitError("--materials: one material per exemplar needs two exemplars or more")
        self.material_count = len(exemplars) if config.materials else 0
        generator = dcgan.Generator(
            noise_channels=config.noise_channels + self.material_count,
            widths=widths,
            waves=self._waves(exemplars) if config.waves else None,
            materials=self.material_count,
        )
        dcgan.initialise(generator, self.rngs["init"])  # drawn also under --init: the other streams stay the same
        if config.init:
            _load_initial_generator(generator, config.init)
        self.generator = generator.to(self.device)
        # the weights' moving average, which is what gets exported (none with ema_decay 0)
        self.average = copy.deepcopy(self.generator).requires_grad_(False) if config.ema_decay else None
        with torch.random.fork_rng(devices=[]):  # spectral norm draws its power-iteration vectors globally
            torch.manual_seed(config.seed)
            judged = 3 + self.material_count  # the image, and the material code beside it
            discriminator = dcgan.Discriminator(
                in_channels=judged, features=config.features, num_down=config.num_up - 1
            )
            coarse = [
                dcgan.Discriminator(
                    in_channels=judged, features=config.features, num_down=max(2, config.num_up - 1 - scale)
                )
                for scale in range(1, config.scales)
            ]
        self.discriminator = dcgan.initialise(discriminator, self.rngs["init"]).to(self.device)
        # the coarser scales' discriminators (none by default, so a one-scale run is what it always was)
        self.coarse = torch.nn.ModuleList(dcgan.initialise(d, self.rngs["init"]) for d in coarse).to(self.device)
        self.texture_loss = TextureLoss(self.device, self.rngs["projections"])
        self.realism_scale = self._realism_scale()
        betas = (config.beta1, 0.999)
        discriminators = [*self.discriminator.parameters(), *self.coarse.parameters()]
        self.optimizers: dict[str, torch.optim.Optimizer] = {
            "generator": torch.optim.Adam(self.generator.parameters(), config.lr, betas=betas),
            "discriminator": torch.optim.Adam(discriminators, config.lr, betas=betas),
        }

    @property
    def modules(self) -> dict[str, torch.nn.Module]:
        modules: dict[str, torch.nn.Module] = {"generator": self.generator, "discriminator": self.discriminator}
        modules |= {"average_generator": self.average} if self.average is not None else {}
        return modules | ({"coarse_discriminators": self.coarse} if len(self.coarse) else {})

    def judged(self, images: torch.Tensor, materials: torch.Tensor) -> list[torch.Tensor]:
        """Patch logits of every scale's discriminator: the images, then pooled 2x per coarser scale, each beside
        the one-hot code of its material (N,) as constant channels (none without materials)."""

        def coded(x: torch.Tensor) -> torch.Tensor:
            if not self.material_count:
                return x
            codes = self.generator.material_codes(materials).to(x)[:, :, None, None]
            return torch.cat([x, codes.expand(-1, -1, *x.shape[2:])], 1)

        logits = [self.discriminator(coded(images))]
        for index, discriminator in enumerate(self.coarse):
            logits.append(discriminator(coded(F.avg_pool2d(images, 2 ** (index + 1)))))
        return logits

    def _waves(self, exemplars: list[Exemplar]) -> torch.Tensor:
        """The generator's waves: the strongest periodicities of crops drawn from a stream of their own (the
        training streams stay as they are)."""
        crops = CropSampler(exemplars, self.config.size, torch.Generator().manual_seed(self.config.seed + 6))
        return dominant_waves(crops.batch(WAVE_CROPS), self.config.waves)

    def noise(
        self, count: int, cells: int, generator: torch.Generator, materials: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(count, input channels, cells, cells) input cells (noise, and wave fields and material codes if the
        generator reads them: `materials` (count,) or drawn), drawn on the CPU (same numbers on every device)."""
        inputs = self.generator.input_channels
        return dcgan.draw_cells(self.generator, inputs, count, cells, generator, materials).to(self.device)

    def step(self, taken: int) -> tuple[float, float, float]:
        """One discriminator and one generator update after `taken` steps of the run (the moving average's ramp-up);
        returns their losses and the texture statistics term."""
        kind = self.config.loss
        crops, materials = self.sampler.labelled(self.config.batch)
        real = (crops * 2.0 - 1.0).to(self.device)
        # with materials, each fake texture is of the material of the real crop beside it: batches alike
        fake = self.generator(
            self.noise(self.config.batch, NOISE_CELLS, self.rngs["noise"], materials if self.material_count else None)
        )
        d_loss = sum_of(
            discriminator_loss(kind, r, f, self.config.label_smoothing)
            for r, f in zip(self.judged(real, materials), self.judged(fake.detach(), materials))
        )
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers["discriminator"].step()
        g_loss = sum_of(generator_loss(kind, logits) for logits in self.judged(fake, materials))
        stats = self.texture_loss(fake, real) if self.config.stats_weight else torch.zeros(())
        self.optimizers["generator"].zero_grad(set_to_none=True)
        (g_loss + self.config.stats_weight * stats).backward()
        self.optimizers["generator"].step()
        if self.average is not None:
            update_average(self.average, self.generator, self.config.ema_decay, taken)
        return d_loss.item(), g_loss.item(), stats.item()

    def _realism_scale(self) -> RealismScale:
        """The realism scale of the exemplars at the training size: two fixed sets of crops (drawn from streams
        of their own, so training is unaffected) and Perlin noise with their colours."""
        crops = [
            CropSampler(
                self.sampler.exemplars, self.config.size, torch.Generator().manual_seed(self.config.seed + offset)
            )
            for offset in (3, 4)
        ]
        reference, again = ([_codes(crop) for crop in sampler.batch(REALISM_SAMPLES)] for sampler in crops)
        palette = noise.palette_from_image(np.concatenate([c.reshape(-1, 3) for c in reference]) / 255.0)
        perlin = [
            noise.noise_texture(
                "perlin", self.config.size, seed, palette, REALISM_PERLIN[0], REALISM_PERLIN[1], np.uint8
            )
            for seed in range(REALISM_SAMPLES)
        ]
        return RealismScale.of(reference, again, perlin)

    def realism(self, generator: dcgan.Generator) -> float:
        """Realism (srkit/synth/realism.py, which no loss here optimises) of REALISM_SAMPLES textures of
        `generator` at the training size, from fixed noise."""
        cells = self.noise(REALISM_SAMPLES, NOISE_CELLS, torch.Generator().manual_seed(self.config.seed + 5))
        with torch.no_grad():
            images = generator(cells).clamp(-1, 1).add(1).div(2).cpu()
        return self.realism_scale([_codes(image) for image in images])

    def inference_generator(self) -> dcgan.Generator:
        """The generator as it is exported (the weights' moving average, if kept): eval mode, BatchNorm statistics
        and phase means measured on fixed noise batches."""
        fixed = torch.Generator().manual_seed(self.config.seed + 2)  # not a training stream: resuming is unaffected
        batches = [self.noise(self.config.batch, NOISE_CELLS, fixed) for _ in range(CALIBRATION_BATCHES)]
        return dcgan.recalibrate(self.average if self.average is not None else self.generator, batches)

    def sample_sheet(self, generator: dcgan.Generator) -> np.ndarray:
        """Textures of `generator` from fixed noise at twice the training size, each tiled 2x2, as one image."""
        noise = self.noise(SAMPLE_COUNT, 2 * NOISE_CELLS, torch.Generator().manual_seed(self.config.seed + 1))
        with torch.no_grad():
            images = generator(noise).clamp(-1, 1).add(1).mul(127.5).round().byte().cpu()
        size = 2 * self.config.size
        return contact_sheet([image.permute(1, 2, 0).numpy() for image in images], 2 * size, columns=2)


def _load_initial_generator(generator: dcgan.Generator, init: str) -> None:
    """Start from the weights of `init` (a built-in family's name or a generator file); it must be the same network."""
    families = available_families()
    if init not in families and not Path(init).is_file():
        raise SrkitError(f"--init {init}: neither a built-in family ({', '.join(families)}) nor a generator file")
    weights = (load_family(init) if init in families else read_generator(init)).module.state_dict()
    count, wanted = len(weights.get("materials", ())), len(generator.materials)
    if count and count != wanted:  # each material is its own exemplar's: there is no other count to map it to
        raise SrkitError(
            f"--init {init}: a generator of {count} materials, one per exemplar it learnt; start it with --materials "
            f"on {count} exemplars (not {wanted or 'without --materials'}), or from a generator of one material"
        )
    if len(generator.waves) and "waves" not in weights:  # a generator without waves learns to read them
        weights = dcgan.add_waves(weights, generator.waves)
    if len(generator.materials) and "materials" not in weights:  # one without materials learns to tell them apart
        weights = dcgan.add_materials(weights, len(generator.materials))
    start_from(generator, weights, init, "--size, --features, --noise-channels, --waves and --materials")


def _codes(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) floats in [0, 1] as (H, W, 3) uint8 codes."""
    return image.permute(1, 2, 0).mul(255.0).add(0.5).floor().clamp(0, 255).byte().numpy()


def _save_image(pixels: np.ndarray, path: Path) -> None:
    with atomic_path(path, overwrite=True) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")


def _check_resumable(saved: dict, config: GANTrainConfig, checkpoint: Path) -> None:
    defaults = asdict(GANTrainConfig()) | BEFORE_OPTION  # for options newer than the checkpoint
    for name in FIXED_ON_RESUME:
        started = saved.get(name, defaults[name])
        if started != getattr(config, name):
            flag = f"--{name.replace('_', '-')}"
            was = (
                f"{'with' if started else 'without'} {flag}" if isinstance(started, bool) else f"with {flag} {started}"
            )
            now = "" if isinstance(started, bool) else f", not {getattr(config, name)}"
            raise SrkitError(f"{checkpoint}: started {was}{now}; resume with the options the run was started with")


def _write_generator(
    generator: dcgan.Generator, config: GANTrainConfig, state: RunState, data: list[Path], run_dir: Path
) -> Path:
    training = {
        name: getattr(config, name)
        for name in (
            "size",
            "loss",
            "label_smoothing",
            "stats_weight",
            "batch",
            "lr",
            "beta1",
            "seed",
            "ema_decay",
            "flips",
        )
    }
    if config.scales > 1:  # one-scale runs keep the metadata they always had
        training["scales"] = config.scales
    if config.waves:
        training["waves"] = config.waves
    if config.materials:  # material m is the m-th of `data`
        training["materials"] = True
    if config.init:
        training["init"] = config.init
    training |= dict(steps=state.step, seconds=round(state.seconds, 1), data=[str(path.resolve()) for path in data])
    if exemplars := records(data):  # registry exemplars: their packages and licenses travel with the weights
        training["exemplars"] = exemplars
    metadata = dict(arch=dcgan.ARCH.id, family=config.family or run_dir.resolve().name, training=training)
    return write_safetensors(run_dir / GENERATOR, generator.state_dict(), metadata, overwrite=True)


def train_gan(
    config: GANTrainConfig,
    data: list[str | os.PathLike],
    run_dir: str | os.PathLike,
    device: torch.device | str = "cpu",
    resume: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> RunState:
    """Train (or with `resume`, continue) a texture generator on crops of the exemplars in `data` (images over
    `max_pixels` refused from their header)."""
    config.check()
    run_dir = Path(run_dir)
    checkpoint = checkpoint_path(run_dir, resume)
    files = exemplar_files(data)
    # a resumed run's generator comes from its checkpoint: --init is recorded, not loaded again
    started = replace(config, init="") if resume else config
    trainer = GANTrainer(started, [load_exemplar(path, max_pixels) for path in files], device)
    state = RunState()
    if resume:
        _check_resumable(checkpoint_metadata(checkpoint)["config"], config, checkpoint)
        saved = load_checkpoint(checkpoint, trainer.modules, trainer.optimizers, trainer.rngs)
        state = RunState(saved["step"], saved["seconds"], saved["history"])
    create_run_dir(run_dir)

    def write_samples(generator: dcgan.Generator) -> None:
        _save_image(trainer.sample_sheet(generator), run_dir / "samples" / f"step-{state.step:06d}.png")

    def save(sample: bool) -> None:
        metadata = dict(config=asdict(config), step=state.step, seconds=state.seconds, history=state.history)
        save_checkpoint(checkpoint, trainer.modules, trainer.optimizers, trainer.rngs, metadata)
        generator = trainer.inference_generator()
        realism = trainer.realism(generator)
        score = dict(step=state.step, realism=round(realism, 4) if math.isfinite(realism) else None)
        if state.history and state.history[-1]["step"] == state.step:
            state.history[-1] |= score
        else:
            state.history.append(score)
        _write_generator(generator, config, state, files, run_dir)
        if sample:
            write_samples(generator)
        write_log(run_dir, state.history)

    losses: list[tuple[float, float, float]] = []
    bar = tqdm(total=config.steps, initial=state.step, unit="step", dynamic_ncols=True, disable=None)
    try:
        while state.step < config.steps:
            start = time.perf_counter()
            losses.append(trainer.step(state.step))
            state.seconds += time.perf_counter() - start
            state.step += 1
            bar.update(1)
            if state.step % LOG_EVERY == 0 or state.step == config.steps:
                d_loss, g_loss, stats = np.mean(losses, axis=0)
                state.history.append(
                    dict(
                        step=state.step,
                        d_loss=round(float(d_loss), 5),
                        g_loss=round(float(g_loss), 5),
                        stats=round(float(stats), 5),
                        seconds=round(state.seconds, 2),
                    )
                )
                bar.set_postfix(D=f"{d_loss:.3f}", G=f"{g_loss:.3f}", S=f"{stats:.3f}")
                losses.clear()
            if state.step == config.steps:
                break
            sample = state.step % config.sample_every == 0
            if state.step % config.checkpoint_every == 0:
                save(sample)
            elif sample:
                write_samples(trainer.inference_generator())
    finally:
        bar.close()
    save(sample=True)  # also when resuming a finished run: re-exports the generator with this version's code
    return state
