"""The compile gate: every conv launch of the compact, RRDB and SPAN x4 plans, in fp16 and bf16, compiled for Hopper
(sm_90) without a GPU and read with the ptxas / cuobjdump that ship in the triton wheel.

The launches come from benchmarks/compile_report.py, run once per session in a process of its own (Triton compiles
there, not interprets). Thresholds are `srkit.kernels._sm90.GATE`: warpgroup tensor-core MMA, no spills, one
pipeline drain per output tile, and 3 CTAs per SM for the 64 -> 64 conv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from srkit.kernels import _sm90

ROOT = Path(__file__).resolve().parents[2]
GATED = {"plans": ("compact", "rrdb", "span"), "dtypes": ("fp16", "bf16")}
PTXAS = Path(_sm90.NVIDIA_BIN) / "ptxas"


# Compiles are about 1.5 s of CPU each (some 45 distinct launches); a machine shared with other work stretches the
# wall time far beyond that, hence a limit well above pyproject's per-test one.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def conv_rows(tmp_path_factory) -> list[dict]:
    """The compile report's rows for the conv launches of the gated plans (one per distinct specialisation): one
    process per dtype, side by side (compiles share nothing across dtypes)."""
    if not PTXAS.is_file():
        pytest.skip(f"this triton install has no {PTXAS.name} under {PTXAS.parent} (Linux x86-64 wheels ship it)")
    folder = tmp_path_factory.mktemp("sm90")
    env = {
        **os.environ,
        "TRITON_INTERPRET": "0",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    runs = {
        dtype: subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "compile_report.py"),
                "--plans",
                *GATED["plans"],
                "--dtypes",
                dtype,
                "--json",
                str(folder / f"{dtype}.json"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for dtype in GATED["dtypes"]
    }
    rows = []
    for dtype, run in runs.items():
        output = run.communicate()[0]
        assert run.returncode == 0, output[-4000:]
        rows += [
            row
            for row in json.loads((folder / f"{dtype}.json").read_text())["rows"]
            if row["launch"].startswith("conv")
        ]
    assert {(row["plan"], row["dtype"]) for row in rows} == {(p, d) for p in GATED["plans"] for d in GATED["dtypes"]}
    return rows


def _misses(rows: list[dict], bad) -> list[str]:
    return [f"{row['plan']} {row['dtype']} {row['launch']} ({row['config']})" for row in rows if bad(row)]


def test_every_conv_uses_warpgroup_mma(conv_rows):
    assert not _misses(conv_rows, lambda row: row["hgmma"] == 0 or row["hmma"] > 0)


def test_no_conv_spills(conv_rows):
    assert not _misses(conv_rows, lambda row: row["spill_stores"] + row["spill_loads"] > _sm90.GATE.max_spill_bytes)


def test_one_pipeline_drain_per_tile(conv_rows):
    assert not _misses(conv_rows, lambda row: row["drains"] > _sm90.GATE.max_drains)


def test_64_to_64_conv_fits_three_ctas_per_sm(conv_rows):
    body = [row for row in conv_rows if row["launch"].startswith("conv3x3 64->64")]
    assert {row["dtype"] for row in body} == set(GATED["dtypes"])
    assert not _misses(body, lambda row: row["ctas_per_sm"] < _sm90.GATE.min_ctas_64)


def test_gate_names_each_miss():
    """The gate's own arithmetic, on figures read from today's compile of the per-tap kernel (NOTES, issue 34)."""
    per_tap = _sm90.Compiled(
        registers=255,
        spill_stores=56,
        spill_loads=72,
        shared_bytes=73728,
        num_warps=4,
        num_stages=3,
        hgmma=72,
        hmma=0,
        drains=9,
        loops=9,
    )
    assert per_tap.ctas_per_sm == 2
    why = _sm90.GATE.failures(per_tap, 64, 64, 3)
    assert [reason.split()[0] for reason in why] == ["spills", "9", "2"]
    flat = _sm90.Compiled(
        registers=161,
        spill_stores=0,
        spill_loads=0,
        shared_bytes=49152,
        num_warps=4,
        num_stages=4,
        hgmma=4,
        hmma=0,
        drains=1,
        loops=1,
    )
    assert flat.ctas_per_sm == 3 and not _sm90.GATE.failures(flat, 64, 64, 3)
    assert _sm90.GATE.failures(_sm90.Compiled(96, 0, 0, 0, 4, 2, hgmma=0, hmma=0, drains=1, loops=1), 48, 48, 3)
