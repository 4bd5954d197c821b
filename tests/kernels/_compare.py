"""Verbose tensor comparison for kernel tests: says how many elements differ, where, and NaN/inf disagreements."""

from __future__ import annotations

import torch

# Tolerances against an fp32 oracle: fp16 keeps 11 significant bits, bf16 8, and each output is rounded once.
TOLERANCES = {
    torch.float32: dict(atol=1e-4, rtol=1e-4),
    torch.float16: dict(atol=2e-3, rtol=2e-3),
    torch.bfloat16: dict(atol=1.6e-2, rtol=1.6e-2),
}


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float, what: str = "") -> None:
    """Fail with a mismatch report unless |actual - expected| <= atol + rtol * |expected| everywhere."""
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    a = actual.detach().double().cpu()
    e = expected.detach().double().cpu()
    nan_disagree = torch.isnan(a) != torch.isnan(e)
    inf_disagree = torch.isinf(a) != torch.isinf(e)
    diff = (a - e).abs()
    bad = (diff > atol + rtol * e.abs()) | nan_disagree | inf_disagree
    bad &= ~(torch.isnan(a) & torch.isnan(e))
    if not bad.any():
        return
    first = tuple(int(i) for i in torch.nonzero(bad)[0])
    finite = diff[torch.isfinite(diff)]
    raise AssertionError(
        f"{what}: {int(bad.sum())} of {bad.numel()} elements differ (atol={atol}, rtol={rtol}); "
        f"NaN disagreements {int(nan_disagree.sum())}, inf disagreements {int(inf_disagree.sum())}; "
        f"max |diff| {finite.max().item() if finite.numel() else float('nan'):.3g}; "
        f"first at {first}: actual {a[first].item()!r} expected {e[first].item()!r}"
    )


def assert_close_dtype(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, what: str = "") -> None:
    """assert_close with the tolerance for `dtype` (see TOLERANCES), scaled to the oracle's magnitude."""
    tol = TOLERANCES[dtype]
    scale = max(1.0, float(expected.detach().abs().max())) if expected.numel() else 1.0
    assert_close(actual, expected, atol=tol["atol"] * scale, rtol=tol["rtol"], what=what)


# Kernel and fp32 oracle both compute in fp32, in different orders, and the kernel rounds once to its output dtype.
# So a low-precision output may differ from the oracle rounded the same way by one ulp of that dtype, where the two
# fp32 values straddle a rounding midpoint (relative ulp: 2**-10 for fp16, 2**-7 for bf16). Near zero, where sums
# of signed taps cancel, the fp32 orders themselves differ by a few fp32 ulps of the inputs: ROUNDED_ATOL (times the
# largest magnitude involved) covers that, about 16 fp32 ulps.
ROUNDED_RTOL = {torch.float16: 2.0**-10, torch.bfloat16: 2.0**-7}
ROUNDED_ATOL = 2.0**-18


def assert_close_rounded(actual: torch.Tensor, expected_fp32: torch.Tensor, what: str = "") -> None:
    """assert_close of an fp16/bf16 output against the fp32 oracle rounded once to that dtype (see ROUNDED_RTOL)."""
    finite = expected_fp32.detach().abs()[torch.isfinite(expected_fp32)]
    scale = max(1.0, float(finite.max())) if finite.numel() else 1.0
    assert_close(
        actual, expected_fp32.to(actual.dtype), atol=ROUNDED_ATOL * scale, rtol=ROUNDED_RTOL[actual.dtype], what=what
    )
