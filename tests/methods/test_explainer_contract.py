"""The explainer contract (DESIGN.md "Interfaces"), checked for EVERY registered explainer.

Cases come from the registry at collection time: each explainer x each model kind in its
``model_kinds`` that has a tiny fixture in conftest, so a new plugin is covered without
editing this file. Checks: ``[B, V, H, W]`` float32 finite non-zero maps, determinism,
batched == per sample (and ``max_batch`` chunking, where offered), the model left in eval
mode with its state dict (BatchNorm statistics included) untouched, a wrong model kind
rejected before any forward, and CPU/CUDA agreement. Method-specific properties live in
each explainer's own test file.
"""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
from torch import nn

from hansbench.datasets.base import ScenarioData, Split
from hansbench.methods.base import Explainer, UnsupportedModelError
from hansbench.registry import explainers

MEAN, STD, NUM_CLASSES = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 3  # as in conftest
TARGET = torch.tensor([0, 1, 2, 1])
MODEL_FIXTURES = {"classifier": "tiny_classifier", "protopnet": "tiny_protopnet"}

# Cheap options for slow explainers (the whole module must stay fast on one core).
TEST_OPTIONS: dict[str, dict] = {
    "cladec": {"epochs": 1, "max_train_images": 32, "batch_size": 16},
    "cladec-diff": {"epochs": 1, "max_train_images": 32, "batch_size": 16},
    "crp": {"k": 3, "images_per_class": 8},
    "integrated-gradients": {"n_steps": 8},
}
CHUNK = {"max_batch": 3}  # for explainers that take max_batch: memory only, the maps must not change

# assert_close tolerances, atol = atol + rel * max|expected| (maps differ in scale by orders of magnitude:
# LRP maps peak near 1e-3, upsampled similarities near 1). "batch": batched vs per sample and vs
# max_batch chunks (measured float32 noise <= 1e-6 of the max, eps-gamma-box aside); "cuda": CUDA vs CPU.
DEFAULT_TOL = {"batch": {"rtol": 1e-4, "atol": 0.0, "rel": 1e-5}, "cuda": {"rtol": 1e-3, "atol": 1e-5, "rel": 0.0}}
TOLERANCES: dict[str, dict[str, dict[str, float]]] = {
    # batch-size dependent float32 kernels: the eps-gamma-box noise is ~1e-3 of the map's max (exact in float64)
    "lrp-epsilon-gamma-box": {"batch": {"rtol": 1e-4, "atol": 0.0, "rel": 1e-3}},
    "protopnet-upsampling": {"batch": {"rtol": 1e-5, "atol": 1e-5, "rel": 0.0},
                             "cuda": {"rtol": 1e-4, "atol": 1e-5, "rel": 0.0}},
    "crp": {"batch": {"rtol": 1e-4, "atol": 0.0, "rel": 1e-6}, "cuda": {"rtol": 1e-3, "atol": 0.0, "rel": 1e-4}},
}


def _cases() -> list:
    out = []
    for name, cls in explainers.items():
        for kind in cls.model_kinds:
            marks = [] if kind in MODEL_FIXTURES else [pytest.mark.skip(reason=f"no tiny fixture for kind {kind!r}")]
            out.append(pytest.param(name, kind, id=f"{name}-{kind}", marks=marks))
    return out


def _wrong_kind_cases() -> list:
    out = []
    for name, cls in explainers.items():
        for kind in [*(k for k in MODEL_FIXTURES if k not in cls.model_kinds), "not-a-kind"]:
            out.append(pytest.param(name, kind, id=f"{name}-{kind}"))
    return out


CASES = _cases()


def _takes(cls: type, option: str) -> bool:
    return option in inspect.signature(cls.__init__).parameters


def _make(name: str, **extra) -> Explainer:
    return explainers.get(name)(**TEST_OPTIONS.get(name, {}), **extra)


def _has_setup(explainer: Explainer) -> bool:
    return type(explainer).setup is not Explainer.setup


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k].to(a[k].device)) for k in a)


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, name: str, which: str) -> None:
    tol = TOLERANCES.get(name, {}).get(which, DEFAULT_TOL[which])
    atol = tol["atol"] + tol["rel"] * expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=tol["rtol"], atol=atol)


@pytest.fixture(scope="module")
def scenario_data() -> ScenarioData:
    """A tiny random training set for explainers that need setup (32 images, 16x16, 3 classes)."""
    g = torch.Generator().manual_seed(0)
    n, size = 32, 16
    images = torch.rand(n, 3, size, size, generator=g)
    labels = torch.arange(n) % NUM_CLASSES
    split = Split(images, labels, labels.clone(), torch.zeros(n, dtype=torch.bool),
                  torch.zeros(n, size, size, dtype=torch.bool))
    return ScenarioData("tiny", split, split, split, ["a", "b", "c"], affected_class=0, mean=MEAN, std=STD)


@pytest.fixture(scope="module")
def prepared_cache() -> dict:
    """(name, kind, extra options) -> (explainer after setup, the model state it was set up on)."""
    return {}


