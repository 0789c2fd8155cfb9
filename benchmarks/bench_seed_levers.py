"""The per-seed levers of issue 21, each interleaved A/B in one process at the quick suite's sizes.

    HANSBENCH_BENCH_THREADS=2 python benchmarks/bench_seed_levers.py   # the suite's thread count

- ``channels_last``: two epochs of the quick classifier's training (1000 images, 32 px, batch 64),
  contiguous vs ``memory_format = "channels_last"`` (the floats differ: an opt-in);
- ``cladec-chunk``: ClaDec occlusion maps of 64 images (stride 0.25) decoded 1024 vs 256 images at a time
  (the maps are checked equal: the default is 256);
- ``ig-internal-batch``: Integrated Gradients (16 steps) on 64 images, ``internal_batch_size`` 256 vs 128
  (the maps differ in the last bits: not kept);
- ``inference-mode``: the metrics' prediction of 300 test images (``hansbench.models.evaluation.predict``)
  under ``torch.no_grad`` (as it runs) vs ``torch.inference_mode``.

Prints each ratio (slow / fast, per-round range) and whether the two outputs are equal. PERFORMANCE.md's
"Per-seed cost" quotes it; the suite-level effect is ``benchmarks/per_seed_cost.py``.
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
from _common import MEAN, STD, THREADS, interleaved, machine, ratio

import hansbench._autoload  # noqa: F401  (registers the explainers)
from hansbench.datasets.base import Split
from hansbench.models.kinds import build_model
from hansbench.registry import explainers

DEV = torch.device("cpu")


def _images(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g), torch.randint(0, 4, (n,), generator=g)


def channels_last(rounds: int) -> dict:
    x, y = _images(1000)

    def train(fmt: str):
        def run():
            torch.manual_seed(0)
            m = build_model("classifier", num_classes=4, mean=MEAN, std=STD, memory_format=fmt).train()
            opt = torch.optim.Adam(m.parameters(), lr=2e-3)
            for _ in range(2):
                for i in range(0, len(x), 64):
                    loss = F.cross_entropy(m(m.normalize(x[i:i + 64])), y[i:i + 64])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            return m
        return run

    t = interleaved({"contiguous": train("contiguous"), "channels_last": train("channels_last")}, DEV, rounds)
    a, b = train("contiguous")(), train("channels_last")()
    return {"ratio": ratio(t, "contiguous", "channels_last"),
            "equal": all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters())),
            "max_abs_diff": max(float((p - q).abs().max()) for p, q in zip(a.parameters(), b.parameters()))}


def _maps_pair(name: str, options: dict, attr: str, slow, fast, setup: bool, rounds: int) -> dict:
    torch.manual_seed(0)
    model = build_model("classifier", num_classes=4, mean=MEAN, std=STD).eval()
    x01, labels = _images(256)
    exp = explainers.get(name)(**options)
    if setup:
        class Data:  # what ClaDec's setup reads
            train = Split(x01, labels, labels.clone(), torch.zeros(256, dtype=torch.bool),
                          torch.zeros(256, 32, 32, dtype=torch.bool))
            num_classes = 4
        exp.setup(model, Data(), None)
    x, t = model.normalize(x01[:64]), labels[:64]
    out = {}

    def call(value):
        def run():
            setattr(exp, attr, value)
            out[value] = exp.explain(model, x, t)
        return run

    times = interleaved({"slow": call(slow), "fast": call(fast)}, DEV, rounds)
    return {"ratio": ratio(times, "slow", "fast"), "equal": bool(torch.equal(out[slow], out[fast])),
            "max_abs_diff": float((out[slow] - out[fast]).abs().max())}


def inference_mode(rounds: int) -> dict:
    from hansbench.models.evaluation import predict

    torch.manual_seed(0)
    model = build_model("classifier", num_classes=4, mean=MEAN, std=STD).eval()
    x, _ = _images(300)
    out = {}

    def run(ctx):
        def call():
            with ctx():
                out[ctx] = predict(model, x, device=DEV)
        return call

    times = interleaved({"no_grad": run(torch.no_grad), "inference_mode": run(torch.inference_mode)}, DEV, rounds,
                        repeats=3)
    return {"ratio": ratio(times, "no_grad", "inference_mode"),
            "equal": bool(torch.equal(out[torch.no_grad], out[torch.inference_mode])), "max_abs_diff": 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    res = {"machine": machine(), "threads": THREADS,
           "channels_last": channels_last(max(3, args.rounds - 2)),
           "cladec-chunk": _maps_pair("cladec", {"epochs": 1, "stride": 0.25}, "chunk_size", 1024, 256, True,
                                      args.rounds),
           "ig-internal-batch": _maps_pair("integrated-gradients", {"n_steps": 16}, "internal_batch_size", 256, 128,
                                           False, args.rounds),
           "inference-mode": inference_mode(args.rounds)}
    for k, v in res.items():
        if isinstance(v, dict):
            r, lo, hi = v["ratio"]
            print(f"{k}: {r:.2f}x ({lo:.2f}-{hi:.2f}); outputs equal: {v['equal']}"
                  + (f" (max |diff| {v['max_abs_diff']:.2g})" if "max_abs_diff" in v else ""))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
