"""Report the performance ratios measured in one run (never timed asserts in tests).

``tox -e bench`` (``pytest benchmarks -o python_files=bench_*.py --benchmark-only``) prints,
after pytest-benchmark's table, each pair's median ratio next to its target (or "reported").
The interleaved measurements behind PERFORMANCE.md come from ``python benchmarks/report.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # benchmarks/_common.py

# label: (fast benchmark, slow benchmark, target: ratio slow/fast >= target; None = reported only)
TARGETS = {
    "PRP batched vs one backward per prototype over the batch (batch 16, 5 prototypes)":
        ("test_prp_batched", "test_prp_per_view_loop", None),
    "PRP batched vs the reference loop, one backward per image and prototype (batch 1)":
        ("test_prp_batched", "test_prp_reference_loop", 5.0),
    "Quantus PixelFlipping (24 steps) vs relevance ordering (50 images x 25 points)":
        ("test_bench_ours", "test_bench_quantus", None),
    "CRP one-backward-per-view reference vs batched over concepts (k = 6)":
        ("test_crp[batched]", "test_crp[reference]", None),
    "gradient unit with weight gradients vs input gradient":
        ("test_gradient_unit[input_gradient]", "test_gradient_unit[with_weight_grads]", None),
    "spray-wasserstein all pairs vs pruned kNN":
        ("test_spray_wasserstein[pruned]", "test_spray_wasserstein[all_pairs]", None),
}
TARGETS.update({
    f"{ref} vs {ours} (N = 300; time {ref} / {ours})": (f"test_reference_clusterer[{ours}]",
                                                        f"test_reference_clusterer[{ref}]", None)
    for ours, ref in (("spray", "sklearn-spectral"), ("spray-q2", "sklearn-spectral"), ("coreg", "mvlearn-coreg"))
})
# label: (benchmark, floor benchmark, target: ratio benchmark/floor/divisor <= target[, divisor])
CEILINGS = {
    "relevance ordering vs its forward floor (25 x 50 forwards)": ("test_bench_ours", "test_bench_forward_floor", 1.2),
}
# every explainer in gradient units (small-resnet, 32 px, batch 16; bench_units.py)
_UNITS = {"lrp": ("classifier", 1, 3.0), "lrp-epsilon-plus-flat": ("classifier", 1, 3.0),
          "lrp-epsilon-gamma-box": ("classifier", 1, 3.0), "protopnet-lrp": ("protopnet", 1, 3.0),
          "prp": ("protopnet", 5, 3.0), "crp": ("classifier", 6, 3.0), "gradcam": ("classifier", 1, 1.5),
          "integrated-gradients": ("classifier", 16, 1.2), "protopnet-upsampling": ("protopnet", 5, None)}
for _name, (_kind, _views, _target) in _UNITS.items():
    _per = f" per view (/{_views})" if _views > 1 else ""
    CEILINGS[f"{_name} in gradient units{_per}, small-resnet 32 px"] = (
        f"test_units[{_name}]", f"test_units[unit-{_kind}]", _target, _views)
# wrapper overhead: ours / the library called directly (bench_wrappers.py, 32 px)
for _name in ("gradcam", "integrated-gradients", "lrp", "lrp-epsilon-plus-flat", "lrp-epsilon-gamma-box", "crp"):
    CEILINGS[f"wrapper overhead {_name}: ours / library called directly"] = (
        f"test_wrapper[{_name}-ours]", f"test_wrapper[{_name}-direct]", 1.1)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    medians = {b.name: b.stats.median for b in session.benchmarks if b.stats}
    terminalreporter.section("hansbench performance ratios (one run; PERFORMANCE.md has the interleaved ones)")
    for label, (fast, slow, target) in TARGETS.items():
        if fast in medians and slow in medians:
            r = medians[slow] / medians[fast]
            verdict = "reported" if target is None else f"target >= {target:g}x: {'met' if r >= target else 'NOT met'}"
            terminalreporter.write_line(f"{label}: {r:.2f}x ({verdict})")
    for label, (ours, floor, target, *div) in CEILINGS.items():
        if ours in medians and floor in medians:
            r = medians[ours] / medians[floor] / (div[0] if div else 1)
            verdict = "reported" if target is None else f"target <= {target:g}x: {'met' if r <= target else 'NOT met'}"
            terminalreporter.write_line(f"{label}: {r:.2f}x ({verdict})")
