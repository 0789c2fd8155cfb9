"""Artifacts: things stamped on images that a model may learn as a shortcut.

Every artifact implements ``stamp(images, boxes, generator) -> (stamped, masks)``:
``images [N, 3, H, W]`` in [0, 1] on any device, optional object ``boxes [N, 4]``
(``x0, y0, x1, y1`` pixels), a CPU ``torch.Generator`` for per-image jitter. ``masks
[N, H, W]`` bool are exactly the pixels the artifact changed ((stamped != images).any(1)),
except ``blend``, whose mask is the pixels changed by more than its ``tol``. All work is
batched over N. Options are ``__init__`` keywords with defaults (docs/plugins.md), checked there.
"""

from __future__ import annotations

import torch

from hansbench.datasets._helpers import Configurable, coverage, fixed_text, generator, sd_glyphs
from hansbench.registry import artifacts

Tensor = torch.Tensor

CORNERS = ("bottom-right", "bottom-left", "top-right", "top-left")


class Artifact(Configurable):
    """Base: ``options`` / ``repr`` from the ``__init__`` keywords, and the shared checks of ``stamp``."""

    kind = "artifact"

    def stamp(self, images: Tensor, boxes: Tensor | None, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    @staticmethod
    def _check(images: Tensor, boxes: Tensor | None) -> Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"artifacts stamp [N, 3, H, W] images, got shape {tuple(images.shape)}")
        n, _, h, w = images.shape
        if boxes is None:
            return torch.tensor([[0.0, 0.0, w, h]], device=images.device).expand(n, 4)
        if boxes.shape != (n, 4):
            raise ValueError(f"boxes must be [N, 4] = ({n}, 4), got {tuple(boxes.shape)}")
        return boxes.to(images.device, torch.float32)

    def _check_corner(self) -> None:
        if self.corner not in CORNERS:
            raise ValueError(f"{self.name}: corner must be one of {', '.join(CORNERS)}, got {self.corner!r}")

    @staticmethod
    def _changed(stamped: Tensor, images: Tensor) -> Tensor:
        return (stamped != images).any(1)


def _rand(generator: torch.Generator, n: int, device: torch.device) -> Tensor:
    """Uniform draws from a generator on any device, moved to the images' device."""
    return torch.rand(n, generator=generator, device=generator.device).to(device)


def _corner_origin(corner: str, h: int, w: int, ph: int, pw: int, margin: int) -> tuple[int, int]:
    top = margin if corner.startswith("top") else h - margin - ph
    left = margin if corner.endswith("left") else w - margin - pw
    return max(top, 0), max(left, 0)


