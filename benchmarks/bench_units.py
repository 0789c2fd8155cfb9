"""Every explainer in gradient units at 32 and 64 px, on the small ResNet and on ResNet-18.

Gradient unit: one input-gradient pass (``hansbench.bench.engine.kernel_timer.gradient_pass``: forward, and
backward to the input only) of the *same model and batch*; a classifier explainer is divided by
the classifier's unit, a ProtoPNet explainer by the ProtoPNet's. Per-view explainers are divided
by their views: PRP by the V = 5 prototypes of the class, CRP by its k = 6 concepts, Integrated
Gradients by its ``n_steps`` = 16 (Gauss-Legendre, all 16 x B interpolated images in one pass of
``internal_batch_size`` 256). Targets (issue 13): LRP (every composite, and ProtoPNet-LRP), PRP
per prototype and CRP per concept <= 3; Grad-CAM <= 1.5; IG <= 1.2 per step.

Models are random-init (BatchNorm statistics from one random batch); batch 16; CRP runs its
``explain`` with a fixed random concept table (no ``setup``), as the quick suite does after setup.
Every ratio is interleaved: in each round the two units and every explainer are timed in turn
(small ResNet: a median of 3 calls each), and each explainer's per-round ratio is taken against
its unit of the same round.

    pytest benchmarks/bench_units.py -o python_files=bench_*.py   # small-resnet, 32 px only
    python benchmarks/bench_units.py [--rounds 3]                 # the full table
"""

from __future__ import annotations

import argparse
import statistics

import pytest
import torch
from _common import batch, classifier, interleaved, load, machine, protopnet, ratio

from hansbench.bench.engine.kernel_timer import gradient_pass
from hansbench.registry import explainers

BATCH, CLASSES, PER_CLASS, K, IG_STEPS = 16, 5, 5, 6, 16
CONFIGS = [("small-resnet", 32), ("small-resnet", 64), ("resnet18", 32), ("resnet18", 64)]
ROUNDS = 3

# name: (model kind, views it is divided by, target in gradient units per view; None = reported)
EXPLAINERS = {
    "lrp": ("classifier", 1, 3.0),
    "lrp-epsilon-plus-flat": ("classifier", 1, 3.0),
    "lrp-epsilon-gamma-box": ("classifier", 1, 3.0),
    "protopnet-lrp": ("protopnet", 1, 3.0),
    "prp": ("protopnet", PER_CLASS, 3.0),
    "crp": ("classifier", K, 3.0),
    "gradcam": ("classifier", 1, 1.5),
    "integrated-gradients": ("classifier", IG_STEPS, 1.2),
    "protopnet-upsampling": ("protopnet", PER_CLASS, None),
}
UNIT = {"classifier": "unit-classifier", "protopnet": "unit-protopnet"}


def make_explainer(name: str, n_channels: int):
    if name == "integrated-gradients":
        return explainers.get(name)(n_steps=IG_STEPS)
    if name == "crp":
        exp = explainers.get(name)(k=K)
        g = torch.Generator().manual_seed(2)
        exp._concepts = torch.stack([torch.randperm(n_channels, generator=g)[:K] for _ in range(CLASSES)])
        return exp
    return explainers.get(name)()


def cam_channels(model: torch.nn.Module) -> int:
    """Channels of ``model.cam_layer`` (CRP's default layer)."""
    seen = []
    handle = model.cam_layer.register_forward_hook(lambda m, i, o: seen.append(o.shape[1]))
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    handle.remove()
    return seen[0]


def setup(backbone: str, size: int) -> dict:
    models = {"classifier": classifier(backbone, size, CLASSES), "protopnet": protopnet(backbone, size, CLASSES,
                                                                                       PER_CLASS)}
    x, t = batch(BATCH, size, CLASSES)
    clf = models["classifier"]
    fns = {UNIT[k]: gradient_pass(m, x, t) for k, m in models.items()}
    n_ch = cam_channels(clf)
    for name, (kind, _, _) in EXPLAINERS.items():
        exp, model = make_explainer(name, n_ch), models[kind]
        fns[name] = lambda exp=exp, model=model: exp.explain(model, x, t)
    return fns


def measure_config(backbone: str, size: int, rounds: int = ROUNDS) -> dict:
    """{explainer: (units per view, lo, hi)} and the unit times, interleaved over ``rounds``."""
    # the small ResNet's calls take 30-300 ms: a median of 3 calls per round keeps one preemption by the
    # other jobs from deciding a round; ResNet-18's calls are long enough for one
    repeats = 3 if backbone == "small-resnet" else 1
    times = interleaved(setup(backbone, size), torch.device("cpu"), rounds=rounds, repeats=repeats)
    out = {"times": times, "units": {}}
    for name, (kind, views, _) in EXPLAINERS.items():
        r, lo, hi = ratio(times, name, UNIT[kind])
        out["units"][name] = (r / views, lo / views, hi / views)
    return out


def measure(rounds: int = ROUNDS, configs=CONFIGS) -> dict:
    return {(bb, size): {**measure_config(bb, size, rounds), "load": load()} for bb, size in configs}


# -- pytest-benchmark: small-resnet at 32 px ---------------------------------------------------
@pytest.fixture(scope="module")
def fns():
    return setup("small-resnet", 32)


@pytest.mark.parametrize("name", list(UNIT.values()) + list(EXPLAINERS))
def test_units(benchmark, fns, name):
    benchmark.pedantic(fns[name], rounds=3, warmup_rounds=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=ROUNDS)
    args = p.parse_args()
    print(f"{machine()}; batch {BATCH}; {args.rounds} interleaved rounds; gradient units per view "
          f"(PRP / {PER_CLASS} prototypes, CRP / {K} concepts, IG / {IG_STEPS} steps)")
    for (bb, size), r in measure(args.rounds).items():
        unit_ms = {k: statistics.median(r["times"][v]) * 1e3 for k, v in UNIT.items()}
        print(f"\n{bb} {size} px (load {r['load']:.1f}): unit classifier {unit_ms['classifier']:.1f} ms, "
              f"protopnet {unit_ms['protopnet']:.1f} ms")
        for name, (u, lo, hi) in r["units"].items():
            tgt = EXPLAINERS[name][2]
            verdict = "reported" if tgt is None else ("met" if u <= tgt else "NOT met") + f" (<= {tgt:g})"
            print(f"  {name:24s} {u:6.2f} ({lo:.2f}-{hi:.2f})  {verdict}")


if __name__ == "__main__":
    main()
