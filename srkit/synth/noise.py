"""Classic procedural textures: periodic Perlin, simplex and value noise, with octaves and colour maps.

Each method reads a lattice of random gradients (Perlin, simplex) or values (value noise) whose indices wrap
around, so the field is periodic over the image: it tiles without a seam, at any size. Simplex noise uses a
triangular lattice whose rows repeat after 2m rows (m*sqrt(3) units, the nearest to the cell count across), so
its cells are stretched by at most a few per cent to fit the square. Octaves add the noise at twice the
frequency and `persistence` times the amplitude. A colour map turns the field into RGB after ranking its
values (every method then spans the whole map); `palette_from_image` makes a map from an exemplar, which
gives the noise that exemplar's colour distribution ("matched colours").
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

METHODS = ("perlin", "simplex", "value")
SQRT3 = math.sqrt(3.0)
SIMPLEX_RADIUS2 = 0.75  # squared kernel radius for unit triangles: zero at the hexagon around each vertex
PALETTE_SIZE = 256
BAND_TEXELS = 1 << 16  # texels per band of the field's evaluation and of the colouring
# Colour maps: stops (position in [0, 1], RGB 0..255), linearly interpolated.
COLORMAPS: dict[str, tuple[tuple[float, tuple[int, int, int]], ...]] = {
    "gray": ((0.0, (0, 0, 0)), (1.0, (255, 255, 255))),
    "wood": ((0.0, (92, 52, 22)), (0.45, (150, 94, 48)), (0.8, (196, 140, 84)), (1.0, (222, 178, 120))),
    "stone": ((0.0, (58, 56, 54)), (0.5, (122, 118, 110)), (0.85, (170, 164, 152)), (1.0, (206, 200, 188))),
    "grass": ((0.0, (26, 58, 18)), (0.5, (64, 118, 36)), (1.0, (150, 186, 84))),
    "sand": ((0.0, (150, 120, 80)), (0.6, (210, 182, 130)), (1.0, (240, 222, 180))),
    "lava": ((0.0, (20, 0, 0)), (0.45, (150, 20, 0)), (0.8, (250, 120, 0)), (1.0, (255, 240, 120))),
    "water": ((0.0, (0, 24, 64)), (0.6, (20, 90, 160)), (1.0, (170, 220, 250))),
}

Corner = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _fade(t: np.ndarray) -> np.ndarray:
    """Perlin's quintic 6t^5 - 15t^4 + 10t^3: zero first and second derivatives at lattice lines."""
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def _square_lattice(x: np.ndarray, y: np.ndarray, shape: tuple[int, int], corner: Corner) -> np.ndarray:
    """Blend corner(row, col, dx, dy) of the four lattice points around each (x, y), indices wrapped to `shape`."""
    rows, cols = shape
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    ix, iy = x0.astype(np.int64), y0.astype(np.int64)
    c00, c10 = corner(iy % rows, ix % cols, fx, fy), corner(iy % rows, (ix + 1) % cols, fx - 1, fy)
    c01, c11 = corner((iy + 1) % rows, ix % cols, fx, fy - 1), corner((iy + 1) % rows, (ix + 1) % cols, fx - 1, fy - 1)
    u, v = _fade(fx), _fade(fy)
    top, bottom = c00 + u * (c10 - c00), c01 + u * (c11 - c01)
    return top + v * (bottom - top)


