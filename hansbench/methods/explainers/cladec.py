"""ClaDec explanations (Schneider & Vlachos): occlusion relevance and the ClaDec-vs-RefAE difference.

Neither captum nor zennit has ClaDec; decoder training and both maps are written here
(models in :mod:`hansbench.models.cladec`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from hansbench.methods.base import Explainer
from hansbench.models.cladec import ClaDecModels, build_cladec, train_cladec
from hansbench.registry import explainers


def _cached(workspace: Any, key: dict, build: Callable[[], nn.Module], init: Callable[[], nn.Module]) -> nn.Module:
    """``workspace.cached_module`` (tensors in ``key`` are hashed by content); no workspace: train."""
    if workspace is None:
        return build()
    return workspace.cached_module(key, build, init=init)


class _ClaDecBase(Explainer):
    """Shared setup: train (or load) the ClaDec decoder and RefAE for a frozen classifier."""

    model_kinds = ("classifier",)

    def __init__(self, layer: str | None = None, epochs: int = 5, lr: float = 1e-3, batch_size: int = 64,
                 alpha: float = 1e-3, seed: int = 0, max_train_images: int | None = None):
        self.layer = layer  # a module name in the model, under "backbone."; None = the backbone output (model.features)
        self.epochs = int(epochs)
        self.lr = float(lr)
        self.batch_size = int(batch_size)
        self.alpha = float(alpha)
        self.seed = int(seed)
        self.max_train_images = max_train_images
        self._models: ClaDecModels | None = None

    def setup(self, model: nn.Module, data: Any, workspace: Any = None) -> None:
        """Train the decoder (classifier frozen, eval mode) and the RefAE on ``data.train``; cache both."""
        self.check_model(model)
        layer = self._backbone_layer()
        images, labels = data.train.images, data.train.labels
        if self.max_train_images is not None:
            images, labels = images[: self.max_train_images], labels[: self.max_train_images]
        key = {
            "what": "cladec-models", "version": self.version, "model": model.state_dict(),
            "data": [images, labels], "layer": self.layer, "epochs": self.epochs, "lr": self.lr,
            "batch_size": self.batch_size, "alpha": self.alpha, "seed": self.seed,
        }
        shape = tuple(images.shape[1:])
        self._models = _cached(
            workspace, key,
            build=lambda: train_cladec(model, images, labels, layer=layer, epochs=self.epochs, lr=self.lr,
                                       batch_size=self.batch_size, alpha=self.alpha, seed=self.seed),
            init=lambda: build_cladec(model, shape, layer, self.seed),
        ).eval()

    def _backbone_layer(self) -> str | None:
        if self.layer is None:
            return None
        prefix = "backbone."
        if not self.layer.startswith(prefix):
            raise ValueError(f"cladec layer {self.layer!r} must be a backbone module, e.g. 'backbone.layers.3'; "
                             "the RefAE encoder copies the backbone only")
        return self.layer[len(prefix):]

    @property
    def models_(self) -> ClaDecModels:
        """The trained decoder and RefAE (after ``setup``)."""
        if self._models is None:
            raise RuntimeError(f"explainer {self.name!r} needs setup(model, data, workspace) before explain "
                               "(it trains a decoder for the model)")
        return self._models

    def _ready(self, model: nn.Module, x: torch.Tensor) -> ClaDecModels:
        self.check_model(model)
        return self.models_.to(x.device).eval()


@explainers.register("cladec")
class ClaDecOcclusion(_ClaDecBase):
    """ClaDec occlusion relevance: how much occluding a window changes the decoder's reconstruction inside it.

    R(O) = sum_{i in O} ||x_hat_E^occ(i) - x_hat_E(i)||^2 (ClaDec paper, Sec. 6.6) for square
    windows of side ``window`` x image side, moved with stride ``stride`` x image side; a pixel's
    relevance is the mean R(O) of the windows that cover it. Occluded pixels are set to
    ``fill`` in normalised space (0 = the per-channel data mean: the paper's grey).
    All windows x images are stacked and decoded in chunks of ``chunk_size`` images, a memory bound: the
    windows are summed once over all chunks, so the maps do not depend on it wherever the decoder's
    forward is batch-invariant (measured bit for bit on the CPU; cuDNN may pick other kernels per batch
    size). 256 keeps the quick suite's peak RSS at 1.94 GiB against 2.12 GiB with 1024 and decodes 1.5-1.6x
    faster (PERFORMANCE.md).
    Needs ``setup`` first; non-negative maps.
    """

    def __init__(self, window: float = 0.25, stride: float = 0.125, fill: float = 0.0, chunk_size: int = 256,
                 **setup_options: Any):
        super().__init__(**setup_options)
        self.window = float(window)
        self.stride = float(stride)
        self.fill = float(fill)
        self.chunk_size = int(chunk_size)

    def windows(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        """Boolean masks of all occlusion windows ``[N, h, w]`` (the last row/column touches the border)."""
        sh, sw = max(1, round(h * self.window)), max(1, round(w * self.window))
        th, tw = max(1, round(h * self.stride)), max(1, round(w * self.stride))
        ys = sorted(set(range(0, h - sh + 1, th)) | {h - sh})
        xs = sorted(set(range(0, w - sw + 1, tw)) | {w - sw})
        rows = torch.arange(h, device=device)
        cols = torch.arange(w, device=device)
        y0 = torch.tensor(ys, device=device).repeat_interleave(len(xs))
        x0 = torch.tensor(xs, device=device).repeat(len(ys))
        in_y = (rows[None] >= y0[:, None]) & (rows[None] < y0[:, None] + sh)  # [N, h]
        in_x = (cols[None] >= x0[:, None]) & (cols[None] < x0[:, None] + sw)  # [N, w]
        return in_y[:, :, None] & in_x[:, None, :]

    @torch.no_grad()
    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``[B, 1, H, W]`` occlusion relevance from the reconstruction change (decoder trained in ``setup``)."""
        pair = self._ready(model, x)
        b, c, h, w = x.shape
        x_hat = pair.reconstruct(model, x)  # [B, C, H, W]
        masks = self.windows(h, w, x.device)  # [N, H, W]
        per_chunk = max(1, self.chunk_size // b)
        scores = []
        for start in range(0, masks.shape[0], per_chunk):  # chunks of windows, each batched over windows x images
            m = masks[start:start + per_chunk]  # [n, H, W]
            occluded = torch.where(m[:, None, None], torch.full_like(x[:1], self.fill), x[None])  # [n, B, C, H, W]
            rec = pair.reconstruct(model, occluded.flatten(0, 1)).view(len(m), b, c, h, w)
            change = (rec - x_hat[None]).pow(2).sum(dim=2)  # [n, B, H, W]
            scores.append((change * m[:, None]).sum(dim=(-2, -1)))  # R(O) per window and image [n, B]
        # one sum over every window, whatever the chunks: chunk_size only bounds one decoding pass's memory
        relevance = torch.einsum("nb,nhw->bhw", torch.cat(scores), masks.float())
        coverage = masks.float().sum(dim=0)  # windows covering each pixel (>= 1 everywhere)
        return (relevance / coverage)[:, None].float()


@explainers.register("cladec-diff")
class ClaDecDifference(_ClaDecBase):
    """ClaDec reconstruction difference: sum over colour channels of |x_hat_RefAE - x_hat_ClaDec|.

    Where the classifier's layer keeps less (or other) information than a plain auto-encoder
    of the same architecture, the two reconstructions differ. Needs ``setup`` first; non-negative maps.
    """

    @torch.no_grad()
    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``[B, 1, H, W]``: |RefAE reconstruction - ClaDec reconstruction| summed over colour channels."""
        pair = self._ready(model, x)
        diff = (pair.reconstruct_ref(x) - pair.reconstruct(model, x)).abs().sum(dim=1, keepdim=True)
        return diff.float()
