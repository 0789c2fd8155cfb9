"""scikit-learn's bundled 8x8 handwritten digits (1797 images, no download), upsampled to RGB."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from hansbench.datasets._helpers import CleanData, Configurable, boxes_from_masks, check_sizes, generator
from hansbench.registry import datasets

N_AVAILABLE = 1797


@datasets.register("digits")
class Digits(Configurable):
    """scikit-learn's 8x8 handwritten digits (classes "0".."9"), bilinearly upsampled to RGB; no download.

    Options: ``background``: ``"black"`` (white ink on black, as the data) or ``"colour"``
    (a seeded random colour per image behind the ink, so colour carries no class signal).
    Train and test are disjoint parts of one seeded permutation; requests beyond 1797
    images are scaled down with a warning.
    """

    kind = "dataset"
    def __init__(self, background: str = "black"):
        self.background = background
        if self.background not in ("black", "colour"):
            raise ValueError(f"digits: background must be 'black' or 'colour', got {self.background!r}")

    def class_names(self) -> list[str]:
        """The class names, without loading any image."""
        return [str(d) for d in range(10)]

    def load(self, image_size: int, n_train: int, n_test: int, seed: int) -> CleanData:
        from sklearn.datasets import load_digits  # lazy: keeps `import hansbench` light

        check_sizes(image_size, n_train, n_test, seed)
        if n_train + n_test > N_AVAILABLE:
            keep_train = max(1, min(N_AVAILABLE - 1, round(N_AVAILABLE * n_train / (n_train + n_test))))
            warnings.warn(f"digits has {N_AVAILABLE} images but n_train + n_test = {n_train} + {n_test} were "
                          f"requested; using n_train={keep_train}, n_test={N_AVAILABLE - keep_train}", stacklevel=2)
            n_train, n_test = keep_train, N_AVAILABLE - keep_train
        bunch = load_digits()
        grey = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # [1797, 1, 8, 8]
        labels = torch.as_tensor(bunch.target, dtype=torch.int64)
        order = torch.randperm(len(labels), generator=generator(seed, "digits", "split"))
        parts = {"train": order[:n_train], "test": order[n_train:n_train + n_test]}
        out = {}
        for part, idx in parts.items():
            ink = F.interpolate(grey[idx], size=(image_size, image_size), mode="bilinear", align_corners=False)
            ink = ink.clamp(0, 1)
            if self.background == "colour":
                g = generator(seed, "digits", part, "background")
                bg = 0.6 * torch.rand(len(idx), 3, 1, 1, generator=g)
                images = bg + (1 - bg) * ink  # ink stays white, so the post-it's yellow is still foreign
            else:
                images = ink.expand(-1, 3, -1, -1)
            out[part] = (images.contiguous(), labels[idx], boxes_from_masks(ink[:, 0] > 0.25))
        return CleanData(out["train"][0], out["train"][1], out["test"][0], out["test"][1],
                         [str(d) for d in range(10)], out["train"][2], out["test"][2])
