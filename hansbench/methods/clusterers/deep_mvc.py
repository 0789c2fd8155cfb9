"""SiMVC and CoMVC: deep multi-view clustering (Trosten, Lokse, Jenssen & Kampffmeyer, CVPR 2021).

Model (PAPERS.md §5): one encoder per view ``z_v = f_v(x_v)`` -- by default a small CNN over the
view's square map (``[N, V, h*w]`` is reshaped to ``[N*V, 1, h, w]`` per view), or an MLP
(``encoder="mlp"``, which also takes views of different sizes) -- weighted-mean fusion
``z = sum_v w_v z_v`` with ``w = softmax(learned logits)``, and the DDC clustering head
(Kampffmeyer et al. 2019) ``Linear -> ReLU -> BN -> Linear -> softmax``. All V encoders run as one
batched op (per-view weights stacked; grouped convolutions).

Losses (DDC, on a batch; ``A`` = soft assignments, ``h`` = the head's hidden layer):
``K = exp(-||h_i - h_j||^2 / (2 sigma^2))`` with ``sigma^2 = 0.15 * median ||h_i - h_j||^2``;
``d_cs(A) = 2/(k(k-1)) sum_{i<j} a_i^T K a_j / sqrt(a_i^T K a_i a_j^T K a_j)`` over cluster columns;
``ddc_1 = d_cs(A)``, ``ddc_2 = 2/(n(n-1)) sum_{i<j} A_i . A_j``, ``ddc_3 = d_cs(exp(-||A_i - e_j||^2))``.
CoMVC adds ``delta * min_v(w_v) * L_contrastive`` (delta = 0.1, adaptive weight as in the authors'
code): an InfoNCE loss with temperature tau = 0.1 between the L2-normalised view representations
of the same sample (positives), against the samples of other predicted clusters (negatives; all of
them, masked, instead of the authors' sampled subset, so no RNG draw and no Python loop).

Protocol: ``runs`` independent trainings of ``epochs`` epochs (Adam, lr 1e-3, batch 100); the run
with the lowest ddc_1 (evaluated in eval mode over fixed batches of the whole data) is kept
[C]. The paper protocol is ``runs=20, epochs=100``; the defaults (3 x 50) fit a CPU. Inputs are
standardised per view (one mean map and one scalar std per view). Seeded per run inside
``torch.random.fork_rng``: the global RNG state is untouched. ``device=None`` picks CUDA when present.

Two decisions [D] make the method work on the small samples this harness clusters (100s of maps,
where N is far below the number of encoder parameters). Without them any balanced partition is
a near-zero-loss minimum: the encoders can make *any* split of a few hundred points separable in
the kernel space, so DDC sharpens whichever split the random initial head favoured (a random
hyperplane, dominated by noise dimensions) and the runs that start badly stay at 55-70 %
accuracy on planted views, independent of epochs, learning rate or batch size:

- the output layer of the head starts near zero (weights x ``HEAD_INIT_SCALE``, bias 0), so the
  first assignments are near-uniform; at that symmetric point the descent direction of the
  Cauchy-Schwarz term is the leading eigenvector of the (centred) kernel matrix -- the data's
  dominant structure -- instead of a random split;
- ``input_noise`` (default 1.0, in units of the per-view std): Gaussian noise added to the
  standardised inputs at every training step (not at evaluation), a regulariser equivalent to a
  Tikhonov penalty (Bishop 1995) that stops the encoders from memorising a split of the noise.
  ``input_noise=0`` gives the plain method.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hansbench.methods.clusterers._base import BaseClusterer
from hansbench.methods.clusterers._validation import check_choice
from hansbench.registry import clusterers

EPS = 1e-9
REL_SIGMA = 0.15
HEAD_INIT_SCALE = 0.01  # the head's output layer starts near zero: near-uniform first assignments [D]


class ViewLinear(nn.Module):
    """V independent linear layers applied at once: ``[B, V, in] -> [B, V, out]``."""

    def __init__(self, n_views: int, d_in: int, d_out: int):
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)
        self.weight = nn.Parameter(torch.empty(n_views, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_views, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, V, in] -> [B, V, out]``, each view through its own weights."""
        return torch.einsum("bvi,vio->bvo", x, self.weight) + self.bias


