"""Launch every srkit Triton kernel on small odd shapes, for compute-sanitizer; every result is checked.

    python benchmarks/sanitize_kernels.py                         # CUDA: compile everything, check results
    PYTORCH_NO_CUDA_MEMORY_CACHING=1 compute-sanitizer --tool memcheck --error-exitcode 3 \\
        python benchmarks/sanitize_kernels.py                     # the same launches, memory-checked
    TRITON_INTERPRET=1 python benchmarks/sanitize_kernels.py      # CPU: the same launches, interpreted

Run it once without the sanitizer first, so the sanitized run loads compiled kernels instead of building
them. PYTORCH_NO_CUDA_MEMORY_CACHING=1 gives each tensor its own allocation, so an access past its end is
caught instead of landing in a neighbour inside PyTorch's cached block. On CUDA every launch runs in fp16
and bf16, each convolution with every GPU_CONV_CONFIGS tile; interpreted, in fp32 with the interpreter's
single config (its bf16 dot is wrong). Outputs are checked against the PyTorch reference on the CPU in fp32.
Exit status 1 if a result is wrong; 0 with a message where neither CUDA nor the interpreter is available.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import relative_rms  # noqa: E402

from srkit.kernels import _launch, reference, triton_conv, triton_pixel_shuffle, triton_upsample  # noqa: E402

N, C_IN, C_OUT, H, W = 2, 64, 48, 37, 53
# Relative RMS error allowed against the fp32 reference (inputs already rounded to the kernel's dtype).
RMS_LIMITS = {torch.float32: 1e-4, torch.float16: 3e-3, torch.bfloat16: 2e-2}


def _nhwc(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last)


class Launches:
    """Runs launches on one device and dtype, compares each with the reference, and counts failures."""

    def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
        self.device, self.dtype = device, dtype
        self.generator = torch.Generator().manual_seed(0)
        self.count = 0
        self.failed = 0

    def tensor(self, *shape: int, scale: float = 1.0, positive: bool = False) -> torch.Tensor:
        """A random channels_last CPU tensor, rounded to the dtype under test so both sides see the same input."""
        t = torch.rand(*shape, generator=self.generator) if positive else torch.randn(*shape, generator=self.generator)
        t = (t * scale).to(self.dtype).float()
        return _nhwc(t) if t.dim() == 4 else t

    def on_device(self, t: torch.Tensor | None) -> torch.Tensor | None:
        """The CPU master copy on the device under test (None stays None)."""
        return None if t is None else t.to(self.device, self.dtype)

    def check(self, what: str, got: torch.Tensor, expected: torch.Tensor) -> None:
        """Compare one launch's output with the reference; integer images may differ by one code."""
        self.count += 1
        got = got.cpu()
        if expected.dtype in (torch.uint8, torch.uint16):
            err = (got.long() - expected.long()).abs().max().item()
            ok, shown = err <= 1, f"max code diff {err}"
        else:
            err = relative_rms(got, expected)
            ok, shown = err <= RMS_LIMITS[self.dtype], f"rel. RMS err {err:.1e}"
        self.failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what} {str(self.dtype).removeprefix('torch.')}: {shown}", flush=True)

    def untouched(self, what: str, neighbours: torch.Tensor) -> None:
        """Count a launch wrong if it wrote into the (NaN-filled) channels beside its output slice."""
        ok = bool(torch.isnan(neighbours).all())
        self.failed += not ok
        print(
            f"{'ok  ' if ok else 'FAIL'} {what} {str(self.dtype).removeprefix('torch.')}: neighbours "
            f"{'untouched' if ok else 'written'}",
            flush=True,
        )

    def convolutions(self, configs: tuple) -> None:
        """conv2d_act (3x3 into a channel slice with residual, circular, 1x1, tanh + residual packed to uint8),
        transposed conv, conv + shuffle."""
        x, residual = self.tensor(N, C_IN, H, W), self.tensor(N, C_OUT, H, W)
        w3, w1 = self.tensor(C_OUT, C_IN, 3, 3, scale=0.04), self.tensor(C_OUT, C_IN, 1, 1, scale=0.1)
        bias, slope = self.tensor(C_OUT, scale=0.1), self.tensor(C_OUT, scale=0.5, positive=True)
        wt, bias_t = self.tensor(C_IN, 32, 4, 4, scale=0.03), self.tensor(32, scale=0.1)
        w_shuffle, base = self.tensor(48, C_IN, 3, 3, scale=0.04), self.tensor(N, 3, H, W, positive=True)
        d = self.on_device
        for config in configs:
            tile = config or "(interpreter's config)"
            wide = torch.full((N, C_OUT + 32, H, W), float("nan"), dtype=self.dtype, device=self.device)
            out = _nhwc(wide)[:, 16 : 16 + C_OUT]
            triton_conv.conv2d_act(
                d(x), d(w3), d(bias), "prelu", d(slope), residual=d(residual), res_scale=0.2, out=out, config=config
            )
            self.check(
                f"conv2d_act 3x3 prelu+residual into a channel slice {tile}",
                out,
                reference.conv2d_act(x, w3, bias, "prelu", slope, residual=residual, res_scale=0.2),
            )
            self.check(
                f"conv2d_act 3x3 leaky_relu circular {tile}",
                triton_conv.conv2d_act(d(x), d(w3), d(bias), "leaky_relu", 0.2, padding_mode="circular", config=config),
                reference.conv2d_act(x, w3, bias, "leaky_relu", 0.2, padding_mode="circular"),
            )
            self.check(
                f"conv2d_act 1x1 relu {tile}",
                triton_conv.conv2d_act(d(x), d(w1), d(bias), "relu", config=config),
                reference.conv2d_act(x, w1, bias, "relu"),
            )
            self.check(
                f"conv2d_act 3x3 tanh circular + residual -> uint8 (the texture generator's last) {tile}",
                triton_conv.conv2d_act(
                    d(x),
                    d(w3[:3]),
                    d(bias[:3]),
                    "tanh",
                    0.0,
                    residual=d(base),
                    res_scale=0.5,
                    padding_mode="circular",
                    clamp=(0.0, 1.0),
                    out_dtype=torch.uint8,
                    config=config,
                ),
                reference.conv2d_act(
                    x,
                    w3[:3],
                    bias[:3],
                    "tanh",
                    0.0,
                    residual=base,
                    res_scale=0.5,
                    padding_mode="circular",
                    clamp=(0.0, 1.0),
                    out_dtype=torch.uint8,
                ),
            )
            for mode in ("zeros", "circular"):
                self.check(
                    f"conv_transpose2d_act prelu {mode} {tile}",
                    triton_conv.conv_transpose2d_act(
                        d(x), d(wt), d(bias_t), "prelu", d(slope[:32]), padding_mode=mode, config=config
                    ),
                    reference.conv_transpose2d_act(x, wt, bias_t, "prelu", slope[:32], padding_mode=mode),
                )
            self.check(
                f"conv2d_pixel_shuffle_add x4 uint8 {tile}",
                triton_conv.conv2d_pixel_shuffle_add(
                    d(x), d(w_shuffle), d(bias), 4, d(base), (0.0, 1.0), torch.uint8, config=config
                ),
                reference.conv2d_pixel_shuffle_add(x, w_shuffle, bias, 4, base, (0.0, 1.0), torch.uint8),
            )

    def resampling(self) -> None:
        """upsample in every mode and pixel_shuffle_add to float and to uint8."""
        image, y = self.tensor(N, 3, H, W, positive=True), self.tensor(N, 48, H, W, scale=0.1)
        d = self.on_device
        for mode, scale, align in (
            ("nearest", 4, False),
            ("bilinear", 2, False),
            ("bilinear", 3, True),
            ("bicubic", 3, False),
        ):
            self.check(
                f"upsample {mode} x{scale} align_corners={align}",
                triton_upsample.upsample(d(image), scale, mode, align),
                reference.upsample(image, scale, mode, align),
            )
        self.check(
            "pixel_shuffle_add x4 + bicubic base -> uint8",
            triton_pixel_shuffle.pixel_shuffle_add(d(y), 4, d(image), "bicubic", (0.0, 1.0), torch.uint8),
            reference.pixel_shuffle_add(y, 4, image, "bicubic", (0.0, 1.0), torch.uint8),
        )
        self.check(
            "pixel_shuffle_add x4 float",
            triton_pixel_shuffle.pixel_shuffle_add(d(y), 4),
            reference.pixel_shuffle_add(y, 4),
        )
        wide = _nhwc(torch.full((N, 20, 2 * H, 2 * W), float("nan"), dtype=self.dtype, device=self.device))
        triton_pixel_shuffle.pixel_shuffle_add(d(y), 2, out=wide[:, 4:16])
        self.check(
            "pixel_shuffle_add x2 into a channel slice (the texture generator's stages)",
            wide[:, 4:16],
            reference.pixel_shuffle_add(y, 2),
        )
        self.untouched("pixel_shuffle_add x2 into a channel slice", torch.cat([wide[:, :4], wide[:, 16:]], 1))


def main() -> int:
    if torch.cuda.is_available():
        device, dtypes, configs = torch.device("cuda"), (torch.float16, torch.bfloat16), _launch.GPU_CONV_CONFIGS
    elif _launch.INTERPRETING:
        device, dtypes, configs = torch.device("cpu"), (torch.float32,), (None,)
        print(
            "sanitize_kernels: no CUDA device; running the launches through Triton's interpreter (no memory checking)"
        )
    else:
        print("sanitize_kernels: no CUDA device here (set TRITON_INTERPRET=1 to run the launches interpreted)")
        return 0
    total = failed = 0
    for dtype in dtypes:
        launches = Launches(device, dtype)
        launches.convolutions(configs)
        launches.resampling()
        total, failed = total + launches.count, failed + launches.failed
    print(f"sanitize_kernels: {total} launches on {device}, {failed} wrong")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
