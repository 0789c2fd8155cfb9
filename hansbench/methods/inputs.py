"""What a clusterer clusters: registered *input kinds* (explanation maps, activations, raw pixels, ...).

A clusterer names its kind in ``Clusterer.input``; the planner builds one clustering per
(model, kind) — per (model, explainer) for ``maps`` — and the executor asks the kind for the
``[N, V, D]`` views of the inspected class's training images. Kinds other than ``maps`` are the
controls and baselines an explanation must beat: ``pixels`` (can the artifact be found in the raw
images without any model?) and ``activations`` (Chen et al. 2018's activation clustering input).
``label-fit`` (the model's loss and prediction against each training label) and ``sample-index``
(nothing of the images) feed the trivial floors of :mod:`hansbench.methods.clusterers.trivial`.
A kind sees the scenario data *without* ground truth (``ScenarioData.without_ground_truth``):
it must not peek at the poisoned flags or the artifact masks.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hansbench.methods.base import ACTIVATIONS, MAPS
from hansbench.registry import clusterer_inputs

PIXELS = "pixels"
BATCH = 256  # images per forward pass when a kind runs the model


def map_size(settings: dict, side: int) -> int:
    """The side the views are average-pooled to: ``[clustering] map_size``, else ~1/3 of the input side."""
    return int(settings.get("map_size") or max(4, round(side / 3)))


def pool(images: torch.Tensor, settings: dict) -> torch.Tensor:
    """``[N, C, H, W]`` -> ``[N, C, s, s]`` average-pooled to :func:`map_size` (PAPERS.md §5: maps to ~1/3 side)."""
    return F.adaptive_avg_pool2d(images.float(), map_size(settings, images.shape[-1]))


class ClustererInput:
    """One input kind: ``views(model=, data=, index=, device=, settings=) -> [N, V, D]`` float64.

    ``data`` is the scenario data without ground truth, ``index`` the inspected class's training
    indices (the rows to return, in that order), ``settings`` the suite's ``[clustering]`` table.
    ``uses_model``: whether the views depend on the trained model (``False``: ``model`` is
    ``None`` and one clustering serves every model kind of the data). ``needs_explainer``: the
    views are an explainer's maps (only ``maps``), so the planner pairs the kind with each explainer.
    Bump ``version`` when the views change: it enters the clustering's cache key.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    uses_model: ClassVar[bool] = True
    needs_explainer: ClassVar[bool] = False
    uses_settings: ClassVar[bool] = True  # False: the views ignore [clustering] (kept out of the cache key)

    def views(self, *, model: nn.Module | None, data: Any, index: torch.Tensor, device: torch.device,
              settings: dict) -> np.ndarray:
        """The clusterer's input for the training images at ``index``.

        Parameters
        ----------
        model : nn.Module or None
            The trained model in eval mode, on ``device``; ``None`` when ``uses_model`` is False.
        data : ScenarioData
            The scenario without ground truth (no poisoned flags, no artifact masks).
        index : torch.Tensor
            ``[N]`` int64 indices into ``data.train`` (the inspected class), the rows to return in order.
        device : torch.device
            Where to run the model.
        settings : dict
            The suite's ``[clustering]`` table (e.g. ``map_size``); ignored when ``uses_settings`` is False.

        Returns
        -------
        np.ndarray
            ``[N, V, D]`` float64, finite (the executor checks it before any clusterer sees it).

        Examples
        --------
        A kind that clusters the images' mean colour (one view, three values):

        >>> import numpy as np
        >>> class MeanColour(ClustererInput):
        ...     uses_model = False
        ...     uses_settings = False
        ...     def views(self, *, model, data, index, device, settings):
        ...         x = data.train.images[index].mean(dim=(2, 3))  # [N, 3]
        ...         return x[:, None, :].double().numpy()

        Register it with ``@clusterer_inputs.register("mean-colour")`` and name it in a clusterer's
        ``input`` (docs/inputs.md).
        """
        raise NotImplementedError


