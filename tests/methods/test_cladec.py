"""ClaDec: frozen classifier, decoder training, occlusion relevance, caching (contract: test_explainer_contract.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hansbench.bench.engine.keys import hash_key
from hansbench.datasets.base import ScenarioData, Split
from hansbench.models.classifier import Classifier
from hansbench.registry import explainers
from tests._seeds import mean, per_seed

MEAN, STD, NUM_CLASSES = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 3  # as in conftest

TARGET = torch.tensor([0, 1, 2, 1])
FAST = {"epochs": 3, "batch_size": 16, "lr": 3e-3}


def _data(n: int = 48, size: int = 16, seed: int = 0) -> ScenarioData:
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, size, size, generator=g)
    labels = torch.arange(n) % NUM_CLASSES
    split = Split(images, labels, labels.clone(), torch.zeros(n, dtype=torch.bool),
                  torch.zeros(n, size, size, dtype=torch.bool))
    return ScenarioData("tiny", split, split, split, ["a", "b", "c"], affected_class=0, mean=MEAN, std=STD)


class FakeWorkspace:
    """Stands in for the runner's workspace: builds, and round-trips through a state dict when it can."""

    def __init__(self):
        self.calls: list[dict] = []
        self.store: dict[str, dict] = {}

    def cached_module(self, key_parts, build, init=None):
        self.calls.append(key_parts)
        k = hash_key(key_parts)
        if k not in self.store:
            self.store[k] = {n: t.clone() for n, t in build().state_dict().items()}
        module = init()
        module.load_state_dict(self.store[k])
        return module


@pytest.fixture(scope="module")
def trained():
    """One tiny classifier and both ClaDec maps set up on it (one trained pair)."""
    from hansbench.models.backbones import build_backbone

    torch.manual_seed(0)
    model = Classifier(build_backbone("small-resnet", widths=(8, 16)), NUM_CLASSES, MEAN, STD)
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 16, 16))
    model.eval()
    occ = explainers.get("cladec")(**FAST)
    occ.setup(model, _data(), None)
    diff = explainers.get("cladec-diff")(**FAST)
    diff._models = occ._models  # same options, same trained pair
    return model, occ, diff


def _state(model: nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_classifier_stays_frozen(mode, tiny_classifier):
    model = tiny_classifier.train(mode == "train")
    before = _state(model)
    flags = [p.requires_grad for p in model.parameters()]
    e = explainers.get("cladec")(**FAST)
    e.setup(model, _data(), None)
    after = model.state_dict()
    for k in before:  # weights and BatchNorm running statistics (incl. num_batches_tracked)
        assert torch.equal(before[k], after[k]), k
    assert model.training == (mode == "train")  # mode restored
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())


def _loss_ratios(seed: int) -> tuple[float, float]:
    """Last-epoch over first-epoch loss of the ClaDec decoder and the RefAE, on a classifier seeded ``seed``."""
    from hansbench.models.backbones import build_backbone

    torch.manual_seed(seed)
    model = Classifier(build_backbone("small-resnet", widths=(8, 16)), NUM_CLASSES, MEAN, STD)
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 16, 16))
    model.eval()
    e = explainers.get("cladec")(**FAST, seed=seed)
    e.setup(model, _data(seed=seed), None)
    h = e.models_.history
    assert len(h["cladec"]) == len(h["refae"]) == FAST["epochs"]
    return round(h["cladec"][-1] / h["cladec"][0], 4), round(h["refae"][-1] / h["refae"][0], 4)


def test_decoder_and_refae_losses_decrease():
    """A learned effect, asserted on the mean over SEEDS (classifier, data and decoder seeded alike).

    Measured (decoder, RefAE) last/first epoch loss per seed 0, 1, 2, the same with torch threads 1 and 2 on a
    16-core x86 host: (.844, .839), (.827, .828), (.831, .836) (the 2-core dev VM, threads 1 and 2: the same). Asserted: both
    means < 0.9.
    """
    ratios = per_seed(_loss_ratios)
    assert mean(r[0] for r in ratios) < 0.9, ratios
    assert mean(r[1] for r in ratios) < 0.9, ratios


def test_maps_are_non_negative(trained, tiny_images):
    model, *exps = trained
    for e in exps:
        maps = e.explain(model, tiny_images, TARGET)
        assert (maps >= 0).all() and maps.sum() > 0


@pytest.mark.parametrize("name", ["cladec", "cladec-diff"])
def test_explain_before_setup_fails(name, tiny_classifier, tiny_images):
    with pytest.raises(RuntimeError, match="setup"):
        explainers.get(name)(**FAST).explain(tiny_classifier, tiny_images, TARGET)


class _RegionBackbone(nn.Module):
    """3x3 conv + 2x2 average pool whose output is zeroed outside its top-left 4x4 cells:
    the features (hence the decoder's output) depend on input rows/cols 0..8 only."""

    out_channels = 8

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2))
        keep = torch.zeros(1, 1, 8, 8)
        keep[..., :4, :4] = 1
        self.register_buffer("keep", keep)

    @property
    def cam_layer(self):
        return self.layers[-1]

    def forward(self, x):
        return self.layers(x) * self.keep


def test_occlusion_relevance_sits_where_the_decoder_depends_on_the_input(tiny_images):
    torch.manual_seed(0)
    model = Classifier(_RegionBackbone(), NUM_CLASSES, MEAN, STD).eval()
    e = explainers.get("cladec")(**FAST)
    e.setup(model, _data(), None)
    maps = e.explain(model, tiny_images, TARGET)[:, 0]
    inside = maps[:, :8, :8].mean()
    outside = maps[:, 12:, 12:]  # covered only by windows that leave the features untouched
    assert inside > 0
    assert outside.abs().max() <= 1e-6 * inside


