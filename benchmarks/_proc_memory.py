"""Resident memory of this process from /proc (Linux), for the memory benchmarks; no torch import."""

from __future__ import annotations


def status_bytes(field: str) -> int:
    """A byte count from /proc/self/status (VmRSS: resident now; VmHWM: peak resident since the last reset)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def reset_peak() -> None:
    """Restart the peak (VmHWM) from the resident size now, so earlier transients (imports) do not count."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
