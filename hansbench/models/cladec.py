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

:func:`fidelity` is the paper's fidelity test (Sec. 5, PAPERS.md section 6): a fresh evaluation
classifier is trained on ClaDec's reconstructions of the training images and an identical one
(same initialisation, same batches) on RefAE's; each is tested on the matching reconstructions
of the test images. ``delta_acc = acc_cladec - acc_refae`` > 0 says that the classifier's layer
kept what the task needs better than an autoencoder of the same size. :func:`cladec_fidelity`
runs it on a trained :class:`ClaDecModels` pair.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from hansbench.models.modes import eval_mode


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
        """Reconstructed images ``[B, 3, H, W]`` from layer activations ``z``."""
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
        """The classifier's activations at the decoder's layer."""
        return layer_output(classifier.backbone, x, self.layer)

    def reconstruct(self, classifier: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """x_hat_E: ClaDec's reconstruction from the classifier's layer-L activations."""
        return self.decoder(self.encode(classifier, x))

    def reconstruct_ref(self, x: torch.Tensor) -> torch.Tensor:
        """x_hat_R: RefAE's reconstruction."""
        return self.ref_decoder(layer_output(self.ref_encoder, x, self.layer))


class _Frozen:
    """Context: classifier in eval mode (:func:`eval_mode`) with parameters that take no gradient; restored on exit."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self) -> nn.Module:
        self.flags = [p.requires_grad for p in self.model.parameters()]
        self._mode = eval_mode(self.model)
        self._mode.__enter__()
        self.model.requires_grad_(False)
        return self.model

    def __exit__(self, *exc) -> None:
        for p, f in zip(self.model.parameters(), self.flags):
            p.requires_grad_(f)
        self._mode.__exit__(*exc)


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


Images = tuple[torch.Tensor, torch.Tensor]  # (x [N, C, H, W] in the classifier's normalised space, y [N] int64)


def _reconstruct(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int,
                 device: torch.device) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([fn(x[i:i + batch_size].to(device)).float() for i in range(0, len(x), batch_size)])


def _train_and_test(classifier_factory: Callable[[], nn.Module], train: Images, test: Images, *, epochs: int,
                    lr: float, batch_size: int, seed: int, device: torch.device) -> float:
    """Accuracy on ``test`` of a fresh ``classifier_factory()`` trained on ``train`` (all seeded by ``seed``)."""
    (x, y), (xt, yt) = train, test
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # same initialisation and same dropout draws for both evaluation classifiers
        model = classifier_factory().to(device)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(seed)  # same batches for both
        model.train()
        for _ in range(epochs):
            for idx in _batches(len(x), batch_size, gen):
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(xt[i:i + batch_size]).argmax(1) for i in range(0, len(xt), batch_size)])
    return float((pred == yt).float().mean())


def fidelity(classifier_factory: Callable[[], nn.Module], decoder: Callable[[torch.Tensor], torch.Tensor],
             refae: Callable[[torch.Tensor], torch.Tensor], train: Images, test: Images, *, epochs: int = 5,
             lr: float = 1e-3, batch_size: int = 64, seed: int = 0, device: str | torch.device | None = None) -> dict:
    """ClaDec's fidelity test (Schneider & Vlachos, Sec. 5): ``Delta Acc = Acc(C_eval^ClaDec) - Acc(C_eval^RefAE)``.

    ``classifier_factory()`` builds a fresh, untrained evaluation classifier (images -> logits);
    ``decoder(x)`` / ``refae(x)`` return ClaDec's / RefAE's reconstructions of a batch ``x``
    (callables, so any pair of reconstruction functions can be compared). ``train`` and ``test``
    are ``(images, labels)`` in the space the two callables take. Both evaluation classifiers are
    built and trained with the same seed, on the same batches, for ``epochs`` epochs (Adam): the
    reconstructions are the only difference. Returns JSON-safe floats: ``acc_cladec``,
    ``acc_refae``, ``delta_acc`` and the paper's comprehensibility side, the test reconstruction
    losses (mean squared error to the inputs) ``recon_loss_cladec``, ``recon_loss_refae`` and
    ``delta_recon_loss`` (ClaDec minus RefAE).
    """
    (x, y), (xt, yt) = train, test
    if len(x) != len(y) or len(xt) != len(yt) or len(x) == 0 or len(xt) == 0:
        raise ValueError(f"fidelity: train/test need as many labels as images and at least one of each; got "
                         f"{len(x)}/{len(y)} train, {len(xt)}/{len(yt)} test")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"fidelity: epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
    dev = torch.device(device) if device is not None else x.device
    y, yt = y.to(dev, torch.long), yt.to(dev, torch.long)
    out: dict[str, float] = {}
    for name, fn in (("cladec", decoder), ("refae", refae)):
        rec, rec_t = _reconstruct(fn, x, batch_size, dev), _reconstruct(fn, xt, batch_size, dev)
        if rec.shape != x.shape or rec_t.shape != xt.shape:
            raise ValueError(f"fidelity: {name} reconstructions have shape {tuple(rec.shape[1:])}, "
                             f"the images {tuple(x.shape[1:])}")
        out[f"acc_{name}"] = _train_and_test(classifier_factory, (rec, y), (rec_t, yt), epochs=epochs, lr=lr,
                                             batch_size=batch_size, seed=seed, device=dev)
        out[f"recon_loss_{name}"] = float(F.mse_loss(rec_t, xt.to(dev).float()))
    out["delta_acc"] = out["acc_cladec"] - out["acc_refae"]
    out["delta_recon_loss"] = out["recon_loss_cladec"] - out["recon_loss_refae"]
    return out


def cladec_fidelity(pair: ClaDecModels, classifier: nn.Module, classifier_factory: Callable[[], nn.Module],
                    train: Images, test: Images, **kwargs) -> dict:
    """:func:`fidelity` of a trained ClaDec/RefAE ``pair`` of ``classifier`` (images normalised, as the pair's).

    The pair and the classifier are used in eval mode (the classifier frozen); their modes are restored.
    """
    with eval_mode(pair), _Frozen(classifier) as clf:
        return fidelity(classifier_factory, lambda x: pair.reconstruct(clf, x), pair.reconstruct_ref, train, test,
                        **{"device": next(pair.parameters()).device, **kwargs})
