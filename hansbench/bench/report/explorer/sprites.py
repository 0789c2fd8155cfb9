"""Sprite sheets: all the training images of a class (or all their maps) in one PNG, a tile each, written once.

One file per kind of image instead of a thousand: a page of 1,000 images loads two or three PNGs, and the browser
cuts a tile out with ``background-position``. A sheet's file name carries the key of what it shows (the data or the
maps node's key, and this module's code), so a sheet already there is never written again, and a new one never
overwrites an old page's sheet.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from hansbench.bench.report.figures.maps import map_limit, map_rgb
from hansbench.methods.inputs import pool

SHEETS = "sprites"  # the sprite folder inside the explorer folder
VERSION = "2"  # bump when how a map tile is drawn changes (2: pooled to map_size, figures.maps.map_rgb)


def columns(n: int) -> int:
    """Tiles per row of a sheet of ``n`` tiles: about square."""
    return max(1, math.ceil(math.sqrt(max(n, 1))))


def image_tiles(images: torch.Tensor) -> np.ndarray:
    """``[N, C, H, W]`` images in [0, 1] as ``[N, H, W, 3]`` uint8 (a grey image repeated to RGB)."""
    x = images.detach().float().clamp(0, 1)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    return (x[:, :3].permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)


def pooled_maps(maps: torch.Tensor, settings: dict) -> torch.Tensor:
    """``[N, V, H, W]`` maps as the clusterer saw them: average-pooled to the suite's ``[clustering] map_size``
    (:func:`~hansbench.methods.inputs.pool`, ``settings`` the clustering's view settings), views summed:
    ``[N, s, s]`` float64. A tile of 11 px instead of 32 is a ninth of the sheet, and it is what was clustered."""
    return pool(maps.detach(), settings).double().sum(1)


def map_tiles(maps: torch.Tensor) -> np.ndarray:
    """``[N, H, W]`` maps as ``[N, H, W, 3]`` uint8 tiles, drawn by the figures' own :func:`~hansbench.bench.
    report.figures.maps.map_rgb` (each scaled to its own largest |relevance|, signed)."""
    return map_rgb(maps)


def unit_maps(maps: torch.Tensor) -> torch.Tensor:
    """``[N, H, W]`` maps each divided by its own largest |value| (the scale its tile is drawn at), so a cluster's
    mean map weighs each image alike."""
    return maps / torch.as_tensor(map_limit(maps))


def scales(maps: torch.Tensor) -> list[str]:
    """Each map's colour scale as the per-image view states it (``±`` this), as ``hansbench explain`` does:
    the largest |value|, two significant digits ("0": an all-zero map)."""
    return [f"{v:.2g}" for v in maps.abs().amax(dim=(-2, -1)).tolist()]


def sheet(tiles: np.ndarray) -> np.ndarray:
    """``[N, H, W, 3]`` tiles laid out row by row, :func:`columns` a row, as one ``[rows*H, cols*W, 3]`` image."""
    n, h, w = tiles.shape[:3]
    cols = columns(n)
    rows = max(1, math.ceil(n / cols))
    # the padding takes a tile's colour, so a map sheet keeps to the colour map's 256 colours (:func:`encoded`)
    out = np.empty((rows * h, cols * w, 3), dtype=np.uint8)
    out[:] = tiles[0, 0, 0] if n else 255
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * h:(r + 1) * h, c * w:(c + 1) * w] = tiles[i]
    return out


def encoded(rgb: np.ndarray):
    """``[H, W, 3]`` uint8 as a PIL image, a palette image where it has at most 256 colours (a map sheet: the
    colour map's entries), losslessly: a third of the bytes before compression, about half the file after."""
    from PIL import Image

    key = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    colours, index = np.unique(key, return_inverse=True)
    if len(colours) > 256:
        return Image.fromarray(rgb)
    out = Image.fromarray(index.reshape(key.shape).astype(np.uint8), mode="P")
    out.putpalette(np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], 1).astype(np.uint8).ravel().tolist())
    return out


def write_sheet(folder: Path, name: str, tiles: np.ndarray) -> dict:
    """Write ``tiles`` as ``folder/name`` unless that file is there (its name is its key); what a page needs to cut
    a tile out: the file, the tile size, the tiles a row and the count."""
    path = folder / name
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.png")
        encoded(sheet(tiles)).save(tmp, optimize=False, compress_level=9)
        tmp.replace(path)
    n, h, w = tiles.shape[:3]
    return {"file": f"{SHEETS}/{name}", "w": int(w), "h": int(h), "cols": columns(n), "n": int(n)}
