"""STRIP (Gao et al. 2019, *STRIP: A Defence Against Trojan Attacks on Deep Neural Networks*).

A trigger dominates the prediction: an image that carries it keeps its (target) prediction when
another image is superimposed on it, while a clean image's prediction wanders with what is
superimposed. So the entropy of the model's predictions on blends is low for triggered images.
PAPERS.md §8; two registered pieces, since STRIP needs the model:

- the input kind ``strip-entropy`` (registry ``clusterer_inputs``, ``uses_model = True``): for each
  inspected-class training image, ``strip_blends`` (default 100, the paper's N) training images of
  *other* classes (by training label: methods see no ground truth) are drawn without replacement
  (with replacement only if fewer exist), seeded by ``strip_seed`` (default: the ``seed`` the runner
  puts in the settings, else 0); each blend is ``0.5 * image + 0.5 * other`` (``strip_blend = "mean"``)
  or the paper's code's saturating sum ``clip(image + other, 0, 1)`` (``"sum"``, cv2.addWeighted(1, 1)),
  in [0, 1] image space, then normalised by the model; the view is the mean Shannon entropy (nats) of
  the model's softmax over the blends, ``[N, 1, 1]``. Settings come from the suite's ``[clustering]`` table.
- the clusterer ``strip``: score = ``-entropy`` (higher = more suspicious). Without labels the paper
  thresholds at a false-rejection rate of a held-out clean set's entropy distribution; a label-free
  benchmark method has no clean set of the inspected class, so ``rule = "kmeans"`` (default) splits
  the scores with 2-means and flags the lower-entropy cluster, and ``rule = "top"`` flags the
  ``round(1.5 * expected_fraction * n)`` highest scores like the spectral detectors.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch.distributions import Categorical

from hansbench.methods.clusterers._detect import FLAG_NOTE, ScoreDetector, n_removed, removal_info, top_scored
from hansbench.methods.clusterers._graph import kmeans_labels
from hansbench.methods.clusterers._validation import check_choice
from hansbench.methods.inputs import ClustererInput
from hansbench.registry import clusterer_inputs, clusterers

STRIP_ENTROPY = "strip-entropy"
BLENDS = ("mean", "sum")
BLENDS_PER_PASS = 1024  # blended images per forward pass


def blend(images: torch.Tensor, overlays: torch.Tensor, how: str = "mean") -> torch.Tensor:
    """Superimpose ``overlays [B, N, C, H, W]`` on ``images [B, C, H, W]`` (both in [0, 1])."""
    check_choice(how, BLENDS, "strip_blend", "strip")
    base = images.unsqueeze(1)
    return 0.5 * base + 0.5 * overlays if how == "mean" else (base + overlays).clamp(0.0, 1.0)


def draw_overlays(labels: torch.Tensor, index: torch.Tensor, n_blends: int, seed: int) -> torch.Tensor:
    """``[len(index), n_blends]`` training indices of images whose label is not the inspected images' label(s)."""
    if not isinstance(n_blends, (int, np.integer)) or n_blends < 1:
        raise ValueError(f"strip: strip_blends must be a positive integer (the paper uses 100), got {n_blends!r}")
    labels = torch.as_tensor(labels).cpu()
    index = torch.as_tensor(index, dtype=torch.long).cpu()
    pool = torch.nonzero(~torch.isin(labels, labels[index].unique())).flatten()
    if pool.numel() == 0:
        raise ValueError("strip: the training set holds no image of another class to superimpose; "
                         "STRIP needs images of at least one class besides the inspected one")
    g = torch.Generator().manual_seed(int(seed))
    if pool.numel() >= n_blends:  # distinct overlays per image, as the paper draws them
        picks = torch.rand(len(index), pool.numel(), generator=g).argsort(dim=1)[:, :n_blends]
    else:
        picks = torch.randint(pool.numel(), (len(index), n_blends), generator=g)
    return pool[picks]


