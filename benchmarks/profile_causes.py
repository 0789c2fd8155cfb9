"""Where the time of the explainers that miss their targets goes (the numbers behind PERFORMANCE.md's causes).

LRP composites (and ProtoPNet-LRP), per explainer call, against the gradient unit of the same
model and batch, from ``torch.profiler`` (self CPU time of every aten op, summed; robust to the
other jobs' preemption, unlike wall time): the convolutions' forward and backward (count and
ms), everything else (zennit's elementwise rule work: stabilisers, sign, clamp, copies, the
reducers' sums, BatchNorm kept as identity), and the wall-time part no op accounts for (Python:
hook dispatch, canonizers). Also, with the harness's timer interleaved against the unit, the
cost of entering and leaving ``composite.context(model)`` alone (canonizers merge BatchNorm into
the convs and restore it, zennit registers and removes one hook per layer).

Integrated Gradients: captum's attribute vs its floor, one input-gradient pass over the same
``steps x B`` images (``gradient_pass`` on the stacked batch), and that floor over ``steps``
unit passes at batch B (how far one 256-image pass is from 16 passes of 16 images).

    python benchmarks/profile_causes.py [--configs small-resnet:32 small-resnet:64 resnet18:32]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from _common import batch, classifier, interleaved, load, machine, protopnet
from torch.profiler import ProfilerActivity, profile

from hansbench.bench.engine.kernel_timer import gradient_pass
from hansbench.methods.explainers.prp import prp_composite
from hansbench.registry import explainers

BATCH, CLASSES, IG_STEPS = 16, 5, 16
LRP = {"lrp": "classifier", "lrp-epsilon-plus-flat": "classifier", "lrp-epsilon-gamma-box": "classifier",
       "protopnet-lrp": "protopnet"}


def _ops(fn, calls: int = 3) -> dict:
    fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            fn()
    ev = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in ev) / calls / 1e3
    conv_f = sum(e.self_cpu_time_total for e in ev if e.key in ("aten::mkldnn_convolution", "aten::_slow_conv2d_forward",
                                                                "aten::thnn_conv2d")) / calls / 1e3
    conv_b = sum(e.self_cpu_time_total for e in ev if e.key == "aten::convolution_backward") / calls / 1e3
    n_f = sum(e.count for e in ev if e.key == "aten::convolution") / calls
    n_b = sum(e.count for e in ev if e.key == "aten::convolution_backward") / calls
    return {"ops_ms": total, "conv_fwd_ms": conv_f, "n_conv_fwd": n_f, "conv_bwd_ms": conv_b, "n_conv_bwd": n_b,
            "other_ms": total - conv_f - conv_b}


def lrp_breakdown(backbone: str, size: int, rounds: int) -> dict:
    models = {"classifier": classifier(backbone, size, CLASSES), "protopnet": protopnet(backbone, size, CLASSES)}
    x, t = batch(BATCH, size, CLASSES)
    out = {}
    units = {k: _ops(gradient_pass(m, x, t)) for k, m in models.items()}
    for name, kind in LRP.items():
        exp, model = explainers.get(name)(), models[kind]
        ops, unit = _ops(lambda exp=exp, model=model: exp.explain(model, x, t)), units[kind]
        def context(exp=exp, model=model):
            comp = exp.composite(model) if hasattr(exp, "composite") else prp_composite(model)
            with comp.context(model):
                pass
        cpu = torch.device("cpu")
        tt = interleaved({"unit": gradient_pass(model, x, t), "context": context}, cpu, rounds=rounds)
        out[name] = {"units (op time)": ops["ops_ms"] / unit["ops_ms"],
                     "conv fwd": f"{ops['n_conv_fwd']:.0f} calls vs {unit['n_conv_fwd']:.0f}, "
                                 f"{ops['conv_fwd_ms'] / unit['ops_ms']:.2f} units",
                     "conv bwd": f"{ops['n_conv_bwd']:.0f} calls vs {unit['n_conv_bwd']:.0f}, "
                                 f"{ops['conv_bwd_ms'] / unit['ops_ms']:.2f} units",
                     "other ops": f"{ops['other_ms'] / unit['ops_ms']:.2f} units (unit's own: "
                                  f"{unit['other_ms'] / unit['ops_ms']:.2f})",
                     "context enter+exit": f"{statistics.median(tt['context']) / statistics.median(tt['unit']):.2f} "
                                           "units (wall)"}
    return out


def ig_breakdown(backbone: str, size: int, rounds: int) -> dict:
    model = classifier(backbone, size, CLASSES)
    x, t = batch(BATCH, size, CLASSES)
    ig = explainers.get("integrated-gradients")(n_steps=IG_STEPS)
    xs = x.repeat(IG_STEPS, 1, 1, 1)  # the interpolated images' shape (values do not change the cost)
    ts = t.repeat(IG_STEPS)
    times = interleaved({"unit": gradient_pass(model, x, t), "floor": gradient_pass(model, xs, ts),
                         "ig": lambda: ig.explain(model, x, t)}, torch.device("cpu"), rounds=rounds)
    unit = statistics.median(times["unit"])
    return {"ig per step": statistics.median(times["ig"]) / unit / IG_STEPS,
            "floor per step": statistics.median(times["floor"]) / unit / IG_STEPS,
            "ig / floor": statistics.median(times["ig"]) / statistics.median(times["floor"]), "unit_ms": unit * 1e3}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--configs", nargs="+", default=["small-resnet:32", "small-resnet:64", "resnet18:32"])
    p.add_argument("--skip-ig", action="store_true")
    args = p.parse_args()
    print(f"{machine()}; batch {BATCH}; op times from torch.profiler, in gradient units of the same model and batch")
    for cfg in args.configs:
        bb, size = cfg.split(":")
        r = lrp_breakdown(bb, int(size), args.rounds)
        print(f"\n{bb} {size} px (load {load():.1f})")
        for name, parts in r.items():
            print(f"  {name}: " + "; ".join(f"{k} {v if isinstance(v, str) else f'{v:.2f}'}" for k, v in parts.items()))
        if not args.skip_ig:
            g = ig_breakdown(bb, int(size), args.rounds)
            print("  IG: " + ", ".join(f"{k} {v:.2f}" for k, v in g.items()))


if __name__ == "__main__":
    main()
