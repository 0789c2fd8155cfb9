"""Shared pieces of the dataset modules: the clean-data container, the options base class,
seeded generators and vectorised drawing primitives (signed distances on pixel grids).

Drawing works on whole batches: every shape is a signed distance ``d`` (negative
inside) evaluated on an ``[N, H, W]`` grid of sign-local coordinates, turned into an
anti-aliased coverage ``clamp(0.5 - d * pixels_per_unit, 0, 1)`` and alpha-composited.
No Python loop ever runs over pixels, and none over images.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from hansbench.options import options_of

Tensor = torch.Tensor


# --------------------------------------------------------------------------- containers


@dataclass
class CleanData:
    """What a dataset's ``load`` returns: clean images and labels, before any poisoning.

    Images ``[N, 3, H, W]`` float32 in [0, 1]; labels ``[N]`` int64 indices into
    ``class_names``. ``*_boxes`` are optional ``[N, 4]`` float32 pixel boxes
    ``(x0, y0, x1, y1)`` of the object (x1, y1 exclusive), so artifacts can sit on it.
    """

    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    class_names: list[str]
    train_boxes: Tensor | None = None
    test_boxes: Tensor | None = None

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            images, labels = getattr(self, f"{part}_images"), getattr(self, f"{part}_labels")
            boxes = getattr(self, f"{part}_boxes")
            if images.ndim != 4 or images.shape[1] != 3:
                raise ValueError(f"CleanData.{part}_images must be [N, 3, H, W], got {tuple(images.shape)}")
            if images.dtype != torch.float32 or labels.dtype != torch.int64:
                raise ValueError(f"CleanData.{part}: images must be float32 and labels int64, "
                                 f"got {images.dtype} and {labels.dtype}")
            if labels.shape != (images.shape[0],):
                raise ValueError(f"CleanData.{part}_labels has shape {tuple(labels.shape)}, "
                                 f"expected ({images.shape[0]},)")
            if boxes is not None and boxes.shape != (images.shape[0], 4):
                raise ValueError(f"CleanData.{part}_boxes has shape {tuple(boxes.shape)}, "
                                 f"expected ({images.shape[0]}, 4)")


class Configurable:
    """Base of the built-in datasets and artifacts: ``kind``, ``name``, ``version``, and ``options`` / ``repr``
    read from the subclass's ``__init__`` keywords (:mod:`hansbench.options`).

    Options are plain ``__init__`` keywords with defaults, each stored as the attribute of the same name
    and checked there (``ValueError`` with the fix), the convention of every plugin kind. A plugin need
    not subclass this: the framework reads any class's options from its signature.
    """

    kind: ClassVar[str] = "component"
    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"  # bump when the output for the same options changes (cache keys)

    @property
    def options(self) -> dict[str, Any]:
        """The options this instance runs with (every ``__init__`` keyword, defaults filled in)."""
        return options_of(self)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({opts})"


def check_sizes(image_size: int, n_train: int, n_test: int, seed: int, *, min_size: int = 8) -> None:
    """Clear errors for nonsense sizes, before any work."""
    if not isinstance(image_size, int) or image_size < min_size:
        raise ValueError(f"image_size must be an int >= {min_size}, got {image_size!r}")
    for label, n in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"{label} must be a positive int, got {n!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


# --------------------------------------------------------------------------- seeds


def derive_seed(seed: int, *stream: int | str) -> int:
    """A 63-bit seed for an independent stream ``stream`` of ``seed`` (no global RNG)."""
    key = [int(seed)] + [zlib.crc32(s.encode()) if isinstance(s, str) else int(s) for s in stream]
    hi, lo = np.random.SeedSequence(key).generate_state(2)
    return ((int(hi) << 32) | int(lo)) & 0x7FFF_FFFF_FFFF_FFFF


def generator(seed: int, *stream: int | str) -> torch.Generator:
    """A CPU ``torch.Generator`` for stream ``stream`` of ``seed``."""
    return torch.Generator().manual_seed(derive_seed(seed, *stream))


def uniform(gen: torch.Generator, n: int, low: float, high: float) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def choice(gen: torch.Generator, n: int, probs: list[float]) -> Tensor:
    """``n`` draws of indices with the given probabilities (int64)."""
    p = torch.tensor(probs, dtype=torch.float64)
    return torch.multinomial(p / p.sum(), n, replacement=True, generator=gen)


# --------------------------------------------------------------------------- geometry


def pixel_grid(h: int, w: int, device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates ``x [1, 1, W]`` and ``y [1, H, 1]``."""
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5).view(1, 1, w)
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5).view(1, h, 1)
    return xs, ys


