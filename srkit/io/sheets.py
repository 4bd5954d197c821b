"""Contact sheets: images laid out in a grid; textures shown tiled 2x2 so that a seam would show as a cross."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

GAP = 4  # pixels between cells
BACKGROUND = 128


def _cell(image: np.ndarray, cell: int, repeat: int) -> np.ndarray:
    """(cell, cell, 3) uint8: `image` tiled repeat x repeat and resized (box filter down, nearest up)."""
    tiled = Image.fromarray(np.tile(image, (repeat, repeat, 1)))
    if tiled.size != (cell, cell):
        tiled = tiled.resize((cell, cell), Image.Resampling.BOX if tiled.width > cell else Image.Resampling.NEAREST)
    return np.asarray(tiled)


def _grid(cells: Sequence[np.ndarray | None], columns: int, cell: int) -> np.ndarray:
    """(cell, cell, 3) cells in rows of `columns`, GAP pixels apart on a grey background (None: left empty)."""
    rows = math.ceil(len(cells) / columns)
    sheet = np.full((rows * (cell + GAP) + GAP, columns * (cell + GAP) + GAP, 3), BACKGROUND, np.uint8)
    for index, image in enumerate(cells):
        top, left = GAP + (index // columns) * (cell + GAP), GAP + (index % columns) * (cell + GAP)
        if image is not None:
            sheet[top : top + cell, left : left + cell] = image
    return sheet


def contact_sheet(images: list[np.ndarray], cell: int, repeat: int = 2, columns: int | None = None) -> np.ndarray:
    """An (H, W, 3) uint8 sheet of `images` ((h, w, 3) uint8), each tiled repeat x repeat and resized to `cell`."""
    cells = [_cell(image, cell, repeat) for image in images]
    return _grid(cells, columns or math.ceil(math.sqrt(len(images))), cell)


def material_sheet(textures: list[np.ndarray], renders: list[np.ndarray | None], cell: int) -> np.ndarray:
    """Pairs side by side: each texture tiled 2x2, then its lit (cell, cell, 3) render (None: an empty cell)."""
    pairs = [part for texture, render in zip(textures, renders) for part in (_cell(texture, cell, 2), render)]
    return _grid(pairs, 2 * math.ceil(math.sqrt(len(textures))), cell)