class ViewBN(nn.Module):
    """BatchNorm with separate statistics per view and feature: ``[B, V, F]``."""

    def __init__(self, n_views: int, d: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(n_views * d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``[B, V, F]`` with statistics per view and feature."""
        b, v, d = x.shape
        return self.bn(x.reshape(b, v * d)).reshape(b, v, d)


class MLPEncoders(nn.Module):
    """One MLP per view (views of any size), all V at once: ``[B, V, D] -> [B, V, H]``."""
    def __init__(self, n_views: int, d_in: int, hidden: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = []
        for d_out in hidden:
            layers += [ViewLinear(n_views, d_in, d_out), ViewBN(n_views, d_out), nn.ReLU()]
            d_in = d_out
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, V, D] -> [B, V, H]
        """``[B, V, D] -> [B, V, H]``."""
        return self.net(x)


class CNNEncoders(nn.Module):
    """One CNN per view over ``side x side`` maps, all V at once via grouped convolutions (groups = V).

    Per layer: 3x3 conv (padding 1) -> BN -> ReLU, then 2x2 max-pooling while the map is at least
    ``POOL_MIN_SIDE`` pixels; the final maps are average-pooled to at most ``FLAT_MAX_SIDE`` pixels a
    side and flattened (position information kept, as in the authors' CNNs), then a per-view
    ``Linear -> BN -> ReLU`` to ``d_out``.
    """

    POOL_MIN_SIDE = 8
    FLAT_MAX_SIDE = 6

    def __init__(self, n_views: int, side: int, channels: tuple[int, ...], d_out: int):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, s = 1, side
        for c in channels:
            layers += [nn.Conv2d(n_views * c_in, n_views * c, 3, padding=1, groups=n_views),
                       nn.BatchNorm2d(n_views * c), nn.ReLU()]
            if s >= self.POOL_MIN_SIDE:
                layers.append(nn.MaxPool2d(2))
                s //= 2
            c_in = c
        if s > self.FLAT_MAX_SIDE:
            layers.append(nn.AdaptiveAvgPool2d(self.FLAT_MAX_SIDE))
            s = self.FLAT_MAX_SIDE
        self.conv = nn.Sequential(*layers)
        self.n_views, self.side, self.d_flat = n_views, side, c_in * s * s
        self.head = nn.Sequential(ViewLinear(n_views, self.d_flat, d_out), ViewBN(n_views, d_out), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, V, s*s] -> [B, V, d_out]
        """``[B, V, s*s] -> [B, V, d_out]``."""
        b = x.shape[0]
        y = self.conv(x.reshape(b, self.n_views, self.side, self.side))  # [B, V*C, s', s'], view-major channels
        return self.head(y.reshape(b, self.n_views, self.d_flat))


class MVCNet(nn.Module):
    """SiMVC/CoMVC: view encoders, softmax-weighted fusion, the DDC clustering head."""
    def __init__(self, encoders: nn.Module, n_views: int, d_rep: int, n_clusters: int, d_hidden: int = 100):
        super().__init__()
        self.encoders = encoders
        self.fusion_logits = nn.Parameter(torch.zeros(n_views))
        self.hidden = nn.Sequential(nn.Linear(d_rep, d_hidden), nn.ReLU(), nn.BatchNorm1d(d_hidden))
        self.out = nn.Linear(d_hidden, n_clusters)
        with torch.no_grad():
            self.out.weight.mul_(HEAD_INIT_SCALE)
            self.out.bias.zero_()

    @property
    def fusion_weights(self) -> torch.Tensor:
        """The views' fusion weights (softmax of the learned logits)."""
        return torch.softmax(self.fusion_logits, dim=0)

    def forward(self, x: torch.Tensor):
        """``(view representations, fused hidden layer, soft cluster assignments)`` of ``x``."""
        z = self.encoders(x)  # [B, V, H]
        fused = torch.einsum("bvh,v->bh", z, self.fusion_weights)
        hidden = self.hidden(fused)
        return z, hidden, torch.softmax(self.out(hidden), dim=1)


def _sqdist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.relu((x * x).sum(1, keepdim=True) - 2 * x @ y.T + (y * y).sum(1)[None, :])


def _triu_sum(m: torch.Tensor) -> torch.Tensor:
    return torch.triu(m, diagonal=1).sum()


def _d_cs(a: torch.Tensor, kernel: torch.Tensor, k: int) -> torch.Tensor:
    nom = a.T @ kernel @ a
    diag = torch.diagonal(nom)
    dnom2 = torch.clamp(diag[:, None] * diag[None, :], min=EPS**2)
    return 2.0 / (k * (k - 1)) * _triu_sum(torch.clamp(nom, min=EPS) / torch.sqrt(dnom2))


def ddc_losses(hidden: torch.Tensor, assign: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ddc_1, ddc_2, ddc_3 of Kampffmeyer et al. (2019) on one batch."""
    n, k = assign.shape
    dist = _sqdist(hidden, hidden)
    sigma2 = REL_SIGMA * torch.median(dist.detach()).clamp(min=EPS)
    kernel = torch.exp(-dist / (2 * sigma2))
    if k < 2:
        zero = hidden.sum() * 0
        return zero, zero, zero
    ddc1 = _d_cs(assign, kernel, k)
    ddc2 = 2.0 / (n * (n - 1)) * _triu_sum(assign @ assign.T)
    m = torch.exp(-_sqdist(assign, torch.eye(k, device=assign.device, dtype=assign.dtype)))
    ddc3 = _d_cs(m, kernel, k)
    return ddc1, ddc2, ddc3


def contrastive_loss(z: torch.Tensor, assign: torch.Tensor, tau: float) -> torch.Tensor:
    """CoMVC's selective InfoNCE: same sample across views = positive; other predicted clusters = negatives."""
    b, v, _ = z.shape
    if v < 2:
        return z.sum() * 0
    zz = F.normalize(z, dim=2).transpose(0, 1).reshape(v * b, -1)  # view-major [V*B, H]
    logits = zz @ zz.T / tau
    sample = torch.arange(b, device=z.device).repeat(v)
    cat = assign.detach().argmax(1).repeat(v)
    pos_mask = (sample[:, None] == sample[None, :]) & ~torch.eye(v * b, dtype=torch.bool, device=z.device)
    neg_mask = cat[:, None] != cat[None, :]
    neg_lse = torch.logsumexp(logits.masked_fill(~neg_mask, float("-inf")), dim=1)  # -inf where none
    pos = logits[pos_mask].reshape(v * b, v - 1)
    denom = torch.logaddexp(pos, neg_lse[:, None])
    return (denom - pos).mean()


class _DeepMVC(BaseClusterer):
    contrastive: ClassVar[bool] = False
    multiview = True  # the V views are clustered jointly (no pixels control)
    version: ClassVar[str] = "2"  # 2: CNN encoders by default, near-zero head init, input noise

    def __init__(self, n_clusters: int = 2, random_state: int = 0, flag_rule: str = "smaller", *,
                 encoder: str = "cnn", hidden: tuple[int, ...] = (64, 32), channels: tuple[int, ...] = (8, 16),
                 head_hidden: int = 100, runs: int = 3, epochs: int = 50, batch_size: int = 100, lr: float = 1e-3,
                 tau: float = 0.1, delta: float = 0.1, standardize: bool = True, input_noise: float = 1.0,
                 device: str | None = None):
        super().__init__(n_clusters=n_clusters, random_state=random_state, flag_rule=flag_rule)
        self.encoder = encoder
        self.hidden = hidden
        self.channels = channels
        self.head_hidden = head_hidden
        self.runs = runs
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.tau = tau
        self.delta = delta
        self.standardize = standardize
        self.input_noise = input_noise
        self.device = device

    # -- data ------------------------------------------------------------------------
    def _tensor(self, views: list[np.ndarray], device: torch.device) -> torch.Tensor:
        dims = {x.shape[1] for x in views}
        if len(dims) > 1 and self.encoder == "cnn":
            raise ValueError(f"{self.name}: the CNN encoder needs views of one size, got {sorted(dims)}; "
                             "use encoder='mlp' (zero-pads each view, which leaves an MLP unchanged)")
        n, d = views[0].shape[0], max(dims)
        out = np.zeros((n, len(views), d), dtype=np.float32)  # zero padding for smaller views
        for v, x in enumerate(views):  # one view at a time: peak memory ~ the float32 copy + one view
            out[:, v, : x.shape[1]] = x
            if self.standardize:
                std = float(x.std())
                out[:, v, : x.shape[1]] -= x.mean(axis=0).astype(np.float32)
                out[:, v, : x.shape[1]] /= std if std > 0 else 1.0
        return torch.from_numpy(out).to(device)

    def _model(self, n_views: int, d: int) -> MVCNet:
        check_choice(self.encoder, ("mlp", "cnn"), "encoder", self.name)
        hidden = tuple(self.hidden)
        if not hidden:
            raise ValueError(f"{self.name}: hidden must name at least one layer size, got {self.hidden!r}")
        if self.encoder == "mlp":
            enc: nn.Module = MLPEncoders(n_views, d, hidden)
        else:
            side = math.isqrt(d)
            if side * side != d:
                raise ValueError(f"{self.name}: encoder='cnn' needs square maps, D = {d} is not; use encoder='mlp'")
            enc = CNNEncoders(n_views, side, tuple(self.channels), hidden[-1])
        return MVCNet(enc, n_views, hidden[-1], self.n_clusters, self.head_hidden)

    def _batches(self, n: int, gen: torch.Generator | None, device: torch.device) -> list[torch.Tensor]:
        order = torch.randperm(n, generator=gen).to(device) if gen is not None else torch.arange(n, device=device)
        bs = max(2, min(self.batch_size, n))
        chunks = list(torch.split(order, bs))
        if len(chunks) > 1 and chunks[-1].numel() < 2:  # BatchNorm needs two samples
            chunks = chunks[:-1]
        return chunks

    # -- training --------------------------------------------------------------------
    def _losses(self, net: MVCNet, xb: torch.Tensor) -> dict[str, torch.Tensor]:
        z, hidden, assign = net(xb)
        d1, d2, d3 = ddc_losses(hidden, assign)
        out = {"ddc_1": d1, "ddc_2": d2, "ddc_3": d3}
        total = d1 + d2 + d3
        if self.contrastive:
            out["contrastive"] = contrastive_loss(z, assign, self.tau)
            total = total + self.delta * net.fusion_weights.min() * out["contrastive"]
        out["total"] = total
        return out

    def _run(self, x: torch.Tensor, seed: int, device: torch.device) -> dict:
        n, v, d = x.shape
        torch.manual_seed(seed)  # inside fork_rng: seeds CPU and CUDA, restored afterwards
        net = self._model(v, d).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(self.epochs):
            net.train()
            for idx in self._batches(n, gen, device):
                xb = x[idx]
                if self.input_noise > 0:
                    xb = xb + self.input_noise * torch.randn_like(xb)
                loss = self._losses(net, xb)["total"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        net.eval()
        with torch.no_grad():
            per_batch = [self._losses(net, x[idx]) for idx in self._batches(n, None, device)]
            losses = {k: float(torch.stack([b[k] for b in per_batch]).mean()) for k in per_batch[0]}
            probs = torch.cat([net(x[i : i + 1024])[2] for i in range(0, n, 1024)]).double().cpu().numpy()
        return {"losses": losses, "labels": probs.argmax(1), "probs": probs,
                "fusion_weights": net.fusion_weights.detach().cpu().tolist()}

    def _fit(self, views: list[np.ndarray]) -> tuple[np.ndarray, dict, np.ndarray]:
        if self.runs < 1 or self.epochs < 0:
            raise ValueError(f"{self.name}: runs must be >= 1 and epochs >= 0, got {self.runs}, {self.epochs}")
        if self.input_noise < 0:
            raise ValueError(f"{self.name}: input_noise must be >= 0, got {self.input_noise}")
        device = torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"{self.name}: device {self.device!r} requested but CUDA is not available; "
                               "use device=None (CUDA when present) or 'cpu'")
        x = self._tensor(views, device)
        results = []
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            for r in range(self.runs):
                results.append(self._run(x, int(self.random_state) * 1000 + r, device))
        ddc1 = np.array([r["losses"]["ddc_1"] for r in results])
        best = int(np.nanargmin(ddc1)) if np.isfinite(ddc1).any() else 0
        chosen = results[best]
        labels = chosen["labels"]
        # score: the DDC head's soft assignment to the flagged cluster minus the largest other one
        probs = chosen["probs"]
        flagged = self._flagged_of(labels)
        others = np.delete(probs, flagged, axis=1).max(axis=1) if probs.shape[1] > 1 else 0.0
        scores = probs[:, flagged] - others
        return labels, {"best_run": best, "best_run_loss": float(ddc1[best]), "run_losses": ddc1.tolist(),
                        "best_run_losses": chosen["losses"], "fusion_weights": chosen["fusion_weights"],
                        "cluster_sizes": np.bincount(labels, minlength=self.n_clusters).tolist(),
                        "encoder": self.encoder, "input_noise": float(self.input_noise), "device": str(device),
                        "runs": self.runs, "epochs": self.epochs}, scores


@clusterers.register("simvc")
class SiMVC(_DeepMVC):
    """SiMVC: per-view encoders, softmax-weighted fusion, DDC head and losses; best of several runs by ddc_1."""


@clusterers.register("comvc")
class CoMVC(_DeepMVC):
    """CoMVC: SiMVC plus selective contrastive alignment of the views (tau 0.1, delta 0.1)."""

    contrastive = True
