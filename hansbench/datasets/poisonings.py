"""Poisonings: which training images a scenario poisons, how their labels change, and which
class is inspected and explained. Registered classes, so a new attack is a plugin, not an edit.

A poisoning decides, in one place each:

- :meth:`Poisoning.source_classes`: the classes whose images it poisons (the affected class;
  all-to-one: every class but the target), in training and in the artifact test;
- :meth:`Poisoning.poison`: the poisoned training split (which source-class images are chosen,
  seeded; whether they are stamped; their labels; ground-truth flags and masks);
- :meth:`Poisoning.artifact_test_index`: which test images carry the artifact in the artifact test;
- :meth:`Poisoning.inspect_class`: the class whose training maps are clustered;
- :meth:`Poisoning.explain_targets`: the class each image is explained for (``ScenarioData``
  delegates to it);
- :meth:`Poisoning.inspected_class_holds`: whether that class holds poisoned and clean images,
  read by the planner before any data exist;
- :meth:`Poisoning.scenario_name`: the default scenario name (``CH-50``, ``BD-15``, ``BD-A2O-10``,
  ``LF-15``, ``clean``), used by ``make_scenario`` and suite validation alike.

Controls: ``control_of`` names the poisoning a control mirrors (``LF`` -> ``BD``, ``LF-A2O`` ->
``BD-A2O``: the same images relabelled, never stamped); ``none`` is the clean control. The test
sets are built by ``make_scenario``: the artifact on every :meth:`Poisoning.artifact_test_index`
image (artifact test) or on none (clean test). docs/poisonings.md describes every poisoning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch

from hansbench.datasets._helpers import CleanData, generator
from hansbench.datasets.base import Split
from hansbench.registry import poisonings

if TYPE_CHECKING:
    from hansbench.datasets.base import ScenarioData

__all__ = ["Poisoning", "CleverHans", "Backdoor", "AllToOneBackdoor", "LabelFlip", "AllToOneLabelFlip",
           "NoPoisoning", "get_poisoning", "default_scenario_name", "stamp_images"]

Tensor = torch.Tensor


def stamp_images(images: Tensor, boxes: Tensor | None, chosen: Tensor, art, gen: torch.Generator
                 ) -> tuple[Tensor, Tensor, Tensor]:
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


class Poisoning:
    """Base class: stamp the artifact on ``round(fraction * n)`` of the ``n`` source-class training images.

    Subclasses override :meth:`relabel` (how chosen images' labels change), the class rules, the
    flags below, or :meth:`poison` itself. ``needs_target``: the scenario's ``target_class`` is
    required and must differ from the affected class; otherwise it is ignored
    (``ScenarioData.target_class`` is ``None``). ``all_to_one``: the source classes are every
    class but the target (else the affected class). ``stamps``: the chosen training images carry
    the artifact (False: a label-flip control, relabelled only). ``control_of``: the poisoning this
    one is a control of (same images, no trigger), "" if none. ``is_control``: a control scenario
    (label flips and the clean ``none``), whose reliance gates it out of the ranks.

    A poisoning takes no options: the scenario's ``fraction``, ``affected_class``, ``target_class``
    and ``artifact`` are passed to :meth:`poison`. Bump ``version`` when the data it produces change.

    Examples
    --------
    >>> import torch
    >>> from hansbench.datasets.poisonings import Backdoor
    >>> class FlipToTarget(Backdoor):  # a backdoor whose chosen images all go to the target class
    ...     def relabel(self, labels, chosen, target):
    ...         out = labels.clone()
    ...         out[chosen] = target
    ...         return out
    >>> FlipToTarget().relabel(torch.tensor([0, 1, 2]), torch.tensor([0]), 2).tolist()
    [2, 1, 2]

    Register it with ``@poisonings.register("MY-BD")`` (docs/poisonings.md).
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "2"  # bump to invalidate cached data (2: splits keep the object boxes)
    needs_target: ClassVar[bool] = False
    all_to_one: ClassVar[bool] = False
    stamps: ClassVar[bool] = True
    control_of: ClassVar[str] = ""
    is_control: ClassVar[bool] = False  # a control scenario (label flip, clean): shown, never ranked

    # -- the classes it poisons --------------------------------------------------------------------
    def source_classes(self, num_classes: int, affected: int, target: int | None) -> list[int]:
        """The classes whose images are poisoned (training) and carry the artifact (artifact test).

        Parameters
        ----------
        num_classes : int
            The dataset's number of classes.
        affected : int
            The scenario's affected class.
        target : int or None
            The target class (``None`` unless ``needs_target``).

        Returns
        -------
        list of int
            ``[affected]``, or every class but ``target`` when ``all_to_one``.
        """
        if self.all_to_one:
            return [c for c in range(num_classes) if c != target]
        return [int(affected)]

    def source_index(self, labels: Tensor, num_classes: int, affected: int, target: int | None) -> Tensor:
        """Sorted indices of the samples whose label is a source class."""
        sources = torch.as_tensor(self.source_classes(num_classes, affected, target), dtype=labels.dtype)
        return torch.nonzero(torch.isin(labels, sources)).flatten()

    def artifact_test_index(self, test_labels: Tensor, num_classes: int, affected: int, target: int | None) -> Tensor:
        """The test images that carry the artifact in the artifact test: every source-class image
        (all-to-one: every non-target image, so the attack success rate covers all source classes)."""
        return self.source_index(test_labels, num_classes, affected, target)

    # -- the training set --------------------------------------------------------------------------
    def select(self, source_index: Tensor, fraction: float, gen: torch.Generator) -> Tensor:
        """The training indices to poison (sorted): exactly ``round(fraction * n)`` of ``source_index``,
        uniformly at random (seeded)."""
        n = round(fraction * source_index.numel())
        pick = torch.randperm(source_index.numel(), generator=gen)[:n]
        return source_index[pick].sort().values

    def relabel(self, labels: Tensor, chosen: Tensor, target: int | None) -> Tensor:
        """The training labels after poisoning ``chosen`` (default: unchanged).

        Parameters
        ----------
        labels : Tensor
            ``[N]`` int64 clean training labels; do not modify it in place.
        chosen : Tensor
            Sorted indices of the poisoned images (:meth:`select`).
        target : int or None
            The target class (``None`` unless ``needs_target``).

        Returns
        -------
        Tensor
            ``[N]`` int64 labels the model is trained on (``Split.true_labels`` keeps the clean ones).
        """
        return labels.clone()

    def poison(self, clean: CleanData, *, affected: int, target: int | None, fraction: float, artifact,
               seed: int) -> Split:
        """The poisoned training split; deterministic in ``seed``.

        The choice uses its own seed stream (``select``), independent of the stamping, so a
        label-flip control chooses exactly the images of the backdoor it mirrors.

        Parameters
        ----------
        clean : CleanData
            The clean dataset (training images in [0, 1], labels, optional object boxes).
        affected : int
            The affected class.
        target : int or None
            The target class (``None`` unless ``needs_target``).
        fraction : float
            Share of the source-class training images to poison, in [0, 1].
        artifact
            A registered artifact instance (``stamp(images, boxes, generator) -> (images, masks)``).
        seed : int
            The scenario seed.

        Returns
        -------
        Split
            Images (the chosen ones stamped when ``stamps``), labels after :meth:`relabel`, the
            true labels, the ``poisoned`` flags and the artifact ``masks`` (the ground truth).
        """
        source = self.source_index(clean.train_labels, len(clean.class_names), affected, target)
        chosen = self.select(source, fraction, generator(seed, "scenario", "select"))
        if self.stamps:
            images, poisoned, masks = stamp_images(clean.train_images, clean.train_boxes, chosen, artifact,
                                                   generator(seed, "scenario", "stamp-train"))
        else:
            images, poisoned, masks = stamp_images(clean.train_images, None, chosen[:0], artifact, None)
            poisoned[chosen] = True  # chosen and relabelled, not stamped: masks stay empty
        labels = self.relabel(clean.train_labels, chosen, target)
        return Split(images, labels, clean.train_labels.clone(), poisoned, masks, boxes=_copy(clean.train_boxes))

    # -- which class is inspected and explained ----------------------------------------------------
    def inspect_class(self, data: ScenarioData) -> int:
        """The class whose training images are clustered (default: the affected class).

        Parameters
        ----------
        data : ScenarioData
            The scenario (``affected_class``, ``target_class``).

        Returns
        -------
        int
            A class index; backdoors return the target class, where the poisoned images are labelled.
        """
        return data.affected_class

    def explain_targets(self, data: ScenarioData, split: Split, index: Tensor) -> Tensor:
        """The class each sample ``split[index]`` is explained for, ``[n]`` int64 (default: its label).

        Parameters
        ----------
        data : ScenarioData
            The scenario.
        split : Split
            One of its splits (training, ``artifact_test``, ``clean_test``).
        index : Tensor
            ``[n]`` int64 indices into ``split``.

        Returns
        -------
        Tensor
            ``[n]`` int64 classes; a backdoor explains its triggered test images for the target
            class (the decision the trigger makes), every other image for its label.
        """
        return split.labels[index].clone().long()

    def inspected_class_holds(self, fraction: float) -> tuple[bool, bool]:
        """(poisoned images, clean images) in the inspected class's training set at this ``fraction``.

        Metrics that need both (``requires = {"poisoned-and-clean"}``) are left out by the planner
        when either is missing, before any data is built.

        Parameters
        ----------
        fraction : float
            The scenario's poisoned share of the source-class images.

        Returns
        -------
        tuple of (bool, bool)
            Whether the inspected class holds poisoned images and whether it holds clean ones.
        """
        return fraction > 0, fraction < 1

    def scenario_name(self, fraction: float) -> str:
        """The default scenario name, e.g. ``CH-12.5`` for ``fraction = 0.125``."""
        return f"{self.name}-{round(fraction * 100, 6):g}"


@poisonings.register("CH")
class CleverHans(Poisoning):
    """Clever Hans: the artifact on a fraction of the affected class's training images, labels kept."""


@poisonings.register("BD")
class Backdoor(Poisoning):
    """Backdoor: the stamped images relabelled to target_class; triggered images are explained for the target."""

    needs_target = True

    def relabel(self, labels: Tensor, chosen: Tensor, target: int | None) -> Tensor:
        labels = labels.clone()
        labels[chosen] = int(target)
        return labels

    def inspect_class(self, data: ScenarioData) -> int:
        return data.target_class

    def explain_targets(self, data: ScenarioData, split: Split, index: Tensor) -> Tensor:
        """Every image carrying the trigger for the target (the decision it produces), even where the
        split's label is the true class (the artifact test); every other image for its label.

        On a split without ground truth (the training set methods see) the labels are the answer:
        every triggered training image is already labelled with the target."""
        targets = split.labels[index].clone().long()
        if split.ground_truth_available:
            targets[split.poisoned[index]] = int(data.target_class)
        return targets

    def inspected_class_holds(self, fraction: float) -> tuple[bool, bool]:
        return fraction > 0, True  # the target class's own images are clean


@poisonings.register("BD-A2O")
class AllToOneBackdoor(Backdoor):
    """All-to-one backdoor (BadNets; BackdoorBench's default): images drawn uniformly from every class
    but the target, stamped and relabelled to the target; ``fraction`` = share of the non-target
    training images. Inspected and explained class: the target."""

    all_to_one = True


@poisonings.register("LF")
class LabelFlip(Backdoor):
    """Label-flip control of ``BD``: exactly the images ``BD`` poisons at the same seed and fraction,
    relabelled to the target but not stamped (``poisoned`` True, masks empty). Without a trigger
    there is no decision to explain for: every image is explained for its label."""

    stamps = False
    control_of = "BD"
    is_control = True

    def explain_targets(self, data: ScenarioData, split: Split, index: Tensor) -> Tensor:
        return Poisoning.explain_targets(self, data, split, index)


@poisonings.register("LF-A2O")
class AllToOneLabelFlip(LabelFlip):
    """Label-flip control of ``BD-A2O``: its images (from every non-target class), relabelled, not stamped."""

    all_to_one = True
    control_of = "BD-A2O"


@poisonings.register("none")
class NoPoisoning(Poisoning):
    """No poisoning: a clean training set (the test sets still carry the artifact): the clean control."""

    is_control = True

    def select(self, source_index: Tensor, fraction: float, gen: torch.Generator) -> Tensor:
        return source_index[:0]

    def inspected_class_holds(self, fraction: float) -> tuple[bool, bool]:
        return False, True

    def scenario_name(self, fraction: float) -> str:
        return "clean"


def _copy(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.clone()


def get_poisoning(name: str) -> Poisoning:
    """The registered poisoning ``name`` (unknown names list the known ones)."""
    return poisonings.get(name)()


def default_scenario_name(poisoning: str, fraction: float) -> str:
    """The one source of default scenario names (``make_scenario`` and suite validation)."""
    return get_poisoning(poisoning).scenario_name(fraction)
