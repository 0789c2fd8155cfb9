"""Model-randomisation sanity check (Adebayo et al. 2018): cascade, similarities, metric, Quantus' MPRT."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from hansbench.datasets.scenarios import make_scenario
from hansbench.metrics.base import EvalContext
from hansbench.metrics.randomisation import (
    ModelRandomisation,
    cascade,
    layer_groups,
    reinitialise,
    similarities,
    spearman_rows,
    ssim,
    unit_range,
)
from hansbench.registry import metrics
from hansbench.testing import tiny_model

SIDE = 16


@pytest.fixture(scope="module")
def data():
    return make_scenario(image_size=SIDE, n_train=80, n_test=40, poisoning="CH", fraction=0.5, seed=0)


def _model(kind: str = "classifier"):
    options = {"prototypes_per_class": 3, "prototype_dim": 8} if kind == "protopnet" else {}
    return tiny_model(kind, num_classes=5, side=SIDE, **options)


# -- explainers built for the test ----------------------------------------------------------------------------
def gradient_maps(model, x, target):
    """Plain input gradient of the target logit (depends on every layer), channels summed."""
    x = x.detach().clone().requires_grad_(True)
    out = model(x)
    (g,) = torch.autograd.grad(out.gather(1, target[:, None]).sum(), x)
    return g.sum(1, keepdim=True)


def edge_maps(model, x, target):
    """A Sobel edge detector on the input: ignores the model entirely, so it must survive randomisation."""
    gray = x.mean(1, keepdim=True)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device).view(1, 1, 3, 3)
    gx, gy = F.conv2d(gray, kx, padding=1), F.conv2d(gray, kx.transpose(-1, -2), padding=1)
    return torch.sqrt(gx * gx + gy * gy)


def fresh_noise():
    """Maps drawn anew at every call (a seeded stream): independent of the trained maps by construction."""
    g = torch.Generator().manual_seed(7)

    def fn(model, x, target):
        return torch.rand(x.shape[0], 1, *x.shape[-2:], generator=g).to(x.device)

    return fn


def context(data, model, fn, seed=0):
    def explain(split, index, target):
        s = data.split(split)
        return fn(model, model.normalize(s.images[index]), target)

    return EvalContext(data=data, model=model, seed=seed, device=torch.device("cpu"), explainer="test",
                       explain=explain, explain_model=fn)


# -- the cascade ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["classifier", "protopnet"])
def test_cascade_randomises_from_the_output_and_one_more_group_per_step(kind):
    model = _model(kind)
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    groups = layer_groups(model)
    assert groups[0][0] == ("fc" if kind == "classifier" else "last_layer"), "the output layer goes first"
    if kind == "protopnet":
        assert [g[0] for g in groups[:3]] == ["last_layer", "prototype_layer", "add_on"]
    assert groups[-1][1] == ("backbone.layers.0", "backbone.layers.1"), "the stem (conv + BN) goes last"

    def changed(m):
        state = m.state_dict()
        return {g for g, (_, paths) in enumerate(groups)
                if any(not torch.equal(state[k], trained[k]) for k in state
                       if any(k.startswith(p + ".") for p in paths))}, \
            {k for k in state if not torch.equal(state[k], trained[k])
             and not any(k.startswith(p + ".") for _, paths in groups for p in paths)}

    steps = list(cascade(model, groups, seed=3))
    assert [name for name, _ in steps] == [g[0] for g in groups]
    for k, (_, randomised) in enumerate(steps):
        in_groups, outside = changed(randomised)
        assert in_groups == set(range(k + 1)), f"step {k + 1} randomised groups {sorted(in_groups)}"
        assert not outside, f"tensors outside every group changed: {sorted(outside)}"
    assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items()), "the trained model is untouched"
    again = list(cascade(model, groups, seed=3))[-1][1].state_dict()
    assert all(torch.equal(v, steps[-1][1].state_dict()[k]) for k, v in again.items()), "seeded"


def test_reinitialise_leaves_the_global_rng_alone():
    model = _model()
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    reinitialise(model, ("fc",), seed=5)
    assert torch.equal(torch.rand(3), expected)


# -- similarities ---------------------------------------------------------------------------------------------
def test_spearman_rows_equal_scipy_per_image_and_view_with_ties():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (3, 2, 6, 6), generator=g).float()  # many ties
    b = a + torch.randn(a.shape, generator=g)
    got = spearman_rows(a, b)
    want = np.array([[spearmanr(a[i, v].flatten(), b[i, v].flatten()).statistic for v in range(2)]
                     for i in range(3)])
    np.testing.assert_allclose(got, want, atol=1e-10)
    assert np.isnan(spearman_rows(torch.ones(1, 1, 4, 4), a[:1, :1, :4, :4])).all(), "constant map: undefined"


def test_similarities_compare_magnitudes_and_signs_separately():
    """A map whose signs all flip keeps its |map| ranking (1) and reverses its signed one (-1)."""
    g = torch.Generator().manual_seed(2)
    trained = torch.randn(3, 2, 8, 8, generator=g)
    sims = similarities(trained, -trained)
    np.testing.assert_allclose(sims["spearman-abs"], 1.0, atol=1e-12)
    np.testing.assert_allclose(sims["spearman"], -1.0, atol=1e-12)
    assert sims["ssim"].shape == (3,) and (sims["ssim"] < 0.5).all()  # [0, 1]-scaled: the flip is a negative image
    flat = similarities(trained, torch.zeros_like(trained))  # a map that became constant kept no ranking
    assert (flat["spearman-abs"] == 0).all() and (flat["spearman"] == 0).all()


def test_ssim_equals_scikit_image():
    skm = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(1)
    a = unit_range(F.avg_pool2d(torch.rand(4, 1, 20, 24, generator=g), 3, 1, 1))
    b = unit_range(a + 0.3 * torch.rand(a.shape, generator=g))
    got = ssim(a, b)  # [4, 1]
    for i in range(4):
        want = skm.structural_similarity(a[i, 0].double().numpy(), b[i, 0].double().numpy(), data_range=1.0,
                                         gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        assert abs(float(got[i, 0]) - want) < 1e-4, (i, float(got[i, 0]), want)
    assert torch.allclose(ssim(a, a), torch.ones(4, 1))


def test_ssim_of_constant_maps_is_the_literal_formula():
    """Constant maps: no variance, so SSIM = (2 c d + C1) / (c^2 + d^2 + C1) with C1 = (0.01 * 1)^2 (Wang et al. 2004)."""
    c, d = 0.8, 0.3
    got = ssim(torch.full((1, 12, 12), c), torch.full((1, 12, 12), d))
    c1 = 0.01 ** 2
    assert abs(float(got[0]) - (2 * c * d + c1) / (c * c + d * d + c1)) < 1e-6


# -- the metric -----------------------------------------------------------------------------------------------
def test_random_maps_score_near_zero_and_an_input_only_method_survives(data):
    metric = ModelRandomisation(n_images=8)
    model = _model()
    noise = metric.evaluate(context(data, model, fresh_noise()))
    edge = metric.evaluate(context(data, model, edge_maps))
    stages = [g[0] for g in layer_groups(model)]
    for rows in (noise, edge):
        assert [r["stage"] for r in rows if r["metric"] == "spearman-abs"] == stages, "one row per step, in order"
    noise_abs = [r["value"] for r in noise if r["metric"] == "spearman-abs"]
    assert max(abs(v) for v in noise_abs) < 0.2, noise_abs
    assert [r["value"] for r in noise if r["metric"] == "survives-randomisation"] == [0.0]
    edge_abs = [r["value"] for r in edge if r["metric"] == "spearman-abs"]
    assert min(edge_abs) >= 0.9, edge_abs
    assert min(r["value"] for r in edge if r["metric"] == "ssim") >= 0.9
    assert [r["value"] for r in edge if r["metric"] == "survives-randomisation"] == [1.0]
    for r in noise + edge:  # contract C5: per-image values whose mean is the row's value
        if r["stage"]:
            per_image = json.loads(r["detail"])["per_image"]
            assert len(per_image) == 8 and abs(np.mean(per_image) - r["value"]) < 1e-5


def test_gradients_of_the_randomised_model_differ_from_the_trained_ones(data):
    rows = ModelRandomisation(n_images=8).evaluate(context(data, _model(), gradient_maps))
    final = [r["value"] for r in rows if r["metric"] == "spearman-abs"][-1]
    assert final < 0.9, final  # a model-dependent method does change (unlike the edge detector's 1.0)


def test_cladec_is_left_out_by_default_and_the_metric_is_registered():
    metric = metrics.get("model-randomisation")()
    assert metric.not_applicable(model_kind="classifier", scenario={}, explainer_name="cladec")
    assert metric.not_applicable(model_kind="classifier", scenario={}, explainer_name="lrp") is None
    assert "survives-randomisation" in metric.presentation.marks and not metric.presentation.ranked


def test_per_layer_spearman_matches_quantus_mprt(data):
    """Quantus 0.6.0's MPRT on the same model, images, explainer and layer order (one module per step).

    Quantus re-initialises each module with ``reset_parameters`` after ``torch.manual_seed(seed + 1)``;
    the cascade is given that rule and Quantus' order (named modules with ``reset_parameters``, reversed).
    """
    quantus = pytest.importorskip("quantus")
    if not hasattr(np, "trapz"):
        np.trapz = np.trapezoid  # Quantus 0.6.0 calls np.trapz, gone in numpy >= 2.4
    model = _model()
    index = data.clean_test.of_class(data.inspect_class)[:6]
    x = model.normalize(data.clean_test.images[index])
    y = data.explain_targets("clean_test", index)

    def explain_np(model, inputs, targets, **kwargs):
        xt, tt = torch.as_tensor(inputs), torch.as_tensor(targets).long()
        return gradient_maps(model, xt, tt).detach().numpy()

    mprt = quantus.MPRT(similarity_func=quantus.similarity_func.correlation_spearman, layer_order="top_down",
                        seed=42, abs=True, normalise=True, return_aggregate=False, disable_warnings=True,
                        display_progressbar=False)
    theirs = mprt(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=None, explain_func=explain_np,
                  device="cpu", batch_size=64)

    def quantus_rule(m, paths, seed):
        torch.manual_seed(42 + 1)
        m.get_submodule(paths[0]).reset_parameters()

    order = [(n, (n,)) for n, m in model.named_modules() if hasattr(m, "reset_parameters")][::-1]
    trained = gradient_maps(model, x, y).detach()
    compared = 0
    for name, randomised in cascade(model, order, seed=0, reinit=quantus_rule):
        ours = spearman_rows(trained.abs(), gradient_maps(randomised, x, y).detach().abs())[:, 0]
        np.testing.assert_allclose(ours, np.asarray(theirs[name], dtype=float), atol=1e-6, err_msg=name)
        compared += 1
    assert compared == len(order) > 5


# -- end to end: the runner's ctx.explain_model ---------------------------------------------------------------
TINY = """
[suite]
name = "tiny-sanity"
seeds = [0]
device = "auto"
[data]
dataset = "signs"
artifact = "postit"
image_size = 16
n_train = 60
n_test = 40
[[scenarios]]
name = "CH-50"
poisoning = "CH"
fraction = 0.5
[models.classifier]
backbone = "small-resnet"
backbone_options = { widths = [8, 16] }
epochs = 1
[explainers]
gradcam = {}
random = {}
crp = { k = 2, images_per_class = 2 }
[clusterers]
spray = {}
[metrics]
model-randomisation = { n_images = 4 }
[timing]
batch_size = 4
repeats = 1
warmup = 0
"""


def test_runner_explains_the_randomised_models(tmp_path):
    """ctx.explain_model through the runner: a fresh explainer (CRP: its setup on each randomised model)."""
    from hansbench.bench.engine.runner import Runner
    from hansbench.bench.suite.config import load_suite

    (tmp_path / "tiny.toml").write_text(TINY)
    runner = Runner(load_suite(tmp_path / "tiny.toml"), tmp_path / "out", progress=False)
    summary = runner.run()
    assert not summary.failed, summary.failed
    df = runner.store.rows(summary.job_keys)
    df = df[df.metric.isin(ModelRandomisation.values)]
    assert set(df.explainer) == {"gradcam", "random", "crp"}
    steps = [g[0] for g in layer_groups(_model())]
    for e, g in df.groupby("explainer"):
        assert g[g.metric == "spearman-abs"].stage.tolist() == steps, e
    survives = df[df.metric == "survives-randomisation"].set_index("explainer").value.astype(float)
    # the seeded random baseline is a function of the image alone: the same maps on every model
    assert survives["random"] == 1.0 and survives["gradcam"] == 0.0
