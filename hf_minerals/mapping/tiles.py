"""Tile geometry: where tiles sit, and which pixels each tile *owns* for area accounting.

Along each axis tiles start at 0, stride, 2*stride, ...; the last one is shifted back so it ends at
the image edge (no padding: padded black would read as gangue). Every pixel is owned by exactly one
tile - the one whose centre is nearest, boundaries halfway between neighbouring centres - so the
owned rectangles partition the image and area sums are exact. With stride == tile, each tile owns
its whole extent except the shifted edge tile, which owns only the strip no other tile covered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AxisTiles:
    """Tile starts and owned intervals [own_start, own_end) along one axis."""

    starts: np.ndarray
    own_start: np.ndarray
    own_end: np.ndarray


def axis_tiles(length: int, tile: int, stride: int) -> AxisTiles:
    """Tiles of size ``tile`` every ``stride`` px covering ``[0, length)``; ``tile <= length``, ``0 < stride <= tile``."""
    if not 0 < tile <= length:
        raise ValueError(f"tile {tile} must be in (0, {length}]")
    if not 0 < stride <= tile:
        raise ValueError(f"stride {stride} must be in (0, tile={tile}] (a larger stride leaves gaps)")
    k = -(-(length - tile) // stride)  # ceil: number of steps after the first tile
    starts = np.minimum(np.arange(k + 1) * stride, length - tile)
    bounds = starts[:-1] + (tile + stride) // 2  # halfway between centres of regular neighbours
    own_start = np.concatenate([[0], bounds])
    own_end = np.concatenate([bounds, [length]])
    return AxisTiles(starts.astype(np.int64), own_start.astype(np.int64), own_end.astype(np.int64))


@dataclass(frozen=True)
class TileGrid:
    """A separable grid of square tiles over a ``width`` x ``height`` image."""

    width: int
    height: int
    tile: int
    stride: int
    xs: AxisTiles
    ys: AxisTiles

    @classmethod
    def build(cls, width: int, height: int, tile: int, stride: int | None = None) -> TileGrid:
        stride = tile if stride is None else stride
        return cls(width, height, tile, stride, axis_tiles(width, tile, stride), axis_tiles(height, tile, stride))

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of tiles."""
        return len(self.ys.starts), len(self.xs.starts)

    def __len__(self) -> int:
        return self.shape[0] * self.shape[1]

    def boxes(self) -> np.ndarray:
        """(N, 4) tile extents x0, y0, x1, y1 in row-major tile order."""
        y, x = np.meshgrid(self.ys.starts, self.xs.starts, indexing="ij")
        return np.stack([x.ravel(), y.ravel(), x.ravel() + self.tile, y.ravel() + self.tile], 1)

    def owned_boxes(self) -> np.ndarray:
        """(N, 4) owned rectangles x0, y0, x1, y1 (a partition of the image), row-major tile order."""
        y0, x0 = np.meshgrid(self.ys.own_start, self.xs.own_start, indexing="ij")
        y1, x1 = np.meshgrid(self.ys.own_end, self.xs.own_end, indexing="ij")
        return np.stack([x0.ravel(), y0.ravel(), x1.ravel(), y1.ravel()], 1)
