"""Training recipes (what determines a model's weights besides data and seed) and suite-config parsing.

A suite's ``[models.<kind>]`` table mixes model keys (``backbone``, ``backbone_options``, the
kind's own model options) and recipe fields; :func:`split_config` separates them, and an
unknown key fails before any work with the accepted ones. The recipe dataclasses hold the
paper's values; suites scale them down.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hansbench.models.precision import check_precision
from hansbench.registry import model_kinds

__all__ = ["ClassifierRecipe", "ProtoPNetRecipe", "MODEL_KEYS", "recipe_from_config", "split_config"]

MODEL_KEYS = ("backbone", "backbone_options", "memory_format")  # accepted by every model kind


@dataclass
class ClassifierRecipe:
    """Adam on cross-entropy with a cosine learning-rate schedule and mild shift augmentation."""

    epochs: int = 8
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_schedule: str = "cosine"  # "cosine" | "constant"
    augment: bool = True
    augment_shift: float = 0.0625  # random crop after zero padding by this fraction of the image side
    flip: bool = False  # horizontal flips (off: signs carry text and the artifact has a fixed side)
    precision: str = "float32"  # "float32" | "bf16" (autocast, float32 weights; hansbench.models.precision)

    def __post_init__(self) -> None:
        check_precision(self.precision)
        _check_positive(self, ("batch_size", "lr"))
        _check_non_negative(self, ("epochs", "weight_decay", "augment_shift"))
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}")


@dataclass
class ProtoPNetRecipe:
    """ProtoPNet's stages with the values of PAPERS.md section 2 ([P]/[C]).

    Epochs are counted over warm-up + joint (1-based); a push (followed by
    ``last_layer_epochs`` of last-layer training) happens after epoch ``e`` when
    ``e >= push_start`` and ``(e - push_start) % push_every == 0``, and always after the last epoch.
    """

    warm_epochs: int = 5
    joint_epochs: int = 25
    push_start: int = 10
    push_every: int = 10
    last_layer_epochs: int = 20
    batch_size: int = 80
    warm_lr: float = 3e-3  # add-on and prototypes [C]
    warm_weight_decay: float = 1e-3  # add-on only [C]
    joint_backbone_lr: float = 1e-4
    joint_add_on_lr: float = 3e-3
    joint_prototype_lr: float = 3e-3
    joint_weight_decay: float = 1e-3  # backbone and add-on [C]
    joint_lr_step: int = 5  # StepLR step (joint epochs) [C]
    joint_lr_gamma: float = 0.1
    last_layer_lr: float = 1e-4
    last_layer_batch_size: int = 80
    clst: float = 0.8
    sep: float = -0.08
    l1: float = 1e-4
    augment: bool = True  # warm-up and joint only; push and last layer see the unaugmented images
    augment_shift: float = 0.0625
    flip: bool = False
    push_batch_size: int = 128
    precision: str = "float32"  # warm-up and joint epochs; push and the last layer always float32

    def __post_init__(self) -> None:
        check_precision(self.precision)
        _check_positive(self, ("batch_size", "warm_lr", "joint_backbone_lr", "joint_add_on_lr", "joint_prototype_lr",
                               "last_layer_lr", "last_layer_batch_size", "push_batch_size", "push_every",
                               "joint_lr_step"))
        _check_non_negative(self, ("warm_epochs", "joint_epochs", "push_start", "last_layer_epochs",
                                   "warm_weight_decay", "joint_weight_decay", "l1", "augment_shift"))

    @property
    def epochs(self) -> int:
        """Warm-up plus joint epochs (the last-layer epochs come after each push)."""
        return self.warm_epochs + self.joint_epochs

    def push_epochs(self) -> list[int]:
        """The (1-based) epochs after which prototypes are pushed."""
        total = self.epochs
        pushes = [e for e in range(max(self.push_start, 1), total + 1) if (e - self.push_start) % self.push_every == 0]
        if total > 0 and (not pushes or pushes[-1] != total):
            pushes.append(total)
        return pushes


def _check_positive(recipe: Any, names: Sequence[str]) -> None:
    for name in names:
        if not getattr(recipe, name) > 0:
            raise ValueError(f"{type(recipe).__name__}.{name} must be > 0, got {getattr(recipe, name)!r}")


def _check_non_negative(recipe: Any, names: Sequence[str]) -> None:
    for name in names:
        if not getattr(recipe, name) >= 0:
            raise ValueError(f"{type(recipe).__name__}.{name} must be >= 0, got {getattr(recipe, name)!r}")


def recipe_from_config(kind: str, config: dict) -> Any:
    """The recipe of model kind ``kind`` with the recipe fields of ``config`` set.

    Model keys (``backbone``, ``backbone_options`` and the kind's model options) are accepted and
    ignored here; any other unknown key raises, naming the key and the accepted ones.
    """
    spec = model_kinds.get(kind)
    fields = [f.name for f in dataclasses.fields(spec.recipe)]
    accepted = fields + list(MODEL_KEYS) + list(spec.options)
    for key in config:
        if key not in accepted:
            raise ValueError(f"unknown {kind} config key {key!r}; accepted: {', '.join(accepted)}")
    return spec.recipe(**{k: v for k, v in config.items() if k in fields})


def split_config(kind: str, config: dict) -> tuple[dict, Any]:
    """Split a suite's model config into ``build_model`` keywords and a validated recipe."""
    recipe = recipe_from_config(kind, config)
    model_keys = set(MODEL_KEYS) | set(model_kinds.get(kind).options)
    return {k: v for k, v in config.items() if k in model_keys}, recipe