def strip_entropy(model: torch.nn.Module, images01: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, *,
                  n_blends: int = 100, how: str = "mean", seed: int = 0,
                  device: torch.device | str | None = None) -> np.ndarray:
    """Mean softmax entropy ``[len(index)]`` of ``model`` over ``n_blends`` blends of each image at ``index``."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    index = torch.as_tensor(index, dtype=torch.long).cpu()
    picks = draw_overlays(labels, index, n_blends, seed)
    per_pass = max(1, BLENDS_PER_PASS // n_blends)  # images per forward pass
    out = []
    with torch.no_grad():
        for i in range(0, len(index), per_pass):
            x = images01[index[i:i + per_pass]].to(device)
            o = images01[picks[i:i + per_pass].flatten()].to(device).view(x.shape[0], n_blends, *x.shape[1:])
            logits = model(model.normalize(blend(x, o, how).flatten(0, 1)))
            ent = Categorical(logits=logits.double()).entropy().view(x.shape[0], n_blends)
            out.append(ent.mean(dim=1).cpu())
    return (torch.cat(out) if out else torch.empty(0, dtype=torch.float64)).numpy()


@clusterer_inputs.register(STRIP_ENTROPY)
class StripEntropy(ClustererInput):
    """Mean softmax entropy over blends with other-class training images, one value per image (STRIP's input)."""

    uses_model: ClassVar[bool] = True

    def views(self, *, model, data, index, device, settings) -> np.ndarray:
        """``[N, 1, 1]``: each image's mean softmax entropy over seeded blends with other-class images."""
        seed = settings.get("strip_seed", settings.get("seed", 0))
        ent = strip_entropy(model, data.train.images, data.train.labels, index,
                            n_blends=settings.get("strip_blends", 100), how=settings.get("strip_blend", "mean"),
                            seed=seed, device=device)
        return ent.reshape(-1, 1, 1).astype(np.float64)


@clusterers.register("strip")
class Strip(ScoreDetector):
    """Score = -mean entropy of predictions on blended images; low-entropy cluster flagged (Gao et al. 2019)."""

    input: ClassVar[str] = STRIP_ENTROPY

    def __init__(self, n_clusters: int = 2, random_state: int = 0, flag_rule: str = "smaller", *,
                 rule: str = "kmeans", expected_fraction: float = 0.1, removal_multiplier: float = 1.5):
        super().__init__(n_clusters=n_clusters, random_state=random_state, flag_rule=flag_rule)
        self.rule = rule
        self.expected_fraction = expected_fraction
        self.removal_multiplier = removal_multiplier

    def _fit(self, views: list[np.ndarray]) -> tuple[np.ndarray, dict, np.ndarray]:
        check_choice(self.rule, ("kmeans", "top"), "rule", self.name)
        if len(views) != 1 or views[0].shape[1] != 1:
            raise ValueError(f"{self.name}: expects the '{STRIP_ENTROPY}' input, one entropy per sample [N, 1, 1]; "
                             f"got {len(views)} views of sizes {[v.shape[1] for v in views]}")
        entropy = views[0][:, 0]
        scores = -entropy
        n = scores.shape[0]
        if self.rule == "top":
            m = n_removed(n, self.expected_fraction, self.removal_multiplier, self.name)
            labels, info = top_scored(scores, m), removal_info(self.expected_fraction, self.removal_multiplier, m, n)
        else:
            km = kmeans_labels(scores[:, None], 2, self.random_state)
            low = int(np.argmax([scores[km == c].mean() for c in (0, 1)]))  # the lower-entropy cluster
            labels = (km == low).astype(np.int64)
            info = {"rule": "2-means on -entropy; the lower-entropy cluster flagged", "flag": FLAG_NOTE}
        info.update(mean_entropy_flagged=float(entropy[labels == 1].mean()),
                    mean_entropy_kept=float(entropy[labels == 0].mean()))
        return labels, info, scores
