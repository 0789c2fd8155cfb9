"""Poisoning scenarios of PRP Sec. V-A: Clever Hans (CH-x) and backdoor (BD-x) training sets
with an artifact test set and a clean test set, every sample with its ground truth.

``make_scenario`` is the one entry point: dataset + artifact + poisoning -> ScenarioData.
"""

from __future__ import annotations

import math

import torch

from hansbench.datasets._helpers import CleanData, check_sizes, generator
from hansbench.datasets.base import ScenarioData, Split
from hansbench.registry import artifacts, datasets

__all__ = ["POISONINGS", "CleanData", "make_scenario", "resolve_class", "load_clean", "build_artifact"]

POISONINGS = ("CH", "BD", "none")
Tensor = torch.Tensor


def resolve_class(cls: str | int, class_names: list[str], role: str) -> int:
    """Index of ``cls`` (a class name or index) in ``class_names``; a clear error otherwise."""
    if isinstance(cls, bool):
        raise TypeError(f"{role} must be a class name or index, got {cls!r}")
    if isinstance(cls, int):
        if 0 <= cls < len(class_names):
            return cls
        raise ValueError(f"{role} index {cls} is out of range: the dataset has {len(class_names)} classes "
                         f"({', '.join(class_names)})")
    if cls in class_names:
        return class_names.index(cls)
    raise ValueError(f"{role} {cls!r} is not a class of this dataset; classes: {', '.join(map(repr, class_names))}")


def load_clean(dataset: str, image_size: int, n_train: int, n_test: int, seed: int,
               dataset_options: dict | None = None) -> CleanData:
    """Clean images of a registered dataset (unknown names list the known ones)."""
    return datasets.get(dataset)(**(dataset_options or {})).load(image_size, n_train, n_test, seed)


def build_artifact(artifact: str, artifact_options: dict | None = None):
    """A configured artifact (unknown names list the known ones; unknown options the accepted ones)."""
    return artifacts.get(artifact)(**(artifact_options or {}))


def _default_name(poisoning: str, fraction: float) -> str:
    if poisoning == "none":
        return "clean"
    return f"{poisoning}-{round(fraction * 100, 6):g}"


def _stamp_split(images: Tensor, labels: Tensor, boxes: Tensor | None, chosen: Tensor, art,
                 gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Stamp ``art`` on ``images[chosen]``; return images, poisoned flags and masks for all samples."""
    n, _, h, w = images.shape
    images = images.clone()
    poisoned = torch.zeros(n, dtype=torch.bool)
    masks = torch.zeros(n, h, w, dtype=torch.bool)
    if chosen.numel():
        sub_boxes = None if boxes is None else boxes[chosen]
        stamped, sub_masks = art.stamp(images[chosen], sub_boxes, gen)
        images[chosen] = stamped.to(images.dtype).clamp(0, 1)
        poisoned[chosen] = True
        masks[chosen] = sub_masks.to(masks.device)
    return images, poisoned, masks


def make_scenario(dataset: str = "signs", *, poisoning: str = "CH", fraction: float = 1.0, artifact: str = "postit",
                  image_size: int = 32, n_train: int = 1000, n_test: int = 300, seed: int = 0,
                  affected_class: str | int = "stop", target_class: str | int | None = "speed limit",
                  dataset_options: dict | None = None, artifact_options: dict | None = None,
                  name: str = "") -> ScenarioData:
    """A poisoned training set plus artifact-test and clean-test sets (PRP Sec. V-A).

    ``poisoning``: ``"CH"`` stamps ``artifact`` on ``round(fraction * n)`` of the
    ``affected_class`` training images (labels kept; ``target_class`` ignored); ``"BD"``
    also relabels exactly those to ``target_class``; ``"none"`` leaves training clean.
    ``artifact_test`` carries the artifact on every affected-class test image,
    ``clean_test`` is the same images unstamped. Deterministic in ``seed``.
    """
    if poisoning not in POISONINGS:
        raise ValueError(f"unknown poisoning {poisoning!r}; use one of {', '.join(POISONINGS)} "
                         "(CH: Clever Hans, labels kept; BD: backdoor, relabelled; none: clean)")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction <= 1.0 \
            or math.isnan(fraction):
        raise ValueError(f"fraction is the share of affected-class training images to poison and must be in "
                         f"[0, 1] (CH-20 is fraction=0.2), got {fraction!r}")
    check_sizes(image_size, n_train, n_test, seed)
    art = build_artifact(artifact, artifact_options)  # fail on a bad artifact before generating data
    clean = load_clean(dataset, image_size, n_train, n_test, seed, dataset_options)
    names = list(clean.class_names)
    affected = resolve_class(affected_class, names, "affected_class")
    target = None
    if poisoning == "BD":
        if target_class is None:
            raise ValueError("a backdoor (poisoning='BD') needs target_class, the class stamped images are relabelled to")
        target = resolve_class(target_class, names, "target_class")
        if target == affected:
            raise ValueError(f"target_class {names[target]!r} equals affected_class: a backdoor must relabel "
                             "to another class")

    # training set: which affected images get the artifact (seeded, exactly round(fraction * n_affected))
    aff_train = torch.nonzero(clean.train_labels == affected).flatten()
    if aff_train.numel() == 0:
        raise ValueError(f"no training image of affected_class {names[affected]!r}; increase n_train")
    n_poison = 0 if poisoning == "none" else round(fraction * aff_train.numel())
    pick = torch.randperm(aff_train.numel(), generator=generator(seed, "scenario", "select"))[:n_poison]
    chosen = aff_train[pick].sort().values
    train_images, poisoned, masks = _stamp_split(clean.train_images, clean.train_labels, clean.train_boxes,
                                                 chosen, art, generator(seed, "scenario", "stamp-train"))
    labels = clean.train_labels.clone()
    if target is not None:
        labels[chosen] = target
    train = Split(train_images, labels, clean.train_labels.clone(), poisoned, masks)

    # test sets: the same images, with the artifact on every affected-class image, or on none
    aff_test = torch.nonzero(clean.test_labels == affected).flatten()
    test_images, test_poisoned, test_masks = _stamp_split(clean.test_images, clean.test_labels, clean.test_boxes,
                                                          aff_test, art, generator(seed, "scenario", "stamp-test"))
    artifact_test = Split(test_images, clean.test_labels.clone(), clean.test_labels.clone(), test_poisoned, test_masks)
    n_te, _, h, w = clean.test_images.shape
    clean_test = Split(clean.test_images.clone(), clean.test_labels.clone(), clean.test_labels.clone(),
                       torch.zeros(n_te, dtype=torch.bool), torch.zeros(n_te, h, w, dtype=torch.bool))

    mean = clean.train_images.mean(dim=(0, 2, 3))
    std = clean.train_images.std(dim=(0, 2, 3)).clamp(min=1e-3)
    return ScenarioData(
        name=name or _default_name(poisoning, fraction),
        train=train,
        artifact_test=artifact_test,
        clean_test=clean_test,
        class_names=names,
        affected_class=affected,
        target_class=target,
        artifact=artifact,
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        meta={
            "dataset": dataset, "poisoning": poisoning, "fraction": float(fraction), "seed": seed,
            "image_size": image_size, "n_train": len(train), "n_test": len(clean_test), "n_poisoned": int(n_poison),
            "n_affected_train": int(aff_train.numel()), "dataset_options": dict(dataset_options or {}),
            "artifact_options": dict(art.options),
        },
    )