def test_occlusion_windows_cover_the_image():
    e = explainers.get("cladec")()
    m = e.windows(32, 32, torch.device("cpu"))
    assert m.shape == (49, 32, 32)  # side 8, stride 4: 7 x 7 positions
    assert (m.sum(dim=(1, 2)) == 64).all() and (m.sum(dim=0) >= 1).all()


def test_workspace_caches_one_pair_for_both_maps(tiny_classifier, tiny_images):
    ws = FakeWorkspace()
    data = _data()
    a, b = explainers.get("cladec")(**FAST), explainers.get("cladec-diff")(**FAST)
    a.setup(tiny_classifier, data, ws)
    b.setup(tiny_classifier, data, ws)
    assert len(ws.store) == 1 and hash_key(ws.calls[0]) == hash_key(ws.calls[1])  # one trained pair, one key
    direct = explainers.get("cladec-diff")(**FAST)
    direct.setup(tiny_classifier, data, None)
    torch.testing.assert_close(b.explain(tiny_classifier, tiny_images, TARGET),
                               direct.explain(tiny_classifier, tiny_images, TARGET))  # load == train (seeded)
    other = explainers.get("cladec")(**{**FAST, "epochs": 2})
    other.setup(tiny_classifier, data, ws)
    assert len(ws.store) == 2  # a training option is part of the key


def test_named_layer(tiny_classifier, tiny_images):
    e = explainers.get("cladec-diff")(layer="backbone.layers.3", epochs=1, batch_size=16)  # the first block
    e.setup(tiny_classifier, _data(n=16), None)
    maps = e.explain(tiny_classifier, tiny_images, TARGET)
    assert maps.shape == (4, 1, 16, 16) and torch.isfinite(maps).all()
    with pytest.raises(ValueError, match="backbone"):
        explainers.get("cladec")(layer="fc").setup(tiny_classifier, _data(n=16), None)


# -- fidelity (ClaDec paper Sec. 5; PAPERS.md section 6) --------------------------------------

def _separable(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class k = the colour channel that is bright: easy for a linear evaluation classifier."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % NUM_CLASSES
    x = 0.3 * torch.randn(n, 3, 8, 8, generator=g)
    x[torch.arange(n), y] += 2.0
    return x, y


def _linear_eval_classifier() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, NUM_CLASSES))


def test_fidelity_of_identical_reconstructions_is_zero():
    """Seed-matched evaluation classifiers: when both reconstructions are the same, so is everything else --
    Delta Acc is exactly 0 (a mismatch of seeds or batches between the two sides would show here)."""
    from hansbench.models.cladec import fidelity

    train, test = _separable(96, 0), _separable(48, 1)
    state = torch.get_rng_state()
    res = fidelity(_linear_eval_classifier, lambda x: x.clone(), lambda x: x.clone(), train, test, epochs=10, lr=1e-2, seed=4)
    assert torch.equal(state, torch.get_rng_state())  # seeded inside fork_rng
    assert res["delta_acc"] == 0.0 and res["acc_cladec"] == res["acc_refae"] > 0.9
    assert res["recon_loss_cladec"] == res["recon_loss_refae"] == 0.0
    assert all(isinstance(v, float) for v in res.values())


def test_fidelity_drops_for_an_information_destroying_decoder():
    """A 'decoder' that keeps nothing class-specific (the channel-averaged image) trains an evaluation
    classifier no better than chance, so Delta Acc is strongly negative against faithful reconstructions,
    and its reconstruction loss is higher."""
    from hansbench.models.cladec import fidelity

    train, test = _separable(96, 0), _separable(48, 1)
    blind = lambda x: x.mean(dim=1, keepdim=True).expand_as(x).clone()  # noqa: E731
    res = fidelity(_linear_eval_classifier, blind, lambda x: x.clone(), train, test, epochs=10, lr=1e-2)
    assert res["acc_refae"] > 0.9
    assert res["acc_cladec"] < 0.6
    assert res["delta_acc"] < -0.3
    assert res["delta_recon_loss"] > 0


def test_fidelity_of_a_trained_pair_runs_end_to_end(tiny_classifier):
    """cladec_fidelity on a (briefly) trained ClaDec/RefAE pair: finite accuracies in [0, 1], modes restored."""
    from hansbench.models.cladec import cladec_fidelity, train_cladec

    data = _data(n=24, size=16)
    images01, labels = data.train.images, data.train.labels
    pair = train_cladec(tiny_classifier, images01, labels, epochs=1, batch_size=12)
    x = tiny_classifier.normalize(images01)
    factory = lambda: nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, NUM_CLASSES))  # noqa: E731
    res = cladec_fidelity(pair, tiny_classifier, factory, (x, labels), (x, labels), epochs=1)
    assert 0.0 <= res["acc_cladec"] <= 1.0 and 0.0 <= res["acc_refae"] <= 1.0
    assert res["delta_acc"] == res["acc_cladec"] - res["acc_refae"]
    assert not pair.training and not tiny_classifier.training
    with pytest.raises(ValueError, match="as many labels"):
        cladec_fidelity(pair, tiny_classifier, factory, (x, labels[:3]), (x, labels))


def test_occlusion_maps_do_not_depend_on_the_chunk_size(trained, tiny_images):
    """chunk_size bounds one decoding pass's memory only (the quick suite's peak RSS): every chunking gives the
    same maps, bit for bit, including chunks that split the windows unevenly."""
    model, occ, _ = trained
    ref, default = occ.explain(model, tiny_images, TARGET), occ.chunk_size
    try:
        for chunk in (1, len(tiny_images) * 3, 10**6):
            occ.chunk_size = chunk
            assert torch.equal(occ.explain(model, tiny_images, TARGET), ref), chunk
    finally:
        occ.chunk_size = default
