"""``map-structure``: the post-it's share of the maps' variance, and why separability swings over seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.metrics import adjusted_rand_score

from hansbench.datasets.scenarios import make_scenario
from hansbench.metrics.base import EvalContext
from hansbench.metrics.map_structure import MapStructure, direction_share, structure
from hansbench.registry import clusterers

SIDE = 16


def planted(n: int, poison: float, nuisance: float, seed: int, d: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Features: noise, a poisoned offset of ``poison`` on feature 0, and a two-valued nuisance of ``nuisance``
    (think: the sign's size) on feature 1, independent of the poison."""
    rng = np.random.default_rng(seed)
    poisoned = np.zeros(n, bool)
    poisoned[: n // 3] = True
    x = rng.normal(size=(n, d))
    x[:, 0] += poison * poisoned
    x[:, 1] += nuisance * rng.integers(0, 2, n)
    return x, poisoned


def test_share_is_one_for_a_pure_offset_and_about_one_over_d_for_noise():
    poisoned = np.arange(300) < 100
    offset = np.outer(poisoned, [3.0, -1.0, 2.0])  # every variation is the poisoned/clean difference
    assert direction_share(offset, poisoned) == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(3000, 20))
    assert direction_share(noise, rng.random(3000) < 0.3) == pytest.approx(1 / 20, abs=0.02)


def test_share_does_not_change_under_a_rotation_of_the_feature_space():
    x, poisoned = planted(200, poison=3.0, nuisance=4.0, seed=2, d=6)
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(6, 6)))
    assert direction_share(x @ q, poisoned) == pytest.approx(direction_share(x, poisoned))


def test_a_dominant_nuisance_takes_the_first_component_and_the_boxes_say_so():
    x, poisoned = planted(300, poison=3.0, nuisance=8.0, seed=4)
    boxes = np.zeros((300, 4))
    boxes[:, 2] = boxes[:, 3] = 10 + x[:, 1]  # the box side follows the nuisance feature
    out = structure(x, poisoned, boxes, seed=0)
    assert out["pc1-box-corr"] > 0.9 and out["pc1-poison-corr"] < 0.3
    clean = structure(*planted(300, poison=8.0, nuisance=0.0, seed=4), None, seed=0)
    assert clean["pc1-poison-corr"] > 0.9 and "pc1-box-corr" not in clean


def test_spray_separability_follows_the_share_over_seeds():
    """The direction the seed-stability study reports (docs/seed-stability.md): across draws whose nuisance
    strength varies, SpRAy's ARI rises with the post-it's share of the maps' variance (Spearman > 0.5)."""
    shares, aris = [], []
    for seed, nuisance in enumerate([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0] * 2):
        x, poisoned = planted(150, poison=4.0, nuisance=nuisance, seed=seed, d=10)
        labels = clusterers.get("spray")(n_neighbors=10).fit_predict(x[:, None, :])
        shares.append(direction_share(x, poisoned))
        aris.append(adjusted_rand_score(poisoned, labels))
    assert stats.spearmanr(shares, aris).statistic > 0.5


def test_the_metric_reads_the_inspected_class_maps_and_writes_its_four_values():
    data = make_scenario(image_size=SIDE, n_train=150, n_test=20, poisoning="CH", fraction=0.5, seed=0)

    def explain(split, index, target):
        assert split == "train" and bool((data.train.labels[index] == data.inspect_class).all())
        maps = torch.rand(len(index), 1, SIDE, SIDE, generator=torch.Generator().manual_seed(0))
        return maps + 5 * data.train.masks[index].float()[:, None] * data.train.poisoned[index].float()[:, None, None, None]

    ctx = EvalContext(data=data, model=None, seed=0, device=torch.device("cpu"), explain=explain)
    rows = {r["metric"]: r["value"] for r in MapStructure().evaluate(ctx)}
    assert set(rows) <= {"poison-variance-share", "pc1-poison-corr", "pc1-explained", "pc1-box-corr"}
    assert rows["pc1-poison-corr"] > 0.6 and rows["poison-variance-share"] > 0.3
    with pytest.raises(ValueError, match="map_size"):
        MapStructure(map_size=0)
