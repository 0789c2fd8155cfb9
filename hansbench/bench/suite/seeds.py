"""Seeds: checked lists, the dev-seed overlap warning, and how tables name them (``2-6, 9``).

A suite's ``seeds`` are its evaluation seeds; ``dev_seeds`` those its settings were tuned on. Publishing
numbers on tuning seeds is allowed but said (:func:`seed_overlap_warnings`, :func:`describe_seeds`).
"""

from __future__ import annotations

from typing import Any

from hansbench.bench.suite.errors import SuiteError

OVERLAP_WARNING = "warning: suite.seeds overlap suite.dev_seeds"


def check_seeds(path: str, seeds: Any, *, allow_empty: bool = False) -> list[int]:
    """A list of unique integer seeds (bools are not seeds); a SuiteError naming ``path`` otherwise."""
    what = "a list of integers" if allow_empty else "a non-empty list of integers"
    if (not isinstance(seeds, list) or (not seeds and not allow_empty)
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise SuiteError(f"{path}: expected {what}, got {seeds!r}")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise SuiteError(f"{path}: seed(s) {seed_list(repeated)} given more than once in {seeds!r}; "
                         "each seed runs once, so list it once")
    return list(seeds)


def seed_overlap_warnings(seeds: list[int], dev_seeds: list[int]) -> list[str]:
    """One line when seeds the settings were tuned on are also run: the published numbers then
    include tuning seeds (an optimistic bias), which is allowed but should be said."""
    both = [s for s in seeds if s in set(dev_seeds)]
    if not both:
        return []
    return [f"{OVERLAP_WARNING} ({seed_list(both)}): the published numbers then include seeds the settings "
            f"were tuned on; run other seeds for evaluation (e.g. --seed {' '.join(map(str, _fresh(seeds, dev_seeds)))})"]


def describe_seeds(seeds: list[int], dev_seeds: list[int]) -> str:
    """``evaluation seeds 2-6 (settings tuned on 0, 1)``; for tables that read a run's config
    (``config["suite"]["seeds"]`` and ``["dev_seeds"]``)."""
    tuned = f" (settings tuned on {seed_list(dev_seeds)})" if dev_seeds else ""
    word = "seed" if len(seeds) == 1 else "seeds"
    if dev_seeds and set(seeds) & set(dev_seeds):
        return f"{word} {seed_list(seeds)}{tuned}, including tuning seeds"
    return f"{'evaluation ' if dev_seeds else ''}{word} {seed_list(seeds)}{tuned}"


def _fresh(seeds: list[int], dev_seeds: list[int]) -> list[int]:
    """As many seeds as ``seeds`` holds, none of them a dev seed (for the warning's suggestion)."""
    taken, out, s = set(dev_seeds), [], 0
    while len(out) < len(seeds):
        if s not in taken:
            out.append(s)
        s += 1
    return out


def seed_list(seeds: list[int]) -> str:
    """``[2, 3, 4, 5, 6, 9]`` -> ``"2-6, 9"`` (runs of consecutive seeds shortened)."""
    parts, run = [], []
    for s in sorted(seeds):
        if run and s == run[-1] + 1:
            run.append(s)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 2 else ", ".join(map(str, run)))
        run = [s]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 2 else ", ".join(map(str, run)))
    return ", ".join(parts)
