"""Report the performance targets as ratios measured in one run (never timed asserts in tests).

``tox -e bench`` (``pytest benchmarks --benchmark-only``) prints, after pytest-benchmark's
table, each target pair's median ratio next to the issue's target.
"""

from __future__ import annotations

# name: (fast benchmark, slow benchmark, target ratio)
TARGETS = {
    "PRP: all prototypes batched vs one backward per image and prototype (batch 32)":
        ("test_prp_batched", "test_prp_reference_loop", 5.0),
    "relevance ordering (50 images x 21 steps) vs Quantus PixelFlipping":
        ("test_bench_ours", "test_bench_quantus", 10.0),
}


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    medians = {b.name.split("[")[0]: b.stats.median for b in session.benchmarks if b.stats}
    terminalreporter.section("hansbench performance targets")
    for label, (fast, slow, target) in TARGETS.items():
        if fast in medians and slow in medians:
            ratio = medians[slow] / medians[fast]
            verdict = "met" if ratio >= target else "NOT met"
            terminalreporter.write_line(f"{label}: {ratio:.2f}x (target >= {target:g}x: {verdict})")
