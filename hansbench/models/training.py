"""Compatibility names for tests written against the old one-module training code.

New code imports from the modules by concept: :mod:`~hansbench.models.recipes` (recipes, config
parsing), :mod:`~hansbench.models.kinds` (model kinds, ``build_model``, ``train_model``),
:mod:`~hansbench.models.trainers` (classifier loop, augmentation),
:mod:`~hansbench.models.protopnet_training` (ProtoPNet stages, push, last layer) and
:mod:`~hansbench.models.evaluation` (``predict``, ``accuracy``). Nothing in ``hansbench`` imports this module.
"""

from __future__ import annotations

from typing import Any

from hansbench.models.evaluation import accuracy, predict
from hansbench.models.kinds import build_model, train_model
from hansbench.models.protopnet_training import (
    last_layer_l1,
    protopnet_losses,
    push_prototypes,
    retrain_last_layer,
    train_protopnet,
)
from hansbench.models.recipes import ClassifierRecipe, ProtoPNetRecipe, recipe_from_config, split_config
from hansbench.models.trainers import augment_batch, train_classifier

__all__ = [
    "ClassifierRecipe", "ProtoPNetRecipe", "QUICK_CONFIG", "accuracy", "augment_batch", "build_model",
    "last_layer_l1", "predict", "protopnet_losses", "push_prototypes", "recipe_from_config", "retrain_last_layer",
    "split_config", "train_classifier", "train_model", "train_protopnet",
]

# DEPRECATED: repeats (and has drifted from) the built-in quick suite's [models] tables; tests should read
# load_suite("quick").models instead. Removed once tests/test_training.py stops importing it.
QUICK_CONFIG: dict[str, dict[str, Any]] = {
    "classifier": {"epochs": 8, "batch_size": 64, "lr": 2e-3},
    "protopnet": {
        "prototypes_per_class": 5,
        "prototype_dim": 32,
        "warm_epochs": 2,
        "joint_epochs": 8,
        "push_start": 10,
        "push_every": 10,
        "last_layer_epochs": 10,
        "batch_size": 64,
        "joint_backbone_lr": 2e-3,
        "joint_lr_step": 6,
        "last_layer_lr": 1e-2,
    },
}
