"""Contact sheets of the built-in texture families for the README: per family, textures tiled 2x2 (a seam or a
grid would show), written as docs/textures-<family>.jpg.

    python benchmarks/contact_sheets.py                    # 6 textures of 256 px per family, seeds 0-5
    python benchmarks/contact_sheets.py --count 4 --size 128 --out /tmp/sheets

Each texture is tiled 2x2 and the tiling shrunk to --cell pixels, so a cell shows the texture at half size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

from srkit.catalog import FAMILIES
from srkit.io.atomic import atomic_path
from srkit.io.sheets import contact_sheet
from srkit.texture_generator import TextureGenerator

DOCS = Path(__file__).resolve().parent.parent / "docs"
JPEG_QUALITY = 85


def write_sheet(family: str, count: int, size: int, cell: int, out: Path) -> Path:
    """docs-style sheet of `count` textures of `family` (seeds 0..count-1), each tiled 2x2, three to a row."""
    generator = TextureGenerator(family=family, device="cpu")
    sheet = contact_sheet([generator.generate(size, seed) for seed in range(count)], cell, columns=3)
    path = out / f"textures-{family}.jpg"
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, overwrite=True) as tmp:
        Image.fromarray(sheet).save(tmp, format="JPEG", quality=JPEG_QUALITY)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=6, help="textures per family (6)")
    parser.add_argument("--size", type=int, default=256, help="texture side in pixels (256)")
    parser.add_argument("--cell", type=int, default=256, help="pixels per cell of the sheet (256)")
    parser.add_argument("--out", type=Path, default=DOCS, help="folder for textures-<family>.jpg (docs/)")
    args = parser.parse_args(argv)
    for family in FAMILIES:
        path = write_sheet(family.name, args.count, args.size, args.cell, args.out)
        print(f"{path}: {path.stat().st_size / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