@pytest.fixture
def prepared(prepared_cache, scenario_data):
    """``prepared(name, kind, model, **extra)``: the explainer, ``setup`` once per (explainer, model).

    ``setup`` is called for every explainer (a no-op for most). The conftest models are seeded, so a
    set-up explainer is reused across tests as long as the model's state is the one it was set up on.
    """

    def get(name: str, kind: str, model: nn.Module, **extra) -> Explainer:
        key = (name, kind, tuple(sorted(extra.items())))
        hit = prepared_cache.get(key)
        if hit is not None and _same_state(hit[1], model.state_dict()):
            return hit[0]
        state = _state(model)
        explainer = _make(name, **extra)
        explainer.setup(model, scenario_data, None)
        prepared_cache[key] = (explainer, state)
        return explainer

    return get


@pytest.fixture
def model_of(request):
    """``model_of(kind)``: a fresh tiny conftest model of that kind."""
    return lambda kind: request.getfixturevalue(MODEL_FIXTURES[kind])


def _expected_views(explainer: Explainer, model: nn.Module) -> int | None:
    if not explainer.multiview:
        return 1
    if getattr(model, "has_prototypes", False):
        return model.prototypes_per_class  # PRP, upsampling: one view per prototype of the target class
    return getattr(explainer, "k", None)  # CRP: one view per concept; None: unknown, checked >= 1 only


@pytest.mark.parametrize("name, kind", CASES)
def test_maps_shape_dtype_finite(name, kind, model_of, prepared, tiny_images):
    model = model_of(kind)
    explainer = prepared(name, kind, model)
    maps = explainer.explain(model, tiny_images, TARGET)
    assert isinstance(maps, torch.Tensor) and maps.dim() == 4, maps.shape
    b, v, h, w = maps.shape
    assert (b, h, w) == (4, 16, 16)
    views = _expected_views(explainer, model)
    if views is None:
        assert v >= 1, v
    else:
        assert v == views, (v, views)
    assert maps.dtype == torch.float32
    assert maps.device == tiny_images.device
    assert torch.isfinite(maps).all() and maps.abs().sum() > 0


@pytest.mark.parametrize("name, kind", CASES)
def test_deterministic(name, kind, model_of, prepared, tiny_images):
    model = model_of(kind)
    explainer = prepared(name, kind, model)
    assert torch.equal(explainer.explain(model, tiny_images, TARGET), explainer.explain(model, tiny_images, TARGET))


@pytest.mark.parametrize("name, kind", CASES)
def test_batched_equals_per_sample(name, kind, model_of, prepared, tiny_images):
    model = model_of(kind)
    explainer = prepared(name, kind, model)
    maps = explainer.explain(model, tiny_images, TARGET)
    single = torch.cat([explainer.explain(model, tiny_images[i:i + 1], TARGET[i:i + 1]) for i in range(4)])
    _assert_close(maps, single, name, "batch")


@pytest.mark.parametrize("name, kind", [c for c in CASES if _takes(explainers.get(c.values[0]), "max_batch")])
def test_max_batch_does_not_change_maps(name, kind, model_of, prepared, tiny_images):
    model = model_of(kind)
    maps = prepared(name, kind, model).explain(model, tiny_images, TARGET)
    chunked = prepared(name, kind, model, **CHUNK).explain(model, tiny_images, TARGET)
    _assert_close(chunked, maps, name, "batch")


@pytest.mark.parametrize("name, kind", CASES)
def test_model_left_untouched(name, kind, model_of, prepared, tiny_images):
    """Eval mode, weights and BatchNorm statistics (zennit canonizers reverted), requires_grad, no .grad."""
    model = model_of(kind)
    before = _state(model)
    flags = [p.requires_grad for p in model.parameters()]
    explainer = prepared(name, kind, model)  # setup too, on the first use
    explainer.explain(model, tiny_images, TARGET)
    explainer.explain(model, tiny_images[:1], TARGET[:1])
    assert not model.training and not any(m.training for m in model.modules())
    after = model.state_dict()
    assert after.keys() == before.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name, kind", _wrong_kind_cases())
def test_wrong_model_kind_fails_before_work(name, kind, model_of, prepared, scenario_data, tiny_images):
    cls = explainers.get(name)
    set_up = [prepared(name, k, model_of(k)) for k in cls.model_kinds if k in MODEL_FIXTURES][:1]
    if kind in MODEL_FIXTURES:
        model = model_of(kind)
    else:
        model = copy.deepcopy(model_of("classifier"))
        model.kind = kind
    started: list[str] = []

    def no_work(module, args):
        started.append(type(module).__name__)
        raise AssertionError("a forward started before the model-kind check")

    for m in model.modules():
        m.register_forward_pre_hook(no_work)
    for explainer in [_make(name), *set_up]:  # before setup and after setup on a supported model
        with pytest.raises(UnsupportedModelError):
            explainer.explain(model, tiny_images, TARGET)
        if _has_setup(explainer):
            with pytest.raises(UnsupportedModelError):
                explainer.setup(model, scenario_data, None)
    assert not started, started


@pytest.mark.parametrize("name, kind", CASES)
def test_cpu_and_cuda_agree(name, kind, model_of, prepared, tiny_images):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    model = model_of(kind)
    explainer = prepared(name, kind, model)
    cpu = explainer.explain(model, tiny_images, TARGET)
    gpu_explainer = copy.deepcopy(explainer)  # device state (e.g. decoders) stays off the cached one
    gpu = gpu_explainer.explain(copy.deepcopy(model).cuda(), tiny_images.cuda(), TARGET.cuda())
    assert gpu.device.type == "cuda" and gpu.dtype == torch.float32
    _assert_close(gpu.cpu(), cpu, name, "cuda")
