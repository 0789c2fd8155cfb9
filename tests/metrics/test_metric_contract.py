"""The metric contract (DESIGN.md "Interfaces"), checked for EVERY registered metric, plugins included.

Cases come from ``metrics.names()`` at collection time: each metric x each model kind in its
``model_kinds`` that has a tiny model here, so a new plugin is covered without editing this file.
Each case builds the context the runner builds (``EvalContext`` with ``explain``, ``train_model``,
``explain_model`` and, for clustering metrics, an activation clustering of the inspected class; for flagging
metrics also its flagged cluster as the verdict of rule ``smaller-cluster``) on
one tiny backdoor scenario (16 px, 60 training images, models trained for one epoch per stage) and
checks the rows against the metric's declarations: every ``metric`` is a declared value, ``unit``
and ``higher_is_better`` are the declared ones, values are finite or ``None`` (what the runner's
``check_rows`` accepts). A metric that says it does not apply (``not_applicable``) is skipped with
its own reason. Whether the values are *right* is each metric's own test file.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hansbench.bench.engine.checks import check_rows
from hansbench.bench.engine.device import resolve_device
from hansbench.bench.engine.seeding import seed_everything
from hansbench.datasets.scenarios import make_scenario
from hansbench.methods.flagging.base import Flagging
from hansbench.metrics.base import EvalContext, Metric
from hansbench.metrics.presentation import declare
from hansbench.models.kinds import train_model
from hansbench.registry import clusterer_inputs, clusterers, explainers, metrics

SEED = 0
SCENARIO = {"dataset": "signs", "poisoning": "BD", "fraction": 0.5, "artifact": "postit", "image_size": 16,
            "n_train": 60, "n_test": 30, "affected_class": "stop", "target_class": "speed limit"}
TINY = {"backbone": "small-resnet", "backbone_options": {"widths": [8, 16]}, "batch_size": 32}
MODEL_CONFIGS = {
    "classifier": {**TINY, "epochs": 1},
    "protopnet": {**TINY, "prototypes_per_class": 2, "prototype_dim": 8, "warm_epochs": 1, "joint_epochs": 1,
                  "push_start": 1, "push_every": 1, "last_layer_epochs": 1, "last_layer_batch_size": 32},
}
# The explainer whose maps explainer- and clustering-level metrics score, per model kind: a real one, and the
# multi-view PRP where it exists (prototype-pruning needs one view per prototype).
EXPLAINERS = {"classifier": "gradcam", "protopnet": "prp"}
CLUSTERER = "activation-clustering"  # clustering metrics: the runner's explainer column is then "activations"
# Cheap options (the whole module must stay fast on one core); metrics not named run with their defaults.
TEST_OPTIONS: dict[str, dict] = {
    "artifact-insertion": {"n_images": 8},
    "artifact-localisation": {"n_images": 8},
    "cladec-fidelity": {"decoder_epochs": 1, "eval_epochs": 1, "max_train_images": 24},
    "class-ranking": {"n_per_class": 6, "k_max": 3, "n_neighbors": 3, "n_components": 2},
    "model-randomisation": {"n_images": 4},
    "occlusion-delta": {"n_images": 8},
    "prototype-pruning": {"epochs": 1, "max_images": 8},
    "prototype-pruning-protopnet": {"epochs": 1},
    "relevance-deletion": {"n_images": 6, "n_steps": 5},
    "relevance-ordering": {"n_images": 6, "n_steps": 5},
    "reliance": {"n_images": 20},
    "roar": {"fractions": [0.3]},
}
CLUSTERED = ("clustering", "flagging")  # the levels whose context holds a clustering
ROW_KEYS = {"metric", "value", "unit", "higher_is_better", "split", "stage", "detail"}


def _cases() -> list:
    out = []
    for name in metrics.names():
        for kind in metrics.get(name).model_kinds:
            marks = [] if kind in MODEL_CONFIGS else [pytest.mark.skip(reason=f"no tiny model for kind {kind!r}")]
            out.append(pytest.param(name, kind, id=f"{name}-{kind}", marks=marks))
    return out


@pytest.fixture(scope="module")
def device() -> torch.device:
    return resolve_device("auto")


@pytest.fixture(scope="module")
def data():
    return make_scenario(**SCENARIO, seed=SEED)


@pytest.fixture(scope="module")
def trained(data, device) -> dict:
    """``trained[kind]``: one tiny model per kind, trained once for the module (lazily)."""
    cache: dict = {}

    class Lazy(dict):
        def __missing__(self, kind):
            seed_everything(SEED)
            cache[kind] = train_model(kind, data.train, num_classes=data.num_classes, mean=data.mean, std=data.std,
                                      config=MODEL_CONFIGS[kind], seed=SEED, device=device, progress=False)
            self[kind] = cache[kind]
            return cache[kind]

    return Lazy()


def _context(metric: Metric, kind: str, data, model, device) -> EvalContext:
    """The context the runner builds (hansbench.bench.engine.execute), without its caches."""
    explainer_name = EXPLAINERS[kind] if metric.level == "explainer" else ""
    explainer = None
    if explainer_name:
        explainer = explainers.get(explainer_name)()
        explainer.setup(model, data.without_ground_truth(), None)

    def explain(split, index=None, target=None):
        s = data.split(split)
        index = torch.arange(len(s)) if index is None else torch.as_tensor(index, dtype=torch.long).flatten()
        target = data.explain_targets(split, index) if target is None else \
            torch.as_tensor(target, dtype=torch.long).expand(len(index))
        x = model.normalize(s.images[index].to(device))
        return explainer.explain(model, x, target.to(device)).detach().float().cpu()

    held: dict = {}

    def explain_model(other, x, target):
        if held.get("model") is not other:
            fresh = explainers.get(explainer_name)()
            fresh.setup(other, data.without_ground_truth(), None)
            held.update(model=other, explainer=fresh)
        return held["explainer"].explain(other, x.to(device), target.to(device)).detach().float()

    def retrain(train, tag=""):
        return train_model(kind, train, num_classes=data.num_classes, mean=data.mean, std=data.std,
                           config=MODEL_CONFIGS[kind], seed=SEED, device=device, progress=False)

    clustering = cluster_index = flagging = None
    if metric.level in ("clustering", "flagging"):
        cluster_index = data.train.of_class(data.inspect_class)
        est = clusterers.get(CLUSTERER)(n_components=2)
        views = clusterer_inputs.get(est.input)().views(model=model, data=data.without_ground_truth(),
                                                       index=cluster_index, device=device, settings={})
        est.fit_predict(views)
        clustering = est.result_
    if metric.level == "flagging":
        flagging = Flagging.of(np.asarray(clustering.flagged_mask, dtype=bool), "the clusterer's flagged cluster")
    return EvalContext(data=data, model=model, seed=SEED, device=device,
                       explainer=explainer_name or ("activations" if clustering is not None else ""),
                       clusterer=CLUSTERER if clustering is not None else "",
                       explain=explain if explainer_name else None, clustering=clustering,
                       cluster_index=cluster_index, train_model=retrain,
                       explain_model=explain_model if explainer_name else None, flagging=flagging,
                       rule="smaller-cluster" if flagging is not None else "")


@pytest.mark.parametrize("name", metrics.names())
def test_declarations_are_consistent(name):
    """Every value a metric names anywhere in its presentation (headline, undirected, gates, ...) is one it
    declares, with a string unit and a bool direction; the level is one the runner plans; the table shape exists.
    The one check is :func:`hansbench.metrics.presentation.declare`, which registration runs; here it runs again on
    the registered class, so a declaration changed after registering is caught too."""
    p = declare(metrics.get(name), name)
    assert p.meaning, f"{name}: no one-line meaning (declare Shows(meaning=...) or a class docstring)"


@pytest.mark.parametrize("name, kind", _cases())
def test_rows_match_declarations(name, kind, data, trained, device):
    cls = metrics.get(name)
    metric = cls(**TEST_OPTIONS.get(name, {}))
    explainer_name = EXPLAINERS[kind] if cls.level == "explainer" else ""
    reason = metric.not_applicable(model_kind=kind, scenario=SCENARIO,
                                   explainer=explainers.get(explainer_name) if explainer_name else None,
                                   explainer_name=explainer_name or ("activations" if cls.level in CLUSTERED else ""),
                                   clusterer_name=CLUSTERER if cls.level in CLUSTERED else "")
    if reason:
        pytest.skip(f"not applicable: {reason}")
    model = trained[kind]
    seed_everything(SEED)
    rows = metric.evaluate(_context(metric, kind, data, model, device))

    assert isinstance(rows, list) and rows, f"{name} applies here but returned no rows"
    assert check_rows(rows, name) is rows  # what the runner accepts
    for r in rows:
        assert ROW_KEYS <= set(r), sorted(ROW_KEYS - set(r))
        assert r["metric"] in cls.values, f"{name} emits undeclared value {r['metric']!r}"
        unit, higher = cls.values[r["metric"]]
        assert r["unit"] == unit, (r["metric"], r["unit"], unit)
        # undirected values keep their declared flag in the rows (Metric.presentation.undirected); never ranked
        assert r["higher_is_better"] is higher, (r["metric"], r["higher_is_better"], higher)
        value = r["value"]
        assert value is None or (isinstance(value, float) and math.isfinite(value)), (r["metric"], value)
        assert all(isinstance(r[k], str) for k in ("split", "stage", "detail")), r  # detail: JSON or a metric's own
