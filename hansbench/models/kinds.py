"""Model kinds: registered classes that say how to build, configure and train one kind of model.

A suite's ``[models.<kind>]`` names one; explainers and metrics declare the kinds they handle
(``model_kinds``), and a built model carries its kind as ``model.kind``. A plugin adds a kind with
``@model_kinds.register("name")`` on a :class:`ModelKind` subclass: its ``model_class``, its
``recipe`` dataclass, its model ``options`` and its ``train`` loop.

Building is seeded inside ``torch.random.fork_rng`` so the caller's global RNG is left alone; the
same seed gives the same weights on the same machine (on CUDA only as far as the convolution
kernels are deterministic).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from hansbench.datasets.base import Split
from hansbench.models.backbones import build_backbone
from hansbench.models.classifier import Classifier
from hansbench.models.precision import resolve_precision
from hansbench.models.protopnet import ProtoPNet
from hansbench.models.protopnet_training import train_protopnet
from hansbench.models.recipes import ClassifierRecipe, ProtoPNetRecipe, split_config
from hansbench.models.trainers import train_classifier
from hansbench.registry import model_kinds

__all__ = ["DEFAULT_BACKBONE", "ModelKind", "ClassifierKind", "ProtoPNetKind", "build_model", "train_model"]

DEFAULT_BACKBONE = "small-resnet"  # a suite's [models.<kind>] without ``backbone``


class ModelKind:
    """How to build, configure and train one kind of model.

    ``model_class(backbone, num_classes, mean, std, **options)`` builds it (its ``kind`` attribute
    must be the registered name); ``recipe`` is the dataclass of its training settings;
    ``options`` the keyword options of ``model_class`` a suite may set.

    Attributes
    ----------
    name : str
        The registered name; ``model_class`` instances carry it as ``model.kind``.
    model_class : type of nn.Module
        ``model_class(backbone, num_classes, mean, std, **options)``; it normalises its own input
        (``model.normalize(x01)``), exposes ``cam_layer`` and ``embed`` (penultimate activations).
    recipe : type
        A dataclass of training settings with defaults; the suite's other ``[models.<kind>]`` keys
        become its fields (unknown keys fail before any work).
    options : tuple of str
        The ``model_class`` keyword options a suite may set.

    Examples
    --------
    >>> from hansbench.models.kinds import ClassifierKind
    >>> class WideClassifier(ClassifierKind):  # same model and training, registered under another name
    ...     pass

    Register it with ``@model_kinds.register("wide-classifier")``; ``model_class.kind`` must then be
    that name (set it on a subclass of the model class).
    """

    name: ClassVar[str] = ""
    model_class: ClassVar[type[nn.Module]]
    recipe: ClassVar[type]
    options: ClassVar[tuple[str, ...]] = ()

    def build(self, backbone: nn.Module, num_classes: int, mean, std, **options) -> nn.Module:
        """An untrained model (``build_model`` seeds it and builds the backbone).

        Parameters
        ----------
        backbone : nn.Module
            A registered backbone's feature extractor (``out_channels``, ``cam_layer``).
        num_classes : int
            The dataset's number of classes.
        mean, std : sequence of float
            Per-channel normalisation the model applies to [0, 1] inputs.
        **options
            The kind's :attr:`options` from the suite.

        Returns
        -------
        nn.Module
            A ``model_class`` instance.
        """
        return self.model_class(backbone, num_classes, mean, std, **options)

    def train(self, model: nn.Module, train: Split, recipe: Any, *, seed: int, device: torch.device,
              progress: bool = True) -> None:
        """Train ``model`` in place on ``train``.

        Parameters
        ----------
        model : nn.Module
            Built by :meth:`build`, on ``device``.
        train : Split
            The (poisoned) training split: images in [0, 1], the labels to learn.
        recipe
            An instance of :attr:`recipe`.
        seed : int
            Seed of shuffling and augmentation: the same seed gives the same weights on one machine.
        device : torch.device
            Where to train; move batches there as they are used.
        progress : bool
            Show progress bars.

        Notes
        -----
        The caller puts the model in eval mode afterwards; the cache stores its state dict.
        """
        raise NotImplementedError


@model_kinds.register("classifier")
class ClassifierKind(ModelKind):
    """backbone -> global average pool -> linear, trained with Adam on cross-entropy."""

    model_class = Classifier
    recipe = ClassifierRecipe

    def train(self, model, train, recipe, *, seed, device, progress=True) -> None:
        """Adam on cross-entropy with the recipe's schedule and augmentation."""
        train_classifier(model, train, recipe, seed=seed, device=device, progress=progress)


@model_kinds.register("protopnet")
class ProtoPNetKind(ModelKind):
    """ProtoPNet (Chen et al. 2019): warm-up, joint, push and last-layer stages."""

    model_class = ProtoPNet
    recipe = ProtoPNetRecipe
    options = ("prototypes_per_class", "prototype_dim", "epsilon")

    def train(self, model, train, recipe, *, seed, device, progress=True) -> None:
        """ProtoPNet's stages: warm-up, joint, push and last-layer training."""
        train_protopnet(model, train, recipe, seed=seed, device=device, progress=progress)


MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def build_model(kind: str, *, num_classes: int, mean, std, backbone: str = DEFAULT_BACKBONE,
                backbone_options: dict | None = None, memory_format: str = "contiguous", **model_options) -> nn.Module:
    """A freshly initialised model of a registered ``kind``, from the global RNG.

    ``memory_format = "channels_last"`` stores the 4-d weights NHWC: oneDNN's convolutions then
    skip their layout reorders (training the quick classifier: 1.23-1.40x on 2 CPU cores,
    PERFORMANCE.md). The floats differ in the last bits from the default layout, so the model
    trains to other weights: it is part of the model's key, never a silent switch.
    """
    spec = model_kinds.get(kind)()
    unknown = sorted(set(model_options) - set(spec.options))
    if unknown:
        raise ValueError(f"unknown {kind} option {unknown[0]!r}; accepted: {', '.join(spec.options) or '(none)'}")
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(f"{kind}: memory_format must be one of {', '.join(map(repr, MEMORY_FORMATS))}, "
                         f"got {memory_format!r}")
    net = build_backbone(backbone, **(backbone_options or {}))
    model = spec.build(net, num_classes, tuple(mean), tuple(std), **model_options)
    return model.to(memory_format=MEMORY_FORMATS[memory_format])  # (contiguous: already so, a no-op)


def train_model(kind: str, train: Split, *, num_classes: int, mean, std, config: dict, seed: int,
                device: torch.device | str, progress: bool = True) -> nn.Module:
    """Build (seeded) and train a model of ``kind`` on ``train``; returns it in eval mode on ``device``.

    ``config`` holds ``backbone``, ``backbone_options``, the model options and the recipe
    fields together (see :func:`hansbench.models.recipes.split_config`). ``precision = "bf16"``
    trains under bf16 autocast where ``device`` has it (:mod:`hansbench.models.precision`); the
    parameters stay float32 either way, and ``model.training_precision`` says which was used.
    """
    device = torch.device(device)
    model_kwargs, recipe = split_config(kind, config)
    recipe.precision = resolve_precision(recipe.precision, device)  # bf16 without native support: float32
    with _forked_rng(device):
        torch.manual_seed(seed)
        model = build_model(kind, num_classes=num_classes, mean=mean, std=std, **model_kwargs)
    model.to(device)
    model_kinds.get(kind)().train(model, train, recipe, seed=seed, device=device, progress=progress)
    model.training_precision = recipe.precision  # what was used (the model's key says the same)
    return model.eval()


def _forked_rng(device: torch.device):
    devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)
