"""Value tests of the DDC losses (Kampffmeyer et al. 2019) and CoMVC's selective contrastive loss.

Each is compared with a literal per-element reference (explicit loops in float64), so a wrong sum,
a missing normalisation or a swapped mask fails here even when SiMVC/CoMVC still cluster planted views.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from hansbench.methods.clusterers.deep_mvc import REL_SIGMA, contrastive_loss, ddc_losses


def _kernel(h: np.ndarray) -> np.ndarray:
    d = ((h[:, None, :] - h[None, :, :]) ** 2).sum(-1)
    lower_median = np.sort(d.ravel())[(d.size - 1) // 2]  # torch.median's (the authors' code) convention
    sigma2 = REL_SIGMA * lower_median
    return np.exp(-d / (2 * sigma2))


def _cs(a: np.ndarray, kern: np.ndarray) -> float:
    k = a.shape[1]
    total = 0.0
    for i, j in itertools.combinations(range(k), 2):
        num = a[:, i] @ kern @ a[:, j]
        den = math.sqrt((a[:, i] @ kern @ a[:, i]) * (a[:, j] @ kern @ a[:, j]))
        total += num / den
    return 2.0 / (k * (k - 1)) * total


def _reference(hidden: np.ndarray, assign: np.ndarray) -> tuple[float, float, float]:
    n, k = assign.shape
    kern = _kernel(hidden)
    ddc1 = _cs(assign, kern)
    ddc2 = 2.0 / (n * (n - 1)) * sum(assign[a] @ assign[b] for a, b in itertools.combinations(range(n), 2))
    m = np.exp(-((assign[:, None, :] - np.eye(k)[None, :, :]) ** 2).sum(-1))
    ddc3 = _cs(m, kern)
    return ddc1, ddc2, ddc3


@pytest.mark.parametrize("k", [2, 3])
def test_ddc_losses_equal_the_literal_formulas(k):
    g = torch.Generator().manual_seed(k)
    hidden = torch.randn(12, 5, generator=g, dtype=torch.float64)
    assign = torch.softmax(torch.randn(12, k, generator=g, dtype=torch.float64), dim=1)
    got = [float(v) for v in ddc_losses(hidden, assign)]
    want = _reference(hidden.numpy(), assign.numpy())
    assert got == pytest.approx(want, rel=1e-6, abs=1e-9)


def test_ddc_losses_reward_the_planted_split():
    """Two tight, far-apart groups: the matching one-hot assignment scores lower ddc_1 and ddc_3 than a random one."""
    g = torch.Generator().manual_seed(0)
    hidden = torch.cat([torch.randn(10, 4, generator=g) * 0.05, torch.randn(10, 4, generator=g) * 0.05 + 5])
    right = torch.nn.functional.one_hot(torch.arange(20) // 10, 2).float()
    wrong = torch.nn.functional.one_hot(torch.arange(20) % 2, 2).float()
    r1, r2, r3 = ddc_losses(hidden, right)
    w1, w2, w3 = ddc_losses(hidden, wrong)
    assert float(r1) < 0.01 < float(w1) and float(r3) < float(w3)
    assert float(r2) == pytest.approx(2 * 45 / 190)  # one-hot: same-cluster pairs / all pairs


def _contrastive_reference(z: np.ndarray, assign: np.ndarray, tau: float) -> float:
    b, v, _ = z.shape
    zn = z / np.linalg.norm(z, axis=2, keepdims=True)
    rows = [(s, w) for w in range(v) for s in range(b)]  # view-major, as the implementation
    cat = assign.argmax(1)
    losses = []
    def sim(a: tuple[int, int], t: tuple[int, int]) -> float:
        return float(zn[a[0], a[1]] @ zn[t[0], t[1]]) / tau

    for s, w in rows:
        negs = [math.exp(sim((s, w), t)) for t in rows if cat[t[0]] != cat[s]]
        for w2 in range(v):
            if w2 == w:
                continue
            pos = math.exp(sim((s, w), (s, w2)))
            losses.append(-math.log(pos / (pos + sum(negs))))
    return float(np.mean(losses))


def test_contrastive_loss_equals_the_literal_formula():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(6, 3, 4, generator=g, dtype=torch.float64)
    assign = torch.softmax(torch.randn(6, 2, generator=g, dtype=torch.float64), dim=1)
    got = float(contrastive_loss(z, assign, tau=0.5))
    assert got == pytest.approx(_contrastive_reference(z.numpy(), assign.numpy(), 0.5), rel=1e-6)


def test_contrastive_loss_is_low_when_views_agree_and_clusters_differ():
    base = torch.eye(4, dtype=torch.float64)[:4]  # four samples, orthogonal embeddings
    aligned = base[:, None, :].repeat(1, 2, 1)  # both views identical
    misaligned = torch.stack([base, base.roll(1, 0)], dim=1)  # view 2 shows another sample's embedding
    assign = torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1]], dtype=torch.float64)
    assert float(contrastive_loss(aligned, assign, 0.1)) < float(contrastive_loss(misaligned, assign, 0.1))
