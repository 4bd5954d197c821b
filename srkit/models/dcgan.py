"""DCGAN-style texture networks (a spatial GAN): a fully convolutional generator and a patch discriminator.

The generator maps a grid of noise cells (N, nz + sum 4^(i+1), h, w) to an image (N, 3, h*2^k, w*2^k): k stages
of resize-convolution (bilinear x2 upsampling, a 3x3 convolution + BatchNorm, plus per-pixel noise scaled per
channel, then ReLU), a 3x3 convolution with tanh, and phase centring. Strided transposed convolutions imprint
their stride on the image (the checkerboard artifact, Odena et al., Distill 2016); interpolating first and
convolving after does not, but x2 interpolation still makes even and odd pixels differ in their neighbours'
correlation, which the nonlinearities turn into a mean pattern of period 2 (a line at 1/2 cycle per pixel).
Phase centring removes it: it subtracts, per channel, the mean of each of the four pixel phases (y mod 2,
x mod 2) less the overall mean, over the batch in training and as calibrated statistics at inference (like
BatchNorm), so the image's expected value no longer depends on the pixel's phase.

The per-pixel noise (as in StyleGAN, Karras et al. 2019) gives the fine grain that a resize-convolution network
cannot make from one noise vector per 16x16 cell. Each cell carries all its noise: nz channels for the first
stage, then stage i's noise at its output resolution folded into 4^(i+1) channels (`stage_noise`), so tiles of
cells are all the tiler needs. Every layer wraps around (circular padding, periodic interpolation), so the
image is periodic with the cell grid: it tiles without a seam, at any size. Noise cells carry no global phase, so
a regular pattern (a weave) drifts out of step within a few periods; a generator with waves also reads sine fields
at fixed wave vectors and a random phase per texture (as in the Periodic Spatial GAN, Bergmann et al. 2017),
folded into the cells the same way and with whole periods across the texture, so it still tiles.

At inference a stage is lowered to its exact sub-pixel form: the upsampling and the 3x3 conv (with BatchNorm
folded) compose into a 3x3 conv on the low-resolution map with four phases of output channels, whose four
extra input channels are the stage's noise, then a pixel shuffle; the upsampled map is never made. State-dict
keys: `stages.N.conv.weight` (C_out, C_in, 3, 3), `stages.N.norm.*`, `stages.N.noise_scale` (C_out,),
`out.weight`, `out.bias`, `centre.running_mean` (3, 2, 2), `waves` (K, 2) if it reads wave fields and
`materials` (M, M) if it reads a material code (discriminator: `stages.N.*`, `head.*`). The earlier
transposed-convolution design that older files hold runs in srkit.models.dcgan_transposed.
"""

from __future__ import annotations

import copy
import math
from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import kernels as K
from .arch import Arch, Layout, load_strict, parameter_count, sequence_indices
from .info import ModelInfo
from .lowering import BoundProgram, ConvStep, element_size, empty, scratch

LEAKY_SLOPE = 0.2  # the discriminator's LeakyReLU (DCGAN's choice)
INIT_STD = 0.02  # DCGAN's weight initialisation: N(0, 0.02), BatchNorm scales N(1, 0.02)
# Noise cells on each side of a tile whose values can reach its output: stage i (0 = on the noise) reads one
# pixel of its input on each side (its sub-pixel form is a 3x3 conv), 1 / 2^i cells; the output conv one pixel
# at full resolution, 1 / 2^k cells. Over k stages that sums to 2 - 2^-k (the per-pixel noise adds nothing: it
# enters where it lies; phase centring is per pixel).
RECEPTIVE_RADIUS = 2
WAVE_SPACING = 4  # output pixels between the samples of the wave fields (at the second-to-last stage's input)
# Low-resolution taps (-1, 0, 1) that periodic bilinear x2 upsampling reads for output phase d (0: even output
# pixels, 1: odd ones) at upsampled offset a (-1, 0, 1) from that pixel: PHASE_TAPS[d][a + 1][t + 1].
PHASE_TAPS = (
    ((0.75, 0.25, 0.0), (0.25, 0.75, 0.0), (0.0, 0.75, 0.25)),
    ((0.25, 0.75, 0.0), (0.0, 0.75, 0.25), (0.0, 0.25, 0.75)),
)


