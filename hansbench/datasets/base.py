"""Data containers shared by datasets, scenarios, models, methods and metrics.

Images are kept in [0, 1] (float32, ``[N, C, H, W]``); a model normalises them with
its own ``normalize``. Every sample carries its ground truth (``poisoned`` and the
pixel ``masks`` of the artifact) so that metrics can score methods; methods never see it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch


@dataclass
class Split:
    """One set of samples with ground truth.

    ``labels`` are what the model is trained/tested against (relabelled for backdoors);
    ``true_labels`` are the classes the images really show.
    """

    images: torch.Tensor  # [N, C, H, W] float32 in [0, 1]
    labels: torch.Tensor  # [N] int64
    true_labels: torch.Tensor  # [N] int64
    poisoned: torch.Tensor  # [N] bool: the artifact was stamped on this image
    masks: torch.Tensor  # [N, H, W] bool: pixels the artifact changed

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        for name in ("labels", "true_labels", "poisoned", "masks"):
            if getattr(self, name).shape[0] != n:
                raise ValueError(f"Split.{name} has {getattr(self, name).shape[0]} rows, images have {n}")

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: torch.Tensor) -> Split:
        """The samples at ``index`` (a bool mask or integer indices)."""
        return Split(*(getattr(self, f)[index] for f in ("images", "labels", "true_labels", "poisoned", "masks")))

    def of_class(self, cls: int, *, by: str = "labels") -> torch.Tensor:
        """Integer indices of the samples whose ``by`` (labels or true_labels) equals ``cls``."""
        return torch.nonzero(getattr(self, by) == cls).flatten()


@dataclass
class ScenarioData:
    """A poisoned training set and the two test sets of PRP Sec. V-A.

    ``affected_class``: the class whose images carry the artifact (stop).
    ``target_class``: for backdoors, the class they are relabelled to; else ``None``.
    ``inspect_class``: the class whose training maps are clustered (CH: affected, BD: target).
    """

    name: str
    train: Split
    artifact_test: Split  # artifact on 100 % of the affected class's test images
    clean_test: Split  # no artifact anywhere
    class_names: list[str]
    affected_class: int
    target_class: int | None = None
    artifact: str = ""
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)  # per-channel input normalisation of the models
    std: tuple[float, ...] = (0.25, 0.25, 0.25)
    meta: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def inspect_class(self) -> int:
        return self.affected_class if self.target_class is None else self.target_class

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])

    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "artifact_test": self.artifact_test, "clean_test": self.clean_test}

    def with_train(self, train: Split) -> ScenarioData:
        """The same scenario with another training set (data cleaning)."""
        return replace(self, train=train)