@clusterer_inputs.register(MAPS)
class Maps(ClustererInput):
    """Explanation maps of the inspected class's training images, average-pooled to map_size, per view."""

    uses_model = True
    needs_explainer = True

    def views(self, *, model, data, index, device, settings, maps: torch.Tensor | None = None) -> np.ndarray:
        """``maps``: ``[N, V, H, W]`` of the images at ``index`` (the executor serves them from the map bank)."""
        if maps is None:
            raise ValueError("the 'maps' input needs the explainer's maps: pass maps=[N, V, H, W] "
                             "(the runner does this for every clustering of an explainer)")
        return self.from_maps(maps, settings)

    @staticmethod
    def from_maps(maps: torch.Tensor, settings: dict) -> np.ndarray:
        """``[N, V, H, W]`` maps -> ``[N, V, s*s]`` float64, average-pooled to ``map_size``."""
        return pool(maps, settings).flatten(2).numpy().astype(np.float64)


@clusterer_inputs.register(ACTIVATIONS)
class Activations(ClustererInput):
    """Penultimate activations of the trained model (one view): activation clustering's input (Chen et al. 2018)."""

    uses_model = True
    uses_settings = False

    def views(self, *, model, data, index, device, settings) -> np.ndarray:
        """``[N, 1, D]``: the model's penultimate activations (``model.embed``) of the images."""
        images = data.train.images
        with torch.no_grad():
            acts = [model.embed(model.normalize(images[index[i:i + BATCH]].to(device))).float().cpu()
                    for i in range(0, len(index), BATCH)]
        out = torch.cat(acts) if acts else torch.empty(0, 1)
        return out.flatten(1).unsqueeze(1).numpy().astype(np.float64)


@clusterer_inputs.register(PIXELS)
class Pixels(ClustererInput):
    """The raw training images, RGB average-pooled to map_size and flattened (one view): the no-model control."""

    uses_model = False

    def views(self, *, model, data, index, device, settings) -> np.ndarray:
        """``[N, 1, 3*s*s]``: the RGB images average-pooled to ``map_size``."""
        images = data.train.images[index]
        return pool(images, settings).flatten(1).unsqueeze(1).numpy().astype(np.float64)


LABEL_FIT = "label-fit"
SAMPLE_INDEX = "sample-index"


def label_fit(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """``[N, 2]`` float64 per sample: cross-entropy ``-log p_y`` and deficit ``max_{k != y} log p_k - log p_y``.

    ``p`` is the softmax of ``logits [N, K]`` (float64) and ``y`` the training label. The deficit is
    positive exactly where another class is predicted (a tie counts as agreement); ``K >= 2``.
    """
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"{LABEL_FIT}: needs logits [N, K] with K >= 2 classes, got shape {tuple(logits.shape)}")
    logp = torch.log_softmax(logits.double(), dim=1)
    y = torch.as_tensor(labels, dtype=torch.long).view(-1, 1).to(logp.device)
    own = logp.gather(1, y)[:, 0]
    other = logp.scatter(1, y, -math.inf).max(dim=1).values
    return torch.stack([-own, other - own], dim=1).cpu().numpy()


@clusterer_inputs.register(LABEL_FIT)
class LabelFit(ClustererInput):
    """The trained model's fit to each training label (one view ``[loss, deficit]``): the trivial floors' input.

    The training label is the data a defender has (not ground truth: a poisoned image's label is its
    poisoned label), so the kind reads ``data.train.labels`` and no poisoned flag; one forward pass.
    """

    uses_model = True
    uses_settings = False

    def views(self, *, model, data, index, device, settings) -> np.ndarray:
        """``[N, 1, 2]``: :func:`label_fit` of the model's logits on the images at ``index`` and their labels."""
        images, labels = data.train.images, data.train.labels[index]
        with torch.no_grad():
            logits = [model(model.normalize(images[index[i:i + BATCH]].to(device))).double().cpu()
                      for i in range(0, len(index), BATCH)]
        out = label_fit(torch.cat(logits), labels) if logits else np.empty((0, 2))
        return out[:, None, :].astype(np.float64)


@clusterer_inputs.register(SAMPLE_INDEX)
class SampleIndex(ClustererInput):
    """Each image's position ``0..N-1`` and nothing of its content (one view): the random filter's input."""

    uses_model = False
    uses_settings = False

    def views(self, *, model, data, index, device, settings) -> np.ndarray:
        """``[N, 1, 1]``: the positions ``0..N-1`` (distinct, so the views are never degenerate)."""
        return np.arange(len(index), dtype=np.float64).reshape(-1, 1, 1)