def to_local(cx: Tensor, cy: Tensor, rx: Tensor, ry: Tensor, angle: Tensor, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Sign-local coordinates ``u, v [N, H, W]``: the object spans about [-1, 1]², v points down."""
    xs, ys = pixel_grid(h, w, cx.device)
    dx = xs - cx.view(-1, 1, 1)
    dy = ys - cy.view(-1, 1, 1)
    c, s = torch.cos(angle).view(-1, 1, 1), torch.sin(angle).view(-1, 1, 1)
    return (c * dx + s * dy) / rx.view(-1, 1, 1), (-s * dx + c * dy) / ry.view(-1, 1, 1)


def rotate(u: Tensor, v: Tensor, angle: Tensor | float) -> tuple[Tensor, Tensor]:
    """Coordinates of the same points in a frame rotated by ``angle`` (per image or scalar)."""
    if isinstance(angle, Tensor):
        c, s = torch.cos(angle).view(-1, 1, 1), torch.sin(angle).view(-1, 1, 1)
    else:
        c, s = math.cos(angle), math.sin(angle)
    return c * u + s * v, -s * u + c * v


def coverage(d: Tensor, ppu: Tensor) -> Tensor:
    """Anti-aliased coverage of a shape with signed distance ``d`` (sign units), ``ppu`` pixels per unit."""
    return (0.5 - d * ppu.view(-1, 1, 1)).clamp_(0.0, 1.0)


def sd_circle(u: Tensor, v: Tensor, r: float | Tensor = 1.0) -> Tensor:
    return torch.sqrt(u * u + v * v) - r


def sd_ngon(u: Tensor, v: Tensor, n: int, r: float = 1.0, offset: float = 0.0) -> Tensor:
    """Regular n-gon with circumradius ``r``; ``offset`` is the angle of the first edge normal."""
    apothem = r * math.cos(math.pi / n)
    d = None
    for k in range(n):  # n half-plane tests, each over the whole batch
        phi = offset + 2 * math.pi * k / n
        dk = u * math.cos(phi) + v * math.sin(phi) - apothem
        d = dk if d is None else torch.maximum(d, dk)
    return d


def sd_box(u: Tensor, v: Tensor, cx: float, cy: float, hw: float, hh: float) -> Tensor:
    return torch.maximum((u - cx).abs() - hw, (v - cy).abs() - hh)


def sd_segment(u: Tensor, v: Tensor, p: tuple[float, float], q: tuple[float, float], r: float) -> Tensor:
    """Capsule of half-thickness ``r`` around segment p-q."""
    px, py = p
    dx, dy = q[0] - px, q[1] - py
    t = (((u - px) * dx + (v - py) * dy) / (dx * dx + dy * dy + 1e-12)).clamp(0, 1)
    return torch.sqrt((u - px - t * dx) ** 2 + (v - py - t * dy) ** 2) - r


def sd_triangle(u: Tensor, v: Tensor, a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> Tensor:
    """Triangle from three vertices (any orientation), as the max of its edge half-planes."""
    pts = [a, b, c]
    area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    sign = 1.0 if area > 0 else -1.0
    d = None
    for i in range(3):
        (x0, y0), (x1, y1) = pts[i], pts[(i + 1) % 3]
        ex, ey = x1 - x0, y1 - y0
        length = math.hypot(ex, ey)
        nx, ny = sign * ey / length, -sign * ex / length  # outward normal
        dk = (u - x0) * nx + (v - y0) * ny
        d = dk if d is None else torch.maximum(d, dk)
    return d


def paint(images: Tensor, alpha: Tensor, colour: Tensor | tuple[float, float, float]) -> Tensor:
    """Alpha-composite ``colour`` ([N, 3] or [3]) with coverage ``alpha [N, H, W]`` onto ``images`` in place."""
    colour = torch.as_tensor(colour, dtype=images.dtype, device=images.device)
    colour = colour.view(-1, 3, 1, 1) if colour.ndim == 2 else colour.view(1, 3, 1, 1)
    a = alpha.unsqueeze(1)
    images.mul_(1 - a).add_(colour * a)
    return images


def boxes_from_masks(masks: Tensor) -> Tensor:
    """Tight pixel boxes ``(x0, y0, x1, y1)`` (x1, y1 exclusive) of ``[N, H, W]`` bool masks; empty -> whole image."""
    n, h, w = masks.shape
    rows, cols = masks.any(2), masks.any(1)
    empty = ~rows.any(1)
    ar_h = torch.arange(h, device=masks.device)
    ar_w = torch.arange(w, device=masks.device)
    big = max(h, w) + 1
    y0 = torch.where(rows, ar_h, big).amin(1)
    y1 = torch.where(rows, ar_h, -1).amax(1) + 1
    x0 = torch.where(cols, ar_w, big).amin(1)
    x1 = torch.where(cols, ar_w, -1).amax(1) + 1
    boxes = torch.stack([x0, y0, x1, y1], 1).float()
    whole = torch.tensor([0, 0, w, h], dtype=torch.float32, device=masks.device)
    return torch.where(empty.view(-1, 1), whole, boxes)


# --------------------------------------------------------------------------- text-like glyphs

# Seven-segment glyphs: a top, b top-right, c bottom-right, d bottom, e bottom-left, f top-left, g middle.
SEGMENTS = {
    "0": "abcdef", "1": "bc", "2": "abdeg", "3": "abcdg", "4": "bcfg", "5": "acdfg", "6": "acdefg",
    "7": "abc", "8": "abcdefg", "9": "abcdfg", "A": "abcefg", "B": "cdefg", "C": "adef", "D": "bcdeg",
    "E": "adefg", "F": "aefg", "H": "bcefg", "I": "ef", "L": "def", "M": "aceg", "N": "ceg", "O": "abcdef",
    "P": "abefg", "S": "acdfg", "T": "defg", "U": "bcdef", "Y": "bcdfg", " ": "", "-": "g",
}
_SEG_NAMES = "abcdefg"


def segment_table(text_chars: str) -> Tensor:
    """``[len(text_chars), 7]`` bool: which segments each character lights."""
    bad = sorted({ch for ch in text_chars if ch.upper() not in SEGMENTS})
    if bad:
        raise ValueError(f"characters {bad} cannot be drawn; supported: {''.join(sorted(SEGMENTS)).strip()}")
    return torch.tensor([[s in SEGMENTS[ch.upper()] for s in _SEG_NAMES] for ch in text_chars], dtype=torch.bool)


def sd_glyphs(u: Tensor, v: Tensor, lit: Tensor, centres: list[tuple[float, float]], width: float, height: float,
              stroke: float) -> Tensor:
    """Signed distance of per-image seven-segment text.

    ``lit [N, P, 7]`` bool says which segments of glyph position ``p`` (centred at
    ``centres[p]``) are lit in each image; unlit segments are pushed far outside.
    """
    hw, hh, t = width / 2, height / 2, stroke / 2
    boxes = {  # segment: (cx, cy, half-width, half-height)
        "a": (0, -hh, hw, t), "b": (hw, -hh / 2, t, hh / 2), "c": (hw, hh / 2, t, hh / 2),
        "d": (0, hh, hw, t), "e": (-hw, hh / 2, t, hh / 2), "f": (-hw, -hh / 2, t, hh / 2), "g": (0, 0, hw, t),
    }
    d = torch.full_like(u, 1e3)
    off = (~lit).float().mul(1e3).to(u.device)
    for p, (gx, gy) in enumerate(centres):
        for s_idx, s in enumerate(_SEG_NAMES):
            cx, cy, bw, bh = boxes[s]
            ds = sd_box(u, v, gx + cx, gy + cy, bw, bh) + off[:, p, s_idx].view(-1, 1, 1)
            d = torch.minimum(d, ds)
    return d


def random_text(gen: torch.Generator, n: int, alphabet: str, length: int) -> Tensor:
    """``[n, length, 7]`` lit segments of random strings over ``alphabet``."""
    table = segment_table(alphabet)
    idx = torch.randint(len(alphabet), (n, length), generator=gen)
    return table[idx]


def fixed_text(n: int, text: str) -> Tensor:
    """``[n, len(text), 7]`` lit segments of the same string for every image."""
    return segment_table(text).unsqueeze(0).expand(n, -1, -1)


def resize(images: Tensor, size: int) -> Tensor:
    """Antialiased bilinear resize of ``[N, C, H, W]`` to ``size``²."""
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
