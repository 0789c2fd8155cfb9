"""Show that the tests issue 12 called weak can fail: each mutant breaks the code one test guards.

For every mutant: copy ``hansbench/``, ``tests/``, ``docs/`` and ``README.md`` to a temporary
directory, apply one textual change, run the named tests there (the copy on ``PYTHONPATH`` first),
and expect a failure. The unmutated copy runs first and must pass, so a "killed" mutant means the
test caught the change, not a broken set-up. Run from the repository root (about 1-2 minutes):

    python tools/mutants.py            # every mutant
    python tools/mutants.py mcgc wmsc  # only these

Exit status 0 when every mutant was killed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository root; "a,b": the same change in both files
    old: str
    new: str
    tests: tuple[str, ...]  # pytest node ids or -k expressions (prefixed "-k ")
    why: str


MUTANTS = [
    Mutant("gradient-pass-noop", "hansbench/bench/timing.py",
           "        return input_gradient(model, x, target)\n", "        return x\n",
           ("tests/test_timing.py",), "the gradient unit does nothing"),
    Mutant("mcgc-always-falls-back", "hansbench/methods/clusterers/mcgc.py",
           "        if n_comp == c:\n", "        if False:\n",
           ("tests/test_clusterers.py", "-k mcgc"), "MCGC ignores its learned graph S (k-means every time)"),
    Mutant("wmsc-uniform-weights", "hansbench/methods/clusterers/wmsc.py",
           "        w = simplex_qp((h + h.T) / 2, y)\n", "        w = np.full(nv, 1.0 / nv)\n",
           ("tests/test_clusterers.py", "-k wmsc"), "WMSC's view weights are not learned"),
    Mutant("ddc2-dropped", "hansbench/methods/clusterers/deep_mvc.py",
           "    ddc2 = 2.0 / (n * (n - 1)) * _triu_sum(assign @ assign.T)\n",
           "    ddc2 = 1.0 / (n * (n - 1)) * _triu_sum(assign @ assign.T)\n",
           ("tests/test_deep_mvc_losses.py",), "DDC's second loss off by a factor of 2"),
    Mutant("contrastive-no-temperature", "hansbench/methods/clusterers/deep_mvc.py",
           "    logits = zz @ zz.T / tau\n", "    logits = zz @ zz.T\n",
           ("tests/test_deep_mvc_losses.py",), "CoMVC's contrastive loss ignores tau"),
    Mutant("zplus-keeps-bias", "hansbench/methods/explainers/_zennit.py",
           "    return lambda param, name: torch.zeros_like(param) if name == \"bias\" else keep(param)\n",
           "    return lambda param, name: keep(param)\n",
           ("tests/test_lrp_conservation.py",), "z+ with the bias: relevance leaks in BN-merged convs"),
    Mutant("cluster-detection-no-rows", "hansbench/metrics/cluster_detection.py",
           "        detail = json.dumps(info)\n", "        detail = json.dumps(info)\n        return []\n",
           ("tests/test_runner.py",), "the runner test must see cluster-detection rows, not an empty frame"),
    Mutant("readme-plugin-leaves-grads", "docs/plugin_example.py,README.md",
           "                (grad,) = torch.autograd.grad(logits, x)   # the input's gradient only: no .grad on parameters\n",
           "                logits.backward(); grad = x.grad\n",
           ("tests/test_readme_plugin.py",), "the plugin example leaves .grad on the model's parameters"),
]


def _copy(dst: Path) -> None:
    for name in ("hansbench", "tests", "docs"):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("README.md", "pyproject.toml"):
        shutil.copy2(ROOT / name, dst / name)


def _pytest(where: Path, tests: tuple[str, ...]) -> int:
    args = [a for t in tests for a in (t.split(" ", 1) if t.startswith("-k ") else [t])]
    env = {**os.environ, "PYTHONPATH": f"{where}{os.pathsep}{where / 'tests'}", "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *args]
    return subprocess.run(cmd, cwd=where, env=env, capture_output=True, text=True).returncode


def main(only: list[str]) -> int:
    mutants = [m for m in MUTANTS if not only or m.name in only or any(o in m.name for o in only)]
    survived = []
    for m in mutants:
        with tempfile.TemporaryDirectory(prefix="hansbench-mutant-") as tmp:
            where = Path(tmp)
            _copy(where)
            if _pytest(where, m.tests) != 0:
                print(f"SET-UP  {m.name}: the unmutated tests fail; fix them first")
                return 2
            for path in m.path.split(","):
                target = where / path
                text = target.read_text()
                if text.count(m.old) != 1:
                    print(f"STALE   {m.name}: the text to mutate is not in {path} exactly once; update tools/mutants.py")
                    return 2
                target.write_text(text.replace(m.old, m.new))
            killed = _pytest(where, m.tests) != 0
        print(f"{'killed  ' if killed else 'SURVIVED'} {m.name}: {m.why} ({' '.join(m.tests)})", flush=True)
        if not killed:
            survived.append(m.name)
    print(f"{len(mutants) - len(survived)} of {len(mutants)} mutants killed")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
