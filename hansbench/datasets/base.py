"""Data containers shared by datasets, scenarios, models, methods and metrics.

Images are kept in [0, 1] (float32, ``[N, C, H, W]``); a model normalises them with
its own ``normalize``. Every sample carries its ground truth (``poisoned`` and the
pixel ``masks`` of the artifact) so that metrics can score methods; methods never see it:
they get :meth:`ScenarioData.without_ground_truth`, whose training split refuses to show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import torch

from hansbench.registry import poisonings

if TYPE_CHECKING:
    from hansbench.datasets.poisonings import Poisoning


GROUND_TRUTH = ("true_labels", "poisoned", "masks")  # what methods must not see (labels are the training labels)


class GroundTruthUnavailable(RuntimeError):
    """A method read a sample's ground truth (poisoned flag, artifact mask, original label)."""


@dataclass
class Split:
    """One set of samples with ground truth.

    ``labels`` are what the model is trained/tested against (relabelled for backdoors);
    ``true_labels`` are the classes the images really show. ``poisoned``: the poisoning chose
    this image (stamped and/or relabelled; a label-flip control relabels without stamping).
    ``boxes``: optional ``[N, 4]`` object boxes ``(x0, y0, x1, y1)`` of the dataset, so an
    artifact stamped later (artifact insertion) sits on the object as in training.
    """

    images: torch.Tensor  # [N, C, H, W] float32 in [0, 1]
    labels: torch.Tensor  # [N] int64
    true_labels: torch.Tensor  # [N] int64
    poisoned: torch.Tensor  # [N] bool: the poisoning chose this image
    masks: torch.Tensor  # [N, H, W] bool: pixels the artifact changed
    boxes: torch.Tensor | None = None  # [N, 4] float32 object boxes, or None (the whole frame)

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        for name in ("labels", *GROUND_TRUTH):
            if getattr(self, name).shape[0] != n:
                raise ValueError(f"Split.{name} has {getattr(self, name).shape[0]} rows, images have {n}")
        if self.boxes is not None and tuple(self.boxes.shape) != (n, 4):
            raise ValueError(f"Split.boxes must be [N, 4] = ({n}, 4), got {tuple(self.boxes.shape)}")

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: torch.Tensor) -> Split:
        """The samples at ``index`` (a bool mask or integer indices)."""
        boxes = None if self.boxes is None else self.boxes[index]
        return Split(*(getattr(self, f)[index] for f in ("images", "labels", *GROUND_TRUTH)), boxes=boxes)

    @property
    def ground_truth_available(self) -> bool:
        """False on the training split of :meth:`ScenarioData.without_ground_truth`."""
        return True

    def of_class(self, cls: int, *, by: str = "labels") -> torch.Tensor:
        """Integer indices of the samples whose ``by`` (labels or true_labels) equals ``cls``."""
        return torch.nonzero(getattr(self, by) == cls).flatten()