@artifacts.register("postit")
class PostIt(Artifact):
    """Yellow square at the bottom of the object box, like the post-it note of PRP Fig. 5.

    ``size``: side as a fraction of the box width (at least ``min_px`` pixels);
    ``margin``: gap to the box bottom as a fraction of the box height; ``jitter``: random
    horizontal offset as a fraction of the box width; ``colour``: RGB in [0, 1].
    """

    def __init__(self, size: float = 0.18, min_px: int = 3, margin: float = 0.08, jitter: float = 0.1,
                 colour: tuple[float, float, float] = (1.0, 0.88, 0.12)):
        self.size, self.min_px, self.margin, self.jitter, self.colour = size, min_px, margin, jitter, colour
        if not 0 < self.size <= 1 or not 0 <= self.margin < 1 or not 0 <= self.jitter <= 0.5:
            raise ValueError("postit: need 0 < size <= 1, 0 <= margin < 1 and 0 <= jitter <= 0.5 "
                             f"(fractions of the object box), got {self.options}")
        if len(self.colour) != 3 or not all(0 <= c <= 1 for c in self.colour):
            raise ValueError(f"postit: colour must be 3 values in [0, 1], got {self.colour!r}")

    def stamp(self, images: Tensor, boxes: Tensor | None, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        boxes = self._check(images, boxes)
        n, _, h, w = images.shape
        x0, y0, x1, y1 = boxes.unbind(1)
        bw, bh = x1 - x0, y1 - y0
        side = torch.round(self.size * bw).clamp(min=self.min_px, max=min(h, w))
        centre = (x0 + x1) / 2 + (2 * _rand(generator, n, images.device) - 1) * self.jitter * bw
        left = torch.round(centre - side / 2)
        left = torch.minimum(left.clamp(min=0), w - side)
        bottom = torch.round(y1 - self.margin * bh)
        top = torch.minimum((bottom - side).clamp(min=0), h - side)
        xs = torch.arange(w, device=images.device).view(1, 1, w)
        ys = torch.arange(h, device=images.device).view(1, h, 1)
        left, top, side = left.view(-1, 1, 1), top.view(-1, 1, 1), side.view(-1, 1, 1)
        square = (xs >= left) & (xs < left + side) & (ys >= top) & (ys < top + side)
        colour = torch.tensor(self.colour, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        stamped = torch.where(square.unsqueeze(1), colour, images)
        return stamped, self._changed(stamped, images)


@artifacts.register("watermark")
class Watermark(Artifact):
    """Semi-transparent text-like strokes in a corner, like a photographer's watermark.

    ``text``: characters drawn as seven-segment glyphs; ``height``: glyph height as a
    fraction of the image side; ``alpha``: opacity; ``corner``; ``colour``. The same
    pattern on every image (a watermark is fixed), so ``generator`` is not used.
    """

    def __init__(self, text: str = "PHOTO", height: float = 0.16, alpha: float = 0.55, corner: str = "bottom-right",
                 colour: tuple[float, float, float] = (1.0, 1.0, 1.0)):
        self.text, self.height, self.alpha, self.corner, self.colour = text, height, alpha, corner, colour
        self._check_corner()
        fixed_text(1, self.text)  # raises for characters without a glyph
        if not 0 < self.alpha <= 1 or not 0 < self.height <= 0.5 or not self.text.strip():
            raise ValueError(f"watermark: need non-blank text, 0 < alpha <= 1, 0 < height <= 0.5; got {self.options}")

    def pattern(self, h: int, w: int, device: torch.device | str | None = None) -> Tensor:
        """Opacity ``[H, W]`` of the watermark on an ``h`` x ``w`` image."""
        gh = max(self.height * min(h, w), 5.0)  # glyph height in pixels
        gw, stroke, pitch = 0.55 * gh, max(0.14 * gh, 1.0), 0.85 * gh
        tw, th = pitch * (len(self.text) - 1) + gw + stroke, gh + stroke
        margin = max(1, round(0.04 * min(h, w)))
        top, left = _corner_origin(self.corner, h, w, round(th), round(tw), margin)
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5).view(1, 1, w).expand(1, h, w)
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5).view(1, h, 1).expand(1, h, w)
        centres = [(left + stroke / 2 + gw / 2 + i * pitch, top + th / 2) for i in range(len(self.text))]
        d = sd_glyphs(xs, ys, fixed_text(1, self.text), centres, gw, gh, stroke)
        return coverage(d, torch.ones(1, device=device))[0] * self.alpha

    def stamp(self, images: Tensor, boxes: Tensor | None, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        self._check(images, boxes)
        a = self.pattern(images.shape[2], images.shape[3], images.device).to(images.dtype)
        colour = torch.tensor(self.colour, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        stamped = images * (1 - a) + colour * a
        return stamped, self._changed(stamped, images)


@artifacts.register("badnets")
class BadNets(Artifact):
    """Small black-and-white checkerboard patch in a corner: the BadNets backdoor trigger.

    ``size``: patch side as a fraction of the image side (at least 3 pixels);
    ``cells``: checkerboard cells per side; ``corner``; ``margin`` in pixels.
    """

    def __init__(self, size: float = 0.1, cells: int = 3, corner: str = "bottom-right", margin: int = 1):
        self.size, self.cells, self.corner, self.margin = size, cells, corner, margin
        self._check_corner()
        if not 0 < self.size <= 0.5 or int(self.cells) < 2 or self.margin < 0:
            raise ValueError(f"badnets: need 0 < size <= 0.5, cells >= 2, margin >= 0; got {self.options}")

    def pattern(self, h: int, w: int, device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
        """``(inside [H, W] bool, value [H, W] in {0, 1})`` of the trigger."""
        p = max(3, round(self.size * min(h, w)))
        top, left = _corner_origin(self.corner, h, w, p, p, self.margin)
        ys = torch.arange(h, device=device).view(h, 1) - top
        xs = torch.arange(w, device=device).view(1, w) - left
        inside = (ys >= 0) & (ys < p) & (xs >= 0) & (xs < p)
        cell = (ys.clamp(0, p - 1) * self.cells // p + xs.clamp(0, p - 1) * self.cells // p) % 2
        return inside, (cell == 0).float()

    def stamp(self, images: Tensor, boxes: Tensor | None, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        self._check(images, boxes)
        inside, value = self.pattern(images.shape[2], images.shape[3], images.device)
        stamped = torch.where(inside, value.to(images.dtype), images)
        return stamped, self._changed(stamped, images)


@artifacts.register("blend")
class Blend(Artifact):
    """A fixed seeded noise pattern blended over the whole image (Chen et al. 2017 blended injection).

    ``x' = (1 - alpha) x + alpha pattern``; ``seed`` fixes the pattern (the same trigger on
    every image); the mask is the pixels changed by more than ``tol`` in any channel
    (nearly all of them: the trigger covers the image).
    """

    def __init__(self, alpha: float = 0.1, seed: int = 0, tol: float = 1 / 255):
        self.alpha, self.seed, self.tol = alpha, seed, tol
        if not 0 < self.alpha <= 1 or self.tol < 0:
            raise ValueError(f"blend: need 0 < alpha <= 1 and tol >= 0, got {self.options}")

    def pattern(self, h: int, w: int, device: torch.device | str | None = None) -> Tensor:
        """The ``[3, H, W]`` noise trigger for this ``seed`` and size (drawn on the CPU, so identical on any device)."""
        # a derived stream: manual_seed(seed) would equal any other tensor drawn from that seed
        return torch.rand(3, h, w, generator=generator(int(self.seed), "blend-pattern")).to(device)

    def stamp(self, images: Tensor, boxes: Tensor | None, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        self._check(images, boxes)
        pattern = self.pattern(images.shape[2], images.shape[3], images.device).to(images.dtype)
        stamped = (1 - self.alpha) * images + self.alpha * pattern
        return stamped, ((stamped - images).abs() > self.tol).any(1)
