"""Packaging: every package folder is listed in pyproject, so a non-editable install ships all of srkit."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_for_setuptools():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {
        ".".join(("srkit", *p.parent.relative_to(ROOT / "srkit").parts)).rstrip(".")
        for p in (ROOT / "srkit").rglob("__init__.py")
    }
    on_disk.add("srkit.kernels")
    assert config["package-dir"]["srkit.kernels"] == "kernels"
    assert on_disk == listed, f"missing from pyproject: {on_disk - listed}; stale: {listed - on_disk}"