class BlindSplit(Split):
    """A split whose ground truth (``true_labels``, ``poisoned``, ``masks``) raises on access.

    What methods get (explainer setup, clusterer inputs): images, training labels and boxes
    only, so a method cannot score itself with the answer. Not a dataclass copy: the hidden
    tensors are not stored at all.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, boxes: torch.Tensor | None = None):
        # not the dataclass __init__: the hidden fields are never stored
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "boxes", boxes)

    @classmethod
    def of(cls, split: Split) -> BlindSplit:
        """``split`` without its ground truth (the tensors are shared, not copied)."""
        return cls(split.images, split.labels, split.boxes)

    def __getattribute__(self, name: str):
        if name in GROUND_TRUTH:
            raise GroundTruthUnavailable(
                f"ground truth is not available to methods: Split.{name} of the training set is hidden "
                "(methods see images, training labels and boxes; metrics score with ScenarioData, not "
                "without_ground_truth())")
        return super().__getattribute__(name)

    def __repr__(self) -> str:
        return f"BlindSplit(n={len(self)}, ground truth hidden)"

    def subset(self, index: torch.Tensor) -> BlindSplit:
        return BlindSplit(self.images[index], self.labels[index], None if self.boxes is None else self.boxes[index])

    @property
    def ground_truth_available(self) -> bool:
        return False


@dataclass
class ScenarioData:
    """A poisoned training set and the two test sets of PRP Sec. V-A.

    ``affected_class``: the class whose images carry the artifact (stop); an all-to-one backdoor
    poisons every class but the target (:attr:`source_classes`) and keeps ``affected_class`` as
    the source class whose per-class accuracies are reported.
    ``target_class``: for backdoors (and label-flip controls), the class they are relabelled to; else ``None``.
    ``poisoning``: the registered poisoning's name (a name, not the object, so the scenario
    serialises field by field). It owns the class rules: :attr:`inspect_class` (the class whose
    training maps are clustered) and :meth:`explain_targets` (which class an image is explained for).
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
    poisoning: str = ""  # "" (hand-built scenarios): "BD" when a target class is given, else "CH"

    def __post_init__(self) -> None:
        if not self.poisoning:
            self.poisoning = "BD" if self.target_class is not None else "CH"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def source_classes(self) -> list[int]:
        """The classes whose images the poisoning stamps and relabels (BD, CH: the affected class;
        all-to-one: every class but the target), as the poisoning says."""
        return [int(c) for c in self.poisoning_rule.source_classes(self.num_classes, self.affected_class,
                                                                    self.target_class)]

    def without_ground_truth(self) -> ScenarioData:
        """A copy for methods: the training split's ``poisoned``, ``masks`` and ``true_labels`` raise
        :class:`GroundTruthUnavailable` on access, and ``meta`` drops ``n_poisoned``.

        Images, labels, boxes, class names, mean/std, the class rules and the test splits stay (the
        test sets are what metrics score on, never a method's input).
        """
        meta = {k: v for k, v in self.meta.items() if k != "n_poisoned"}
        return replace(self, train=BlindSplit.of(self.train), meta=meta)

    @property
    def poisoning_rule(self) -> Poisoning:
        """The registered poisoning of this scenario (unknown names list the known ones), built once per
        instance and name (a changed ``poisoning`` field is looked up again)."""
        cached = self.__dict__.get("_rule")
        if cached is None or cached[0] != self.poisoning:
            cached = self.__dict__["_rule"] = (self.poisoning, poisonings.get(self.poisoning)())
        return cached[1]

    @property
    def inspect_class(self) -> int:
        """The class whose training maps are clustered (CH: affected, BD: target), as the poisoning says."""
        return int(self.poisoning_rule.inspect_class(self))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])

    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "artifact_test": self.artifact_test, "clean_test": self.clean_test}

    def split(self, split_name: str) -> Split:
        """``train``, ``artifact_test`` or ``clean_test``; a clear error naming the known splits otherwise."""
        splits = self.splits()
        if split_name not in splits:
            raise ValueError(f"unknown split {split_name!r}; known: {', '.join(splits)}")
        return splits[split_name]

    def explain_targets(self, split_name: str, index: torch.Tensor | None = None) -> torch.Tensor:
        """The class each sample of ``split_name`` at ``index`` (default: all) is explained for, ``[n]`` int64.

        The one place that decides which class an explanation is for, delegated to the poisoning
        (:meth:`hansbench.datasets.poisonings.Poisoning.explain_targets`): a backdoor explains
        every image that carries its trigger for the target class, the decision the trigger
        produces, even where the split's label is the true class (the artifact test); every other
        image is explained for its label. Metrics pass these targets to ``ctx.explain``
        explicitly and record :meth:`explain_rule` in their rows.
        """
        split = self.split(split_name)
        idx = torch.arange(len(split)) if index is None else torch.as_tensor(index, dtype=torch.long).flatten().cpu()
        return self.poisoning_rule.explain_targets(self, split, idx).long()

    def explain_rule(self, split_name: str, index: torch.Tensor | None = None) -> str:
        """One word for what :meth:`explain_targets` does on these samples, for a row's ``detail``.

        ``"target"``: at least one image carries a backdoor trigger and is explained for the
        target class instead of its label (the others for their label); ``"label"``: every
        image is explained for its label.
        """
        split = self.split(split_name)
        idx = torch.arange(len(split)) if index is None else torch.as_tensor(index, dtype=torch.long).flatten().cpu()
        differs = self.explain_targets(split_name, idx) != split.labels[idx]
        return "target" if bool(differs.any()) else "label"
