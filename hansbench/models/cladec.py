"""ClaDec (Schneider & Vlachos): a decoder that shows what a frozen classifier's layer keeps, and its RefAE.

* ClaDec decoder: layer-L activations of the frozen classifier -> image, trained with
  (1 - alpha) * MSE(x_hat, x) + alpha * CE(classifier(x_hat), y), alpha = 0.001 as in the
  authors' code.
* RefAE: a fresh, untrained copy of the classifier's backbone (same architecture) plus a
  decoder of the same architecture, trained jointly with MSE only. Differences between the
  two reconstructions are what the classifier's training put into (or left out of) layer L.

Images are reconstructed in the classifier's normalised input space. The classifier is
frozen and kept in eval mode throughout: its parameters get no gradients, and its BatchNorm
statistics do not move (the reference code lets them drift; PAPERS.md section 4).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn


class Decoder(nn.Module):
    """Feature map ``[B, C, h, w]`` -> image ``[B, out_channels, H, W]`` with 5x5 (de)convolutions.

    One stride-2 5x5 transposed convolution (+BN+ReLU) per factor 2 of upsampling, halving
    the width each time (not below ``min_width``), then a 5x5 convolution to the image
    channels; a final bilinear resize covers sizes that are not powers of two apart.
    """

    def __init__(self, in_channels: int, in_size: tuple[int, int], out_size: tuple[int, int],
                 out_channels: int = 3, min_width: int = 16):
        super().__init__()
        self.out_size = tuple(int(s) for s in out_size)
        ratio = max(self.out_size[0] / in_size[0], self.out_size[1] / in_size[1])
        n_up = max(0, round(math.log2(ratio))) if ratio > 1 else 0
        layers: list[nn.Module] = []
        ch = in_channels
        for _ in range(n_up):
            nxt = max(min_width, ch // 2)
            layers += [nn.ConvTranspose2d(ch, nxt, 5, stride=2, padding=2, output_padding=1, bias=False),
                       nn.BatchNorm2d(nxt), nn.ReLU()]
            ch = nxt
        layers.append(nn.Conv2d(ch, out_channels, 5, padding=2))
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        y = self.layers(z)
        if tuple(y.shape[-2:]) != self.out_size:
            y = F.interpolate(y, size=self.out_size, mode="bilinear", align_corners=False)
        return y


def layer_output(backbone: nn.Module, x: torch.Tensor, layer: str | None) -> torch.Tensor:
    """Activations of ``layer`` (a submodule name of ``backbone``; None = the backbone output)."""
    if layer is None:
        return backbone(x)
    store: list[torch.Tensor] = []
    handle = backbone.get_submodule(layer).register_forward_hook(lambda m, i, o: store.append(o))
    try:
        backbone(x)  # the tail after ``layer`` is wasted work; a hook needs no model surgery
    finally:
        handle.remove()
    return store[0]


def fresh_copy(module: nn.Module) -> nn.Module:
    """An untrained module of the same architecture: deepcopy, then reset_parameters everywhere."""
    new = copy.deepcopy(module)
    for m in new.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()  # BatchNorm's also resets its running statistics
    return new


class ClaDecModels(nn.Module):
    """The trained ClaDec decoder and RefAE (encoder + decoder) of one classifier and layer."""

    def __init__(self, encoder_template: nn.Module, feat_shape: tuple[int, int, int], image_shape: tuple[int, int, int],
                 layer: str | None = None):
        super().__init__()
        c, h, w = feat_shape
        self.layer = layer
        self.decoder = Decoder(c, (h, w), image_shape[1:], image_shape[0])
        self.ref_encoder = fresh_copy(encoder_template)
        self.ref_decoder = Decoder(c, (h, w), image_shape[1:], image_shape[0])

    def encode(self, classifier: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return layer_output(classifier.backbone, x, self.layer)

    def reconstruct(self, classifier: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """x_hat_E: ClaDec's reconstruction from the classifier's layer-L activations."""
        return self.decoder(self.encode(classifier, x))

    def reconstruct_ref(self, x: torch.Tensor) -> torch.Tensor:
        """x_hat_R: RefAE's reconstruction."""
        return self.ref_decoder(layer_output(self.ref_encoder, x, self.layer))


class _Frozen:
    """Context: classifier in eval mode with parameters that take no gradient; restored on exit."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self) -> nn.Module:
        self.training = self.model.training
        self.flags = [p.requires_grad for p in self.model.parameters()]
        self.model.eval()
        self.model.requires_grad_(False)
        return self.model

    def __exit__(self, *exc) -> None:
        for p, f in zip(self.model.parameters(), self.flags):
            p.requires_grad_(f)
        self.model.train(self.training)


def build_cladec(classifier: nn.Module, image_shape: tuple[int, int, int], layer: str | None = None,
                 seed: int = 0) -> ClaDecModels:
    """The untrained ClaDec/RefAE pair for ``classifier`` (deterministic initialisation from ``seed``)."""
    dev = next(classifier.parameters()).device
    with torch.no_grad(), _Frozen(classifier):  # eval: a probe in train mode would move BatchNorm statistics
        probe = layer_output(classifier.backbone, torch.zeros(1, *image_shape, device=dev), layer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ClaDecModels(classifier.backbone, tuple(probe.shape[1:]), image_shape, layer).to(dev)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    for i in range(0, n, batch_size):
        yield order[i:i + batch_size]


def train_cladec(classifier: nn.Module, images01: torch.Tensor, labels: torch.Tensor, *, layer: str | None = None,
                 epochs: int = 5, lr: float = 1e-3, batch_size: int = 64, alpha: float = 1e-3,
                 seed: int = 0) -> ClaDecModels:
    """Train the ClaDec decoder and the RefAE on ``images01`` ([0, 1]) with the frozen ``classifier``.

    Both are trained in one pass over the same shuffled batches (seeded). The per-epoch
    mean losses are kept in ``models.history`` ({"cladec": [...], "refae": [...]}).
    """
    dev = next(classifier.parameters()).device
    pair = build_cladec(classifier, tuple(images01.shape[1:]), layer, seed)
    pair.requires_grad_(True)  # the RefAE encoder is a copy of a possibly frozen backbone
    opt_e = torch.optim.Adam(pair.decoder.parameters(), lr=lr)
    opt_r = torch.optim.Adam(list(pair.ref_encoder.parameters()) + list(pair.ref_decoder.parameters()), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    history: dict[str, list[float]] = {"cladec": [], "refae": []}
    pair.train()
    with _Frozen(classifier) as clf:
        for _ in range(epochs):
            sums = torch.zeros(2, device=dev)
            for idx in _batches(len(images01), batch_size, gen):
                x = clf.normalize(images01[idx].to(dev, torch.float32))
                y = labels[idx].to(dev)
                with torch.no_grad():
                    code = pair.encode(clf, x)
                x_hat = pair.decoder(code)
                loss_e = (1 - alpha) * F.mse_loss(x_hat, x) + alpha * F.cross_entropy(clf(x_hat), y)
                opt_e.zero_grad(set_to_none=True)
                loss_e.backward()
                opt_e.step()
                loss_r = F.mse_loss(pair.reconstruct_ref(x), x)
                opt_r.zero_grad(set_to_none=True)
                loss_r.backward()
                opt_r.step()
                sums += torch.stack([loss_e.detach(), loss_r.detach()]) * len(idx)
            means = (sums / len(images01)).tolist()  # one host sync per epoch
            history["cladec"].append(means[0])
            history["refae"].append(means[1])
    pair.eval()
    pair.history = history
    return pair
