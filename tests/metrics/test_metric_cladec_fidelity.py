"""cladec-fidelity: the metric reports ClaDec's fidelity test on the run's classifier, seeded."""

from __future__ import annotations

import json

import pytest
import torch

from hansbench.metrics.base import EvalContext
from hansbench.registry import metrics


@pytest.fixture(scope="module")
def ctx():
    from hansbench.datasets.scenarios import make_scenario
    from hansbench.models.backbones import build_backbone
    from hansbench.models.classifier import Classifier

    data = make_scenario(poisoning="CH", fraction=0.5, image_size=16, n_train=60, n_test=20, seed=0)
    torch.manual_seed(0)
    model = Classifier(build_backbone("small-resnet", widths=(4, 8)), data.num_classes, data.mean, data.std).eval()
    return EvalContext(data=data, model=model, seed=0, device=torch.device("cpu"))


def test_rows_are_the_fidelity_function_in_points(ctx, monkeypatch):
    import hansbench.models.cladec as cladec

    seen = {}

    def fake(pair, classifier, factory, train, test, **kw):
        seen.update(n_train=len(train[0]), n_test=len(test[0]), factory=factory, **kw)
        return {"acc_cladec": 0.6, "acc_refae": 0.8, "delta_acc": -0.2, "recon_loss_cladec": 0.3,
                "recon_loss_refae": 0.1, "delta_recon_loss": 0.2}

    monkeypatch.setattr(cladec, "cladec_fidelity", fake)
    rows = metrics.get("cladec-fidelity")(decoder_epochs=1, eval_epochs=1, max_train_images=30).evaluate(ctx)
    values = {r["metric"]: r["value"] for r in rows}
    assert values["delta-acc"] == pytest.approx(-20.0) and values["acc-cladec"] == pytest.approx(60.0)
    assert values["recon-loss-refae"] == pytest.approx(0.1)
    assert seen["n_train"] == 30 and seen["n_test"] == len(ctx.data.clean_test) and seen["epochs"] == 1
    assert json.loads(rows[0]["detail"])["n_train"] == 30
    clf = seen["factory"]()
    assert clf.fc.out_features == ctx.data.num_classes


def test_same_seed_same_rows_and_accuracies_in_range(ctx):
    m = metrics.get("cladec-fidelity")(decoder_epochs=1, eval_epochs=1, max_train_images=40)
    a, b = m.evaluate(ctx), m.evaluate(ctx)
    assert a == b
    values = {r["metric"]: r["value"] for r in a}
    assert 0 <= values["acc-cladec"] <= 100 and 0 <= values["acc-refae"] <= 100
    assert values["delta-acc"] == pytest.approx(values["acc-cladec"] - values["acc-refae"])


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="eval_epochs must be an integer >= 1"):
        metrics.get("cladec-fidelity")(eval_epochs=0)
