"""The Decoy patch (DecoyMNIST/DecoyFMNIST): a small grey square in a corner, a shortcut to learn.

Ross, Hughes and Doshi-Velez 2017 ("Right for the right reasons") test whether a model learned the object or
this patch instead.

In DecoyMNIST every training image gets a 4 x 4 patch in a random corner whose grey level encodes its class
(255 - 25 y) and every test image one of a random grey. Here the patch is an artifact like the post-it: a
poisoning stamps it (``CH`` on a share of one class's training images: that class's Decoy level, the class's
shortcut), and the artifact test carries it on that class's test images while the clean test carries none.
"""

from __future__ import annotations

import torch

from hansbench.datasets.artifacts import CORNERS, Artifact, _corner_origin
from hansbench.registry import artifacts

Tensor = torch.Tensor


@artifacts.register("decoy")
class Decoy(Artifact):
    """A ``size`` x ``size`` pixel grey square in a corner: DecoyMNIST's class-indicative patch.

    ``size``: side in pixels (Ross et al.: 4 at 28 px); ``level``: grey value in [0, 1] (Ross et al.:
    (255 - 25 y) / 255 for class y); ``corner``: one of the four corners, or ``"random"`` (a seeded corner
    per image, as in Decoy); ``margin``: pixels between the patch and the image border.
    """

    def __init__(self, size: int = 4, level: float = 0.6, corner: str = "random", margin: int = 0):
        self.size, self.level, self.corner, self.margin = size, level, corner, margin
        if self.corner != "random":
            self._check_corner()
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"decoy: size is a side in pixels (an int >= 1), got {self.size!r}")
        if not 0 <= self.level <= 1 or isinstance(self.margin, bool) or not isinstance(self.margin, int) \
                or self.margin < 0:
            raise ValueError(f"decoy: need 0 <= level <= 1 and an int margin >= 0, got {self.options}")

    def stamp(self, images: Tensor, boxes: Tensor | None, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        self._check(images, boxes)
        n, _, h, w = images.shape
        if self.size + self.margin > min(h, w):
            raise ValueError(f"decoy: a {self.size} px patch with margin {self.margin} does not fit {h} x {w} "
                             "images; lower size")
        if self.corner == "random":
            which = torch.randint(len(CORNERS), (n,), generator=generator, device=generator.device).tolist()
        else:
            which = [CORNERS.index(self.corner)] * n
        inside = torch.zeros(n, h, w, dtype=torch.bool, device=images.device)
        for k, corner in enumerate(CORNERS):  # four slices, never a loop over images
            top, left = _corner_origin(corner, h, w, self.size, self.size, self.margin)
            rows = torch.tensor([c == k for c in which], device=images.device)
            inside[rows, top:top + self.size, left:left + self.size] = True
        stamped = torch.where(inside.unsqueeze(1), torch.tensor(self.level, dtype=images.dtype,
                                                                device=images.device), images)
        return stamped, self._changed(stamped, images)
