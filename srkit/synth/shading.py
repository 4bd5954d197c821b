"""Lit material previews: a PBR map set wrapped on a sphere under one directional light, seen head-on.

The sphere's visible half carries the texture SPHERE_TILES times across and SPHERE_TILES times from pole to pole
(so a seam would show), sampled at the nearest texel. The tangent-space normal (OpenGL, green up) is turned into
view space by the sphere's tangent (east) and bitangent (north). Shading is in linear light: albedo x ao x
(AMBIENT + Lambert) plus a normalised Blinn-Phong highlight (F0 = 0.04, exponent 2 / roughness^4 - 2), then
converted to sRGB; outside the sphere is BACKGROUND.
"""

from __future__ import annotations

import numpy as np

from .mipmaps import decode_normals, linear_to_srgb, srgb_to_linear

SPHERE_TILES = 2
LIGHT = np.array([-0.5, 0.6, 0.8]) / np.linalg.norm([-0.5, 0.6, 0.8])  # view space: x right, y up, z to the viewer
AMBIENT = 0.06
SPECULAR_F0 = 0.04
BACKGROUND = 0.05  # linear grey
MIN_ROUGHNESS = 0.05


def _sphere(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(size, size, 3) view-space positions on the unit sphere and the (size, size) mask of pixels it covers."""
    centre = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    x, y = np.meshgrid(centre * 1.04, -centre * 1.04)  # a small margin around the sphere
    inside = x**2 + y**2 < 1.0
    z = np.sqrt(np.maximum(1.0 - x**2 - y**2, 0.0))
    return np.stack([x, y, z], axis=-1), inside


def render_sphere(maps: dict[str, np.ndarray], size: int) -> np.ndarray:
    """A (size, size, 3) uint8 sRGB image of the material (albedo, normal, roughness, ao uint8 maps) on a sphere."""
    position, inside = _sphere(size)
    x, y, z = position[..., 0], position[..., 1], position[..., 2]
    longitude, latitude = np.arctan2(x, z), np.arcsin(np.clip(y, -1.0, 1.0))
    height, width = maps["albedo"].shape[:2]
    column = (np.floor((longitude / np.pi + 0.5) * SPHERE_TILES * width) % width).astype(int)
    row = (np.floor((0.5 - latitude / np.pi) * SPHERE_TILES * height) % height).astype(int)
    tangent = np.stack([np.cos(longitude), np.zeros_like(x), -np.sin(longitude)], axis=-1)
    bitangent = np.cross(position, tangent)
    local = decode_normals(maps["normal"][row, column])
    normal = local[..., :1] * tangent + local[..., 1:2] * bitangent + local[..., 2:] * position
    normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-9)
    albedo = srgb_to_linear(maps["albedo"][row, column, :3] / 255.0)
    ao = maps["ao"][row, column, None] / 255.0
    roughness = np.maximum(maps["roughness"][row, column] / 255.0, MIN_ROUGHNESS)
    lambert = np.maximum(normal @ LIGHT, 0.0)
    half = (LIGHT + np.array([0.0, 0.0, 1.0])) / np.linalg.norm(LIGHT + np.array([0.0, 0.0, 1.0]))
    exponent = 2.0 / roughness**4 - 2.0
    highlight = SPECULAR_F0 * (exponent + 8.0) / 8.0 * np.maximum(normal @ half, 0.0) ** exponent * lambert
    colour = albedo * ao * (AMBIENT + lambert[..., None]) + highlight[..., None]
    colour = np.where(inside[..., None], colour, BACKGROUND)
    return np.floor(linear_to_srgb(colour) * 255.0 + 0.5).astype(np.uint8)