def perlin_at(x: np.ndarray, y: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Perlin gradient noise at (x, y) in cell units; `gradients` (rows, cols, 2) sets the periods (cols, rows)."""
    return _square_lattice(
        x, y, gradients.shape[:2], lambda r, c, dx, dy: gradients[r, c, 0] * dx + gradients[r, c, 1] * dy
    )


def value_at(x: np.ndarray, y: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Value noise at (x, y) in cell units: lattice `values` (rows, cols) blended smoothly, periods (cols, rows)."""
    return _square_lattice(x, y, values.shape, lambda r, c, dx, dy: values[r, c])


def simplex_at(x: np.ndarray, y: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Simplex noise at (x, y) on the unit triangular lattice (i + j/2, j*sqrt(3)/2).

    `gradients` (2m, cols, 2) hold one gradient per vertex of a period: the field repeats after `cols` units
    along x and m*sqrt(3) along y (the lattice vector (-m, 2m)), so vertex (i, j) reads the gradient of
    (i + m*q mod cols, j - 2m*q) with q = floor(j / 2m).
    """
    rows, cols = gradients.shape[:2]
    v = y * (2.0 / SQRT3)
    u = x - v / 2.0
    i0, j0 = np.floor(u), np.floor(v)
    upper = ((u - i0) + (v - j0)) > 1.0  # which of the rhombus's two triangles holds the point
    total = np.zeros(np.broadcast(x, y).shape)
    for di, dj in ((1, 0), (0, 1), (upper, upper)):
        i, j = (i0 + di).astype(np.int64), (j0 + dj).astype(np.int64)
        dx, dy = x - (i + j / 2.0), y - j * (SQRT3 / 2.0)
        falloff = np.maximum(SIMPLEX_RADIUS2 - dx * dx - dy * dy, 0.0)
        q = np.floor_divide(j, rows)
        g = gradients[j - rows * q, (i + (rows // 2) * q) % cols]
        total += falloff**4 * (g[..., 0] * dx + g[..., 1] * dy)
    return total


def _unit_vectors(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(0.0, 2.0 * math.pi, shape)
    return np.stack([np.cos(angle), np.sin(angle)], axis=-1)


def _octave(
    method: str, height: int, width: int, cells: float, rng: np.random.Generator
) -> Callable[[int, int], np.ndarray]:
    """One octave, its random lattice drawn now: `cells` lattice cells across the longer side, a whole number along
    each side (>= 1); returns rows(start, stop), the octave's values on those rows."""
    longer = max(height, width)
    across, down = max(1, round(cells * width / longer)), max(1, round(cells * height / longer))
    shift = rng.uniform(0.0, 4.0, 2)  # in cells: the image border falls at a random place, not on a lattice line
    x = ((np.arange(width) + 0.5) * across / width + shift[0])[None, :]
    if method == "simplex":
        lattice = 2 * max(1, round(down / SQRT3))
        y = ((np.arange(height) + 0.5) * (lattice / 2 * SQRT3) / height + shift[1])[:, None]
        gradients = _unit_vectors((lattice, across), rng)
        return lambda start, stop: simplex_at(x, y[start:stop], gradients)
    y = ((np.arange(height) + 0.5) * down / height + shift[1])[:, None]
    if method == "perlin":
        gradients = _unit_vectors((down, across), rng)
        return lambda start, stop: perlin_at(x, y[start:stop], gradients)
    values = rng.uniform(-1.0, 1.0, (down, across))
    return lambda start, stop: value_at(x, y[start:stop], values)


def noise_field(
    method: str,
    height: int,
    width: int,
    seed: int,
    frequency: float = 4,
    octaves: int = 4,
    persistence: float = 0.5,
    band_rows: int | None = None,
) -> np.ndarray:
    """A periodic (height, width) float64 field: `octaves` octaves from `frequency` cells across, summed.

    Each octave is evaluated `band_rows` rows at a time (by default about BAND_TEXELS texels), so its
    temporaries are a band's, not the field's; every value is computed as on the whole field."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    rng = np.random.default_rng(seed)
    total = np.zeros((height, width))
    step = band_rows or max(1, BAND_TEXELS // max(width, 1))
    for octave in range(octaves):
        rows = _octave(method, height, width, frequency * 2**octave, rng)
        for start in range(0, height, step):
            total[start : start + step] += persistence**octave * rows(start, min(start + step, height))
    return total


def colormap_palette(name: str, size: int = PALETTE_SIZE) -> np.ndarray:
    """(size, 3) colours in [0, 1] of a named colour map (see COLORMAPS)."""
    if name not in COLORMAPS:
        raise ValueError(f"colour map must be one of {', '.join(COLORMAPS)}, got {name!r}")
    stops = COLORMAPS[name]
    positions = np.linspace(0.0, 1.0, size)
    where = [p for p, _ in stops]
    return np.stack([np.interp(positions, where, [c[k] for _, c in stops]) for k in range(3)], axis=1) / 255.0


def palette_from_image(pixels: np.ndarray, size: int = PALETTE_SIZE) -> np.ndarray:
    """(size, 3) colours in [0, 1] of an (..., 3) image in [0, 1], darkest to brightest: the mean colour of each
    of `size` equal-count luminance bins (a ranked field coloured with it has the image's colour distribution)."""
    colours = np.asarray(pixels, np.float64).reshape(-1, 3)
    order = np.argsort(colours @ np.array([0.2126, 0.7152, 0.0722]), kind="stable")
    return np.stack([part.mean(axis=0) for part in np.array_split(colours[order], size)])


def colorize(field: np.ndarray, palette: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1], or uint8 codes (rounded half up) with `dtype=np.uint8`: each value's rank
    in the field picks a colour along `palette`.

    The ranks are those of np.linspace(0, len(palette) - 1, H * W) over the field's stable sort order, made
    BAND_TEXELS at a time and written through the order, so no full-size float image (nor rank array) exists."""
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.uint8)):
        raise ValueError(f"colorize makes float32 or uint8 images, not {np.dtype(dtype)}")
    order = np.argsort(field, axis=None, kind="stable")
    out = np.empty((field.size, 3), dtype)
    last = len(palette) - 1
    step = last / (field.size - 1) if field.size > 1 else 0.0
    index = np.arange(len(palette))
    for start in range(0, field.size, BAND_TEXELS):
        stop = min(start + BAND_TEXELS, field.size)
        ranks = np.arange(start, stop, dtype=np.float64) * step
        if stop == field.size and field.size > 1:
            ranks[-1] = last  # linspace's end point is exact
        for k in range(3):
            colour = np.interp(ranks, index, palette[:, k]).astype(np.float32)
            if dtype == np.uint8:
                colour = np.floor(np.clip(colour, 0.0, 1.0) * 255.0 + 0.5)
            out[order[start:stop], k] = colour
    return out.reshape(*field.shape, 3)


def noise_texture(
    method: str,
    size: int,
    seed: int,
    palette: np.ndarray,
    frequency: float = 4,
    octaves: int = 4,
    dtype: type = np.float32,
) -> np.ndarray:
    """A seamless (size, size, 3) texture: a periodic noise field coloured by `palette`, float32 in [0, 1] or
    uint8 codes (`dtype`)."""
    return colorize(noise_field(method, size, size, seed, frequency, octaves), palette, dtype)
