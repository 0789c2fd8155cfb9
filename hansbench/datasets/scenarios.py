"""Poisoning scenarios of PRP Sec. V-A: Clever Hans (CH-x), backdoor (BD-x, BD-A2O-x) and
label-flip control (LF-x, LF-A2O-x) training sets with an artifact test set and a clean test
set, every sample with its ground truth (and the dataset's object boxes).

``make_scenario`` is the one entry point: dataset + artifact + poisoning -> ScenarioData. The
poisoning is a registered class (:mod:`hansbench.datasets.poisonings`): it poisons the training
set and owns the rules of which class is inspected and which class each image is explained for.
:data:`SCENARIO_DEFAULTS` are the defaults of every scenario setting, read from its signature.
"""

from __future__ import annotations

import inspect

import torch

from hansbench.datasets._helpers import CleanData, check_sizes, generator
from hansbench.datasets.base import ScenarioData, Split
from hansbench.datasets.poisonings import default_scenario_name, stamp_images
from hansbench.datasets.scenario_checks import ScenarioError, check_classes, check_scenario
from hansbench.options import check_options
from hansbench.registry import artifacts, datasets

__all__ = ["SCENARIO_DEFAULTS", "CleanData", "ScenarioError", "make_scenario", "load_clean", "build_artifact"]

Tensor = torch.Tensor


def load_clean(dataset: str, image_size: int, n_train: int, n_test: int, seed: int,
               dataset_options: dict | None = None) -> CleanData:
    """Clean images of a registered dataset (unknown names list the known ones; unknown options the accepted ones)."""
    cls = datasets.get(dataset)
    return cls(**check_options(cls, dataset_options or {}, what=f"dataset {dataset!r}")).load(
        image_size, n_train, n_test, seed)


def build_artifact(artifact: str, artifact_options: dict | None = None):
    """A configured artifact (unknown names list the known ones; unknown options the accepted ones)."""
    cls = artifacts.get(artifact)
    return cls(**check_options(cls, artifact_options or {}, what=f"artifact {artifact!r}"))


def make_scenario(dataset: str = "signs", *, poisoning: str = "CH", fraction: float = 1.0, artifact: str = "postit",
                  image_size: int = 32, n_train: int = 1000, n_test: int = 300, seed: int = 0,
                  affected_class: str | int = "stop", target_class: str | int | None = "speed limit",
                  dataset_options: dict | None = None, artifact_options: dict | None = None,
                  name: str = "") -> ScenarioData:
    """A poisoned training set plus artifact-test and clean-test sets (PRP Sec. V-A).

    ``poisoning``: a registered poisoning (docs/poisonings.md). ``"CH"`` stamps ``artifact`` on
    ``round(fraction * n)`` of the ``affected_class`` training images (labels kept;
    ``target_class`` ignored); ``"BD"`` also relabels exactly those to ``target_class``;
    ``"BD-A2O"`` draws them from every class but ``target_class`` (``fraction`` of those images);
    ``"LF"`` / ``"LF-A2O"`` relabel exactly the images ``BD`` / ``BD-A2O`` would, without stamping;
    ``"none"`` leaves training clean. ``artifact_test`` carries the artifact on every test image
    the poisoning names (:meth:`~hansbench.datasets.poisonings.Poisoning.artifact_test_index`:
    the affected class's, all-to-one: every non-target image), ``clean_test`` is the same images
    unstamped. Test labels are always the true classes (accuracies compare with what the images
    show; a backdoor's success is ``asr``), so explanations must not default to them:
    ``ScenarioData.explain_targets`` gives the class to explain (BD: the target class on every
    triggered image). Every split keeps the dataset's object boxes. Deterministic in ``seed``.
    Every setting is checked before any image is drawn (:func:`~hansbench.datasets.scenario_checks.check_scenario`,
    the suite loader's checks too): a bad one raises :class:`ScenarioError` naming it.
    """
    settings = {k: v for k, v in locals().items() if k in SCENARIO_DEFAULTS}
    checked = check_scenario(settings)
    check_sizes(image_size, n_train, n_test, seed)
    rule, art = checked.rule, checked.artifact
    clean = checked.dataset.load(image_size, n_train, n_test, seed)
    names = list(clean.class_names)
    affected, target = check_classes(settings, names, rule)
    n_source = int(rule.source_index(clean.train_labels, len(names), affected, target).numel())
    if n_source == 0:
        which = "of affected_class " + repr(names[affected]) if not rule.all_to_one else "outside target_class"
        raise ValueError(f"no training image {which}; increase n_train")
    train = rule.poison(clean, affected=affected, target=target, fraction=float(fraction), artifact=art, seed=seed)

    # test sets: the same images, with the artifact on every image the poisoning names, or on none
    stamped = rule.artifact_test_index(clean.test_labels, len(names), affected, target)
    test_images, test_poisoned, test_masks = stamp_images(clean.test_images, clean.test_boxes, stamped, art,
                                                          generator(seed, "scenario", "stamp-test"))
    boxes = clean.test_boxes
    artifact_test = Split(test_images, clean.test_labels.clone(), clean.test_labels.clone(), test_poisoned, test_masks,
                          boxes=None if boxes is None else boxes.clone())
    n_te, _, h, w = clean.test_images.shape
    clean_test = Split(clean.test_images.clone(), clean.test_labels.clone(), clean.test_labels.clone(),
                       torch.zeros(n_te, dtype=torch.bool), torch.zeros(n_te, h, w, dtype=torch.bool),
                       boxes=None if boxes is None else boxes.clone())

    mean = clean.train_images.mean(dim=(0, 2, 3))
    std = clean.train_images.std(dim=(0, 2, 3)).clamp(min=1e-3)
    return ScenarioData(
        name=name or default_scenario_name(poisoning, fraction),
        train=train,
        artifact_test=artifact_test,
        clean_test=clean_test,
        class_names=names,
        affected_class=affected,
        target_class=target,
        artifact=artifact,
        poisoning=poisoning,
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        meta={
            "dataset": dataset, "poisoning": poisoning, "fraction": float(fraction), "seed": seed,
            "image_size": image_size, "n_train": len(train), "n_test": len(clean_test),
            "n_poisoned": int(train.poisoned.sum()), "n_affected_train": n_source, "dataset_options": dict(dataset_options or {}),
            "artifact_options": checked.artifact_options,
        },
    )


# The defaults of every scenario setting (suites, the planner's keys, sweeps), read from make_scenario's signature.
SCENARIO_DEFAULTS = {k: {} if k.endswith("_options") else p.default
                     for k, p in inspect.signature(make_scenario).parameters.items() if k not in ("seed", "name")}