def wrap_upsample(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 upsampling (half-pixel centres) of x taken as periodic: pad one pixel circularly, crop two."""
    padded = F.interpolate(
        F.pad(x, (1, 1, 1, 1), mode="circular"), scale_factor=2, mode="bilinear", align_corners=False
    )
    return padded[:, :, 2:-2, 2:-2]


def subpixel_weight(weight: torch.Tensor) -> torch.Tensor:
    """The (4*C_out, C_in, 3, 3) conv whose pixel shuffle by 2 equals `weight` (C_out, C_in, 3, 3) applied
    after `wrap_upsample`; output channel 4*c + 2*dy + dx is phase (dy, dx) of channel c."""
    taps = torch.tensor(PHASE_TAPS, dtype=torch.float64)  # (phase, a, t)
    phases = torch.einsum("oiab,yat,xbs->oyxits", weight.double(), taps, taps)
    return phases.reshape(weight.shape[0] * 4, weight.shape[1], 3, 3)


def stage_noise_channels(stage: int) -> int:
    """Channels per cell of stage `stage`'s per-pixel noise: one value per pixel of its output, 2^(stage+1) a side."""
    return 4 ** (stage + 1)


def wave_stage(stages: int) -> int:
    """The stage whose input the wave fields join: the one whose pixels are WAVE_SPACING output pixels apart (the
    second to last), fine enough to carry a weave of 8 pixels or more, coarse enough to cost little."""
    return stages - int(math.log2(WAVE_SPACING))


def wave_field_channels(waves: int, stages: int) -> int:
    """Channels per cell of `waves` wave fields (a sine and a cosine each) at the wave stage's input resolution."""
    return 2 * waves * 4 ** wave_stage(stages) if waves else 0


def input_channels(noise_channels: int, stages: int, waves: int = 0) -> int:
    """Channels per noise cell of a generator: the first stage's `noise_channels`, each stage's pixel noise and
    the wave fields."""
    return noise_channels + sum(stage_noise_channels(i) for i in range(stages)) + wave_field_channels(waves, stages)


def require_cells(cells: torch.Tensor, noise_channels: int, stages: int, waves: int = 0) -> None:
    """Refuse noise cells whose channel count is not the generator's (a caller's bug, named)."""
    total = input_channels(noise_channels, stages, waves)
    if cells.shape[1] != total:
        raise ValueError(f"noise cells have {cells.shape[1]} channels, the generator takes {total}")


def stage_noise(
    cells: torch.Tensor, noise_channels: int, stages: int, waves: int = 0
) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """Split noise cells (N, input_channels, h, w) into the first stage's input (N, nz, h, w), per stage i its
    noise at the stage's input resolution with the four output phases as channels (N, 4, h*2^i, w*2^i), and the
    wave fields at the wave stage's input resolution (N, 2 * waves, ...; no channels without waves)."""
    require_cells(cells, noise_channels, stages, waves)
    base, offset, phases = cells[:, :noise_channels], noise_channels, []
    for stage in range(stages):
        count = stage_noise_channels(stage)
        phases.append(F.pixel_shuffle(cells[:, offset : offset + count], 2**stage))
        offset += count
    return base, phases, F.pixel_shuffle(cells[:, offset:], 2 ** wave_stage(stages)) if waves else cells[:, :0]


def wave_fields(waves: torch.Tensor, phases: torch.Tensor, side: int, scale: int, stages: int) -> torch.Tensor:
    """The wave fields of a texture of side x side cells, folded into cells: (N, wave_field_channels, side, side).

    Wave j is sin and cos of 2 pi (k_j . p) / S + phase_j at each wave-stage input pixel's centre p (in output
    pixels), where S = side * scale is the texture's side and k_j = round(S * waves[j]) whole periods across it
    (waves (K, 2): cycles per pixel down and across), so the fields, and the texture, wrap around; phases (N, K)
    in radians, one per texture and wave (the texture's place on the weave)."""
    fold = 2 ** wave_stage(stages)
    texture, pixels = side * scale, side * fold
    periods = torch.round(waves.detach().cpu().double() * texture)  # (K, 2)
    centres = (torch.arange(pixels, dtype=torch.float64) + 0.5) * (scale // fold) - 0.5
    angle = (periods[:, 0, None, None] * centres[:, None] + periods[:, 1, None, None] * centres) * (
        2 * math.pi / texture
    )
    angle = angle + phases.double()[:, :, None, None]  # (N, K, pixels, pixels)
    return F.pixel_unshuffle(torch.cat([angle.sin(), angle.cos()], 1).float(), fold)


def draw_cells(
    module: nn.Module,
    in_channels: int,
    count: int,
    side: int,
    rng: torch.Generator,
    material: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """(count, in_channels, side, side) input cells of a texture generator, drawn on the CPU (a seed is the same
    numbers on every device): standard normal noise, then, for a generator with waves, their fields at phases
    drawn uniformly after the noise, then, for one with materials, the code of each texture's material
    (`material`, one for all or (count,); drawn uniformly if None) in every cell (a generator with neither draws
    exactly what it always drew)."""
    if not isinstance(module, Generator):
        return torch.randn((count, in_channels, side, side), generator=rng)
    waves, stages = len(module.waves), len(module.stages)
    cells = torch.randn((count, in_channels - wave_field_channels(waves, stages), side, side), generator=rng)
    if waves:
        phases = torch.rand((count, waves), generator=rng, dtype=torch.float64) * (2 * math.pi)
        cells = torch.cat([cells, wave_fields(module.waves, phases, side, module.scale, stages)], 1)
    if len(module.materials):
        if material is None:
            material = torch.randint(len(module.materials), (count,), generator=rng)
        codes = module.material_codes(torch.as_tensor(material).expand(count)).cpu()
        cells[:, module.code_channels] = codes[:, :, None, None]
    elif material is not None:
        raise ValueError("this generator has no materials to choose from")
    return cells


def add_waves(weights: dict[str, torch.Tensor], waves: torch.Tensor) -> dict[str, torch.Tensor]:
    """The weights of a generator without waves as those of one that reads `waves` with zero weights: the same
    images, and training from them learns to use the fields (a trained family fine-tuned onto a weave)."""
    stages = len(sequence_indices(weights, r"stages\.(\d+)\.conv\.weight$"))
    key = f"stages.{wave_stage(stages)}.conv.weight"
    weight = weights[key]
    fields = weight.new_zeros(weight.shape[0], 2 * len(waves), *weight.shape[2:])
    return weights | {key: torch.cat([weight, fields], 1), "waves": waves.to(weight)}


def add_materials(weights: dict[str, torch.Tensor], materials: int) -> dict[str, torch.Tensor]:
    """The weights of a generator without materials as those of one that reads the code of one of `materials`
    with zero weights: the same images for every material, and training from them learns to tell them apart."""
    weight = weights["stages.0.conv.weight"]
    codes = weight.new_zeros(weight.shape[0], materials, *weight.shape[2:])
    widened = torch.cat([weight, codes], 1)
    centre = weights["centre.running_mean"].expand(materials, -1, -1, -1).clone()  # each material's, at first all one
    return weights | {
        "stages.0.conv.weight": widened,
        "centre.running_mean": centre,
        "materials": torch.eye(materials).to(weight),
    }


def shuffle_into(cells: torch.Tensor, scale: int, out: torch.Tensor) -> torch.Tensor:
    """F.pixel_shuffle(cells, scale) written into `out` (N, C, h*scale, w*scale), e.g. a channel slice of a
    bound buffer, in one strided copy (no shuffled temporary)."""
    out.unflatten(2, (-1, scale)).unflatten(4, (-1, scale)).copy_(
        cells.unflatten(1, (-1, scale, scale)).permute(0, 1, 4, 2, 5, 3)
    )
    return out


def generator_widths(features: int, num_up: int) -> tuple[int, ...]:
    """Channels after each stage: halving towards the image, the last two `features` wide."""
    return tuple(features * 2 ** max(0, num_up - 2 - i) for i in range(num_up))


class UpStage(nn.Module):
    """Periodic bilinear x2, a 3x3 circular conv (no bias) + BatchNorm, plus the per-pixel noise times a
    per-channel scale, then ReLU: doubles height and width."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="circular", bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.noise_scale = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, phases: torch.Tensor) -> torch.Tensor:
        """x (N, C_in, h, w) and its noise phases (N, 4, h, w) -> (N, C_out, 2h, 2w)."""
        noise = F.pixel_shuffle(phases, 2) * self.noise_scale[None, :, None, None]
        return F.relu(self.norm(self.conv(wrap_upsample(x))) + noise)


def phase_means(x: torch.Tensor) -> torch.Tensor:
    """(C, 2, 2) mean of (N, C, H, W) over the batch and over each pixel phase (y mod 2, x mod 2); H, W even."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean((0, 2, 4))


def coded_materials(cells: torch.Tensor, code_channels: slice) -> torch.Tensor:
    """(N,) the material whose one-hot code cells (N, C, h, w) carry in `code_channels` (the same in every cell)."""
    return cells[:, code_channels, 0, 0].argmax(1)


def material_phase_means(x: torch.Tensor, materials: torch.Tensor, count: int) -> torch.Tensor:
    """(count, C, 2, 2) phase means of the textures of each material in x (N, C, H, W), materials (N,); zeros for
    a material x has none of."""
    n, c, h, w = x.shape
    per_image = x.reshape(n, c, h // 2, 2, w // 2, 2).mean((2, 4))
    sums = per_image.new_zeros(count, c, 2, 2).index_add(0, materials, per_image)
    return sums / torch.bincount(materials, minlength=count).clamp_min(1)[:, None, None, None].to(sums)


def phase_offsets(means: torch.Tensor) -> torch.Tensor:
    """(..., C, 2, 2) per-phase means less their per-channel average: what phase centring subtracts."""
    return means - means.mean((-2, -1), keepdim=True)


class PhaseCentre(nn.Module):
    """Subtracts the per-phase mean pattern of period 2: the batch's in training, the calibrated one
    (`running_mean`, set by `recalibrate`) in eval mode. With materials each has its own pattern (one mean over
    all of them leaves each material's difference from it: stride peaks of 5-12 at 1/2 for a stone of six)."""

    running_mean: torch.Tensor  # a registered buffer: (C, 2, 2), or (materials, C, 2, 2)

    def __init__(self, channels: int, materials: int = 0) -> None:
        super().__init__()
        shape = (materials, channels, 2, 2) if materials else (channels, 2, 2)
        self.register_buffer("running_mean", torch.zeros(shape))

    def forward(self, x: torch.Tensor, materials: torch.Tensor | None = None) -> torch.Tensor:
        """x (N, C, H, W) centred; `materials` (N,) each texture's material, for a generator with materials."""
        if materials is None:
            offsets = phase_offsets(phase_means(x) if self.training else self.running_mean)
            return x - offsets.repeat(1, x.shape[2] // 2, x.shape[3] // 2)
        count = len(self.running_mean)
        means = material_phase_means(x, materials, count) if self.training else self.running_mean
        return x - phase_offsets(means)[materials].repeat(1, 1, x.shape[2] // 2, x.shape[3] // 2)


class Generator(nn.Module):
    """Noise cells (N, input_channels, h, w) -> periodic image (N, out_channels, h*2^k, w*2^k) in [-1, 1].

    With `waves`, the second-to-last stage also reads a sine and a cosine field per wave (`wave_fields`): a global
    phase that noise cells lack, so a regular material (a weave) can stay in step across the whole texture. With
    `materials` (M of them), the last M of the first stage's `noise_channels` are a one-hot code of the texture's
    material, the same in every cell, so a family trained on several exemplars makes one of them per texture
    rather than a patchwork of all."""

    waves: torch.Tensor  # a registered buffer: (K, 2) cycles per pixel (down, across); K = 0 without waves
    materials: torch.Tensor  # a registered buffer: (M, M), row m the code of material m; M = 0 without materials

    def __init__(
        self,
        *,
        noise_channels: int = 32,
        widths: tuple[int, ...] = (128, 64, 32, 32),
        out_channels: int = 3,
        waves: torch.Tensor | None = None,
        materials: int = 0,
    ) -> None:
        super().__init__()
        waves = torch.zeros(0, 2) if waves is None else waves.float()
        if not 0 <= materials < noise_channels:
            raise ValueError(f"{materials} materials leave none of the {noise_channels} input channels to noise")
        ins = [noise_channels, *widths[:-1]]
        if len(waves):
            if len(widths) < 3:
                raise ValueError("wave fields need a generator of three stages or more")
            ins[wave_stage(len(widths))] += 2 * len(waves)
        self.noise_channels = noise_channels
        self.stages = nn.ModuleList(UpStage(a, b) for a, b in zip(ins, widths))
        self.out = nn.Conv2d(widths[-1], out_channels, 3, padding=1, padding_mode="circular")
        self.centre = PhaseCentre(out_channels, materials)
        self.register_buffer("waves", waves, persistent=bool(len(waves)))  # files without waves load as before
        self.register_buffer("materials", torch.eye(materials), persistent=bool(materials))

    def material_codes(self, chosen: torch.Tensor) -> torch.Tensor:
        """(N, M) codes of materials `chosen` (N,): what the first stage reads beside its noise and the
        discriminators beside the image in training; a material the generator does not have is refused."""
        bad = chosen[(chosen < 0) | (chosen >= len(self.materials))]
        if len(bad):
            raise ValueError(f"material {int(bad[0])}: this generator has materials 0 to {len(self.materials) - 1}")
        return self.materials[chosen.long().to(self.materials.device)]

    @property
    def code_channels(self) -> slice:
        """Where the material code lies in the noise cells: the last M of the first stage's input channels."""
        return slice(self.noise_channels - len(self.materials), self.noise_channels)

    @property
    def scale(self) -> int:
        """Output pixels per noise cell along each side."""
        return 2 ** len(self.stages)

    @property
    def input_channels(self) -> int:
        """Noise channels per cell: the first stage's input and every stage's per-pixel noise."""
        return input_channels(self.noise_channels, len(self.stages), len(self.waves))

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.centre(self.uncentred(noise), self.materials_of(noise))

    def materials_of(self, noise: torch.Tensor) -> torch.Tensor | None:
        """(N,) the material whose code each texture's cells carry; None without materials."""
        return coded_materials(noise, self.code_channels) if len(self.materials) else None

    def uncentred(self, noise: torch.Tensor) -> torch.Tensor:
        """The output before phase centring (what `recalibrate` measures)."""
        x, phases, fields = stage_noise(noise, self.noise_channels, len(self.stages), len(self.waves))
        for index, (stage, stage_phases) in enumerate(zip(self.stages, phases)):
            if fields.shape[1] and index == wave_stage(len(self.stages)):
                x = torch.cat([x, fields], 1)
            x = stage(x, stage_phases)
        return torch.tanh(self.out(x))


class Discriminator(nn.Module):
    """Image -> patch logits (N, 1, H/2^k, W/2^k): spectrally normalised strided 4x4 convs + LeakyReLU.

    Spectral normalisation (Miyato et al. 2018) bounds each layer's Lipschitz constant, which keeps the
    discriminator from winning outright on a few exemplars (it replaces DCGAN's BatchNorm here)."""

    def __init__(self, *, in_channels: int = 3, features: int = 32, num_down: int = 3) -> None:
        super().__init__()
        widths = [features * 2 ** min(i, 3) for i in range(num_down)]
        sn = nn.utils.parametrizations.spectral_norm
        self.stages = nn.ModuleList(
            nn.Sequential(sn(nn.Conv2d(a, b, 4, stride=2, padding=1)), nn.LeakyReLU(LEAKY_SLOPE, inplace=True))
            for a, b in zip((in_channels, *widths[:-1]), widths)
        )
        self.head = sn(nn.Conv2d(widths[-1], 1, 3, padding=1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image
        for stage in self.stages:
            x = stage(x)
        return self.head(x)


def initialise(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """DCGAN initialisation, seeded: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02) and shift 0, biases 0."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Conv2d):
                weight = (
                    layer.get_parameter("parametrizations.weight.original")
                    if hasattr(layer, "parametrizations")
                    else layer.weight
                )
                weight.copy_(torch.randn(weight.shape, generator=generator) * INIT_STD)
                if layer.bias is not None:
                    layer.bias.zero_()
            elif isinstance(layer, nn.BatchNorm2d):
                layer.weight.copy_(1.0 + torch.randn(layer.weight.shape, generator=generator) * INIT_STD)
                layer.bias.zero_()
    return module


def recalibrate(generator: Generator, noise_batches: list[torch.Tensor]) -> Generator:
    """A copy of `generator` in eval mode whose BatchNorm statistics, then phase means, are the exact averages over
    `noise_batches` (instead of moving averages over the last training steps, which lag the weights)."""
    calibrated = copy.deepcopy(generator).train()
    for layer in calibrated.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.reset_running_stats()
            layer.momentum = None  # cumulative average
    with torch.no_grad():
        for noise in noise_batches:
            calibrated(noise)
        calibrated.eval()
        if len(calibrated.materials):  # each material's own pattern, over its textures in all the batches
            images = torch.cat([calibrated.uncentred(noise) for noise in noise_batches])
            materials = torch.cat([cast(torch.Tensor, calibrated.materials_of(noise)) for noise in noise_batches])
            calibrated.centre.running_mean.copy_(material_phase_means(images, materials, len(calibrated.materials)))
        else:
            calibrated.centre.running_mean.copy_(
                torch.stack([phase_means(calibrated.uncentred(noise)) for noise in noise_batches]).mean(0)
            )
    return calibrated


def batchnorm_affine(norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) in float64 that `norm` applies per channel in eval mode (its running statistics)."""
    # Every BatchNorm here tracks running statistics (torch types them as optional for those that do not).
    mean, var = cast(torch.Tensor, norm.running_mean), cast(torch.Tensor, norm.running_var)
    scale = norm.weight.detach().double() / torch.sqrt(var.double() + norm.eps)
    return scale, norm.bias.detach().double() - mean.double() * scale


def fold_batchnorm(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) in float64 of one conv equal to `conv` followed by `norm` in eval mode (running statistics)."""
    scale, bias = batchnorm_affine(norm)
    weight = conv.weight.detach().double() * scale[:, None, None, None]
    if conv.bias is not None:
        bias = bias + conv.bias.detach().double() * scale
    return weight, bias


def stage_step(stage: UpStage, device: torch.device) -> ConvStep:
    """The sub-pixel conv of one stage: BatchNorm folded, output channel 4c + p = phase p of channel c, and four
    extra input channels (the stage's noise phases) that reach phase p of every channel c with its noise scale."""
    weight, bias = fold_batchnorm(stage.conv, stage.norm)
    phases = subpixel_weight(weight)
    noise = torch.zeros(phases.shape[0], 4, 3, 3, dtype=phases.dtype)
    channels = torch.arange(phases.shape[0])
    noise[channels, channels % 4, 1, 1] = stage.noise_scale.detach().double().repeat_interleave(4)
    return ConvStep(
        torch.cat([phases, noise], 1).float().to(device),
        bias.repeat_interleave(4).float().to(device),
        "relu",
        padding_mode="circular",
    )


class GeneratorProgram(BoundProgram):
    """run(noise cells (N, input_channels, h, w)) -> (N, 3, h*2^k, w*2^k) in [0, 1]: per stage one sub-pixel conv
    + ReLU over the map (the wave stage's beside the wave fields) and its noise phases, and a pixel shuffle; then
    the output conv + tanh, whose epilogue maps [-1, 1] to [0, 1], subtracts the phase offsets (as its scaled
    residual), clamps and packs. Every layer wraps around."""

    def __init__(self, module: Generator, info: ModelInfo, device: torch.device) -> None:
        super().__init__(info)
        self.noise_channels = module.noise_channels
        self.waves = len(module.waves)
        self.wave_stage = wave_stage(len(module.stages))
        self.fields_at = input_channels(module.noise_channels, len(module.stages))  # the cells' wave fields start
        self.materials = len(module.materials)
        self.code_channels = module.code_channels
        stages = cast("list[UpStage]", list(module.stages))
        self.stages = [stage_step(stage, device) for stage in stages]
        self.out = ConvStep.from_conv(module.out, device, "tanh", padding_mode="circular")
        self.phase_base = (0.5 - 0.5 * phase_offsets(module.centre.running_mean.detach().float())).to(device)
        self.widths = (module.noise_channels, *(stage.conv.weight.shape[0] for stage in stages), info.out_channels)

    def extra_inputs(self, stage: int) -> int:
        """Input channels of `stage`'s conv beyond its map: its four noise phases, and the wave fields."""
        return 4 + (2 * self.waves if self.waves and stage == self.wave_stage else 0)

    def bind(self, x):
        """Stage i > 0 reads one buffer: the map that stage i - 1's pixel shuffle writes, then (wave stage) the
        wave fields, then its noise phases (stage 0 reads the noise cells themselves: its noise phases are the
        channels after the first stage's input); the four-phase conv outputs and the last map are scratch; the
        phase pattern is made once (with materials: each material's, and a buffer for the batch's)."""
        require_cells(x, self.noise_channels, len(self.stages), self.waves)
        ops = K.ops_for(x)
        _, _, h, w = x.shape
        inputs = [empty(x, c + self.extra_inputs(i), h * 2**i, w * 2**i) for i, c in enumerate(self.widths[1:-2], 1)]
        phases = [scratch(ops, x, 4 * c, h * 2**i, w * 2**i) for i, c in enumerate(self.widths[1:-1])]
        size = (h * self.info.net_scale, w * self.info.net_scale)
        last = scratch(ops, x, self.widths[-2], *size)
        base = self.phase_base.to(x.dtype).repeat(1, 1, size[0] // 2, size[1] // 2)  # one image's (each material's)
        base = base.contiguous(memory_format=torch.channels_last)
        patterns = base if self.materials else None  # a run copies its textures' materials' ones into `pattern`
        batch = base[:1].expand(x.shape[0], -1, -1, -1)
        pattern = torch.empty_like(batch, memory_format=torch.channels_last) if self.materials else batch
        buffers = (inputs, phases, last, pattern, patterns)
        self._run(K.CHECKS, x, None, None, *buffers)
        return lambda x, clamp, out_dtype: self._run(ops, x, clamp, out_dtype, *buffers)

    def _run(
        self,
        ops: K.Ops,
        x,
        clamp,
        out_dtype,
        inputs: list[torch.Tensor],
        phases: list[torch.Tensor | None],
        last: torch.Tensor | None,
        pattern: torch.Tensor,
        patterns: torch.Tensor | None,
    ) -> torch.Tensor:
        feeds = [x[:, : self.noise_channels + 4], *inputs]  # each stage's map, wave fields and noise phases
        maps = [*(feed[:, :width] for feed, width in zip(inputs, self.widths[1:-2])), last]  # the shuffles' targets
        offset = self.noise_channels + 4
        for i, (step, feed, target, map_out) in enumerate(zip(self.stages, feeds, phases, maps)):
            if i:
                count = stage_noise_channels(i)
                shuffle_into(x[:, offset : offset + count], 2**i, feed[:, -4:])
                offset += count
            if self.waves and i == self.wave_stage:  # the fields are the cells' last channels
                shuffle_into(x[:, self.fields_at :], 2**i, feed[:, self.widths[i] : -4])
            feat = ops.pixel_shuffle_add(step.launch(ops, feed, out=target), 2, out=map_out)
        if patterns is not None:  # each texture's material's pattern, chosen on the device (no sync)
            torch.index_select(patterns, 0, coded_materials(x, self.code_channels), out=pattern)
        return self.out.launch(ops, feat, pattern, 0.5, clamp=clamp, out_dtype=out_dtype)

    def activation_bytes_per_pixel(self, dtype):
        """Bytes per noise cell of the bound buffers (all alive at once): each stage's input after the first, its
        four-phase output, the last map and one image's phase pattern, plus each material's (the reference kernels
        allocate the scratch ones per launch instead: less)."""
        widths, stages = self.widths, len(self.stages)
        inputs = sum(4**i * (c + self.extra_inputs(i)) for i, c in enumerate(widths[1:-2], 1))
        phases = sum(4**i * 4 * c for i, c in enumerate(widths[1:-1]))
        return element_size(dtype) * (inputs + phases + 4**stages * (widths[-2] + widths[-1] * (1 + self.materials)))


class GeneratorArch(Arch):
    """The texture generator (not an SR network: the SR registry does not detect it)."""

    id = "dcgan"
    name = "srkit texture generator (DCGAN, resize-convolution)"
    blend_pixels = 1  # tiles are in noise cells (16 output pixels each): one cell blends enough
    layouts = (Layout("srkit", ("stages.0.conv.weight", "stages.0.norm.running_var", "out.weight")),)

    def detect(self, state_dict):
        """Stages 0..k-1 (a 3x3 conv with BatchNorm and a noise scale each), a 3x3 `out` conv, phase means."""
        stages = sequence_indices(state_dict, r"stages\.(\d+)\.conv\.weight$")
        return (
            bool(stages)
            and stages == list(range(len(stages)))
            and "out.weight" in state_dict
            and all(state_dict[f"stages.{i}.conv.weight"].shape[2:] == (3, 3) for i in stages)
            and "centre.running_mean" in state_dict
            and all(f"stages.{i}.{key}" in state_dict for i in stages for key in ("norm.running_var", "noise_scale"))
        )

    def load(self, state_dict, hints):
        stages = sequence_indices(state_dict, r"stages\.(\d+)\.conv\.weight$")
        convs = [state_dict[f"stages.{i}.conv.weight"] for i in stages]
        noise_channels = convs[0].shape[1]
        widths = tuple(int(w.shape[0]) for w in convs)
        out_channels = state_dict["out.weight"].shape[0]
        waves = state_dict.get("waves")
        if waves is not None and (
            waves.dim() != 2 or waves.shape[1] != 2 or not len(waves) or waves.abs().max() >= 0.5
        ):
            raise ValueError(
                f"'waves' of shape {tuple(waves.shape)}: wave vectors are (K, 2), in cycles per pixel below 1/2"
            )
        codes, materials = state_dict.get("materials"), 0
        if codes is not None:
            materials = codes.shape[0] if codes.dim() == 2 else 0
            if not (0 < materials < noise_channels and torch.equal(codes.float(), torch.eye(materials))):
                raise ValueError(
                    f"'materials' of shape {tuple(codes.shape)}: the codes of M materials are the (M, M) identity, "
                    f"M below the {noise_channels} input channels"
                )
        module = Generator(
            noise_channels=noise_channels, widths=widths, out_channels=out_channels, waves=waves, materials=materials
        )
        load_strict(module, state_dict)
        info = ModelInfo(
            self.id,
            module.scale,
            module.input_channels,
            out_channels,
            widths[-1],
            len(widths),
            parameter_count(module),
            receptive_radius=RECEPTIVE_RADIUS,
        )
        return module, info

    def lower(self, module, info, device):
        return GeneratorProgram(cast(Generator, module), info, device)  # this arch's load built it


ARCH = GeneratorArch()
