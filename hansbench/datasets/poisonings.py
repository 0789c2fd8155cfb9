"""Poisonings: which training images a scenario poisons, how their labels change, and which
class is inspected and explained. Registered classes, so a new attack is a plugin, not an edit.

A poisoning decides, in one place each:

- :meth:`Poisoning.poison`: the poisoned training split (which affected-class images carry the
  artifact, seeded; their labels; ground-truth flags and masks);
- :meth:`Poisoning.inspect_class`: the class whose training maps are clustered;
- :meth:`Poisoning.explain_targets`: the class each image is explained for (``ScenarioData``
  delegates to it);
- :meth:`Poisoning.inspected_class_holds`: whether that class holds poisoned and clean images,
  read by the planner before any data exist;
- :meth:`Poisoning.scenario_name`: the default scenario name (``CH-50``, ``BD-15``, ``clean``),
  used by ``make_scenario`` and suite validation alike.

The test sets are the same for every poisoning (the artifact on 100 % / 0 % of the affected
class's test images), built by ``make_scenario``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch

from hansbench.datasets._helpers import CleanData, generator
from hansbench.datasets.base import Split
from hansbench.registry import poisonings

if TYPE_CHECKING:
    from hansbench.datasets.base import ScenarioData

__all__ = ["Poisoning", "CleverHans", "Backdoor", "NoPoisoning", "get_poisoning", "default_scenario_name",
           "stamp_images"]

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
    """Base class: stamp the artifact on ``round(fraction * n)`` affected-class training images.

    Subclasses override :meth:`relabel` (how stamped images' labels change), the class rules, or
    :meth:`poison` itself (e.g. an attack that relabels without stamping). ``needs_target``: the
    scenario's ``target_class`` is required and must differ from the affected class; otherwise it
    is ignored (``ScenarioData.target_class`` is ``None``).
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"  # bump to invalidate cached data
    needs_target: ClassVar[bool] = False

    # -- the training set --------------------------------------------------------------------------
    def select(self, affected_index: Tensor, fraction: float, gen: torch.Generator) -> Tensor:
        """The training indices to poison (sorted): exactly ``round(fraction * n)`` of ``affected_index``."""
        n = round(fraction * affected_index.numel())
        pick = torch.randperm(affected_index.numel(), generator=gen)[:n]
        return affected_index[pick].sort().values

    def relabel(self, labels: Tensor, chosen: Tensor, target: int | None) -> Tensor:
        """The training labels after poisoning ``chosen`` (default: unchanged)."""
        return labels.clone()

    def poison(self, clean: CleanData, *, affected: int, target: int | None, fraction: float, artifact,
               seed: int) -> Split:
        """The poisoned training split; deterministic in ``seed``."""
        affected_index = torch.nonzero(clean.train_labels == affected).flatten()
        chosen = self.select(affected_index, fraction, generator(seed, "scenario", "select"))
        images, poisoned, masks = stamp_images(clean.train_images, clean.train_boxes, chosen, artifact,
                                               generator(seed, "scenario", "stamp-train"))
        labels = self.relabel(clean.train_labels, chosen, target)
        return Split(images, labels, clean.train_labels.clone(), poisoned, masks)

    # -- which class is inspected and explained ----------------------------------------------------
    def inspect_class(self, data: ScenarioData) -> int:
        """The class whose training images are clustered (default: the affected class)."""
        return data.affected_class

    def explain_targets(self, data: ScenarioData, split: Split, index: Tensor) -> Tensor:
        """The class each sample ``split[index]`` is explained for, ``[n]`` int64 (default: its label)."""
        return split.labels[index].clone().long()

    def inspected_class_holds(self, fraction: float) -> tuple[bool, bool]:
        """(poisoned images, clean images) in the inspected class's training set at this ``fraction``."""
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
        split's label is the true class (the artifact test); every other image for its label."""
        targets = split.labels[index].clone().long()
        targets[split.poisoned[index]] = int(data.target_class)
        return targets

    def inspected_class_holds(self, fraction: float) -> tuple[bool, bool]:
        return fraction > 0, True  # the target class's own images are clean


@poisonings.register("none")
class NoPoisoning(Poisoning):
    """No poisoning: a clean training set (the test sets still carry the artifact)."""

    def select(self, affected_index: Tensor, fraction: float, gen: torch.Generator) -> Tensor:
        return affected_index[:0]

    def inspected_class_holds(self, fraction: float) -> tuple[bool, bool]:
        return False, True

    def scenario_name(self, fraction: float) -> str:
        return "clean"


def get_poisoning(name: str) -> Poisoning:
    """The registered poisoning ``name`` (unknown names list the known ones)."""
    return poisonings.get(name)()


def default_scenario_name(poisoning: str, fraction: float) -> str:
    """The one source of default scenario names (``make_scenario`` and suite validation)."""
    return get_poisoning(poisoning).scenario_name(fraction)
