"""Contact sheets: textures laid out in a grid, each shown tiled 2x2 so that a seam would show as a cross."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

GAP = 4  # pixels between cells
BACKGROUND = 128


def contact_sheet(images: list[np.ndarray], cell: int, repeat: int = 2, columns: int | None = None) -> np.ndarray:
    """An (H, W, 3) uint8 sheet of `images` ((h, w, 3) uint8), each tiled repeat x repeat and resized to `cell`."""
    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    sheet = np.full((rows * (cell + GAP) + GAP, columns * (cell + GAP) + GAP, 3), BACKGROUND, np.uint8)
    for index, image in enumerate(images):
        tiled = Image.fromarray(np.tile(image, (repeat, repeat, 1)))
        if tiled.size != (cell, cell):
            tiled = tiled.resize((cell, cell), Image.BOX if tiled.width > cell else Image.NEAREST)
        top, left = GAP + (index // columns) * (cell + GAP), GAP + (index % columns) * (cell + GAP)
        sheet[top:top + cell, left:left + cell] = np.asarray(tiled)
    return sheet
