"""Show that the guarding tests can fail: each mutant breaks the code one test guards.

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
           "        return [self._row(name, value, detail) for name, value in values.items()]\n", "        return []\n",
           ("tests/test_runner.py",), "the runner test must see cluster-detection rows, not an empty frame"),
    Mutant("readme-plugin-leaves-grads", "docs/plugin_example.py,README.md",
           "                (grad,) = torch.autograd.grad(logits, x)   # the input's gradient only: no .grad on parameters\n",
           "                logits.backward(); grad = x.grad\n",
           ("tests/test_readme_plugin.py",), "the plugin example leaves .grad on the model's parameters"),
    # controls and baselines (issue 18)
    Mutant("pixels-grey", "hansbench/methods/inputs.py",
           "return pool(images, settings).flatten(1)", "return pool(images.mean(1, keepdim=True), settings).flatten(1)",
           ("tests/test_inputs.py::test_pixel_views_are_the_pooled_images_of_the_inspected_class",),
           "the raw-input control is not the pooled RGB images"),
    Mutant("setup-sees-ground-truth", "hansbench/bench/execute.py",
           "obj.setup(model, data.without_ground_truth(), self.ws)", "obj.setup(model, data, self.ws)",
           ("tests/test_inputs.py::test_explainer_setup_gets_the_data_without_ground_truth",),
           "explainer set-up can read the poisoned flags"),
    Mutant("auroc-reversed", "hansbench/metrics/cluster_detection.py",
           "\"auroc\": float(roc_auc_score(truth, scores))", "\"auroc\": float(roc_auc_score(truth, -scores))",
           ("tests/test_metric_cluster_detection.py::test_auroc_auprc_equal_sklearn_and_a_perfect_score_gives_one",),
           "AUROC of the suspicion score turned around"),
    Mutant("scores-point-away", "hansbench/methods/clusterers/_graph.py",
           "return others - dist[int(flagged)]", "return dist[int(flagged)] - others",
           ("tests/test_clusterers.py::test_scores_rank_the_planted_minority_and_are_oriented",),
           "clusterers' suspicion scores point away from the flagged cluster"),
    Mutant("spectral-signature-not-squared", "hansbench/methods/clusterers/spectral_signatures.py",
           "scores = pca.fit_transform(x)[:, 0] ** 2", "scores = np.abs(pca.fit_transform(x)[:, 0])",
           ("tests/test_detectors.py::test_spectral_signature_scores_equal_numpy_svd",),
           "spectral signature score is not the squared projection"),
    Mutant("spectre-no-whitening", "hansbench/methods/clusterers/spectre.py",
           "w = (z - mcd.location_) @ inv_sqrt(mcd.covariance_, floor)", "w = z - mcd.location_",
           ("tests/test_detectors.py::test_spectre_sees_a_poison_direction_that_spectral_signatures_miss",),
           "SPECTRE without robust whitening"),
    Mutant("strip-score-sign", "hansbench/methods/clusterers/strip.py",
           "        scores = -entropy", "        scores = entropy",
           ("tests/test_detectors.py::test_strip_flags_images_whose_trigger_dominates_the_prediction",),
           "STRIP suspects high-entropy images"),
    Mutant("a2o-only-affected", "hansbench/datasets/poisonings.py",
           "        return self.source_index(test_labels, num_classes, affected, target)",
           "        return torch.nonzero(test_labels == affected).flatten()",
           ("tests/test_poisonings.py::test_all_to_one_artifact_test_carries_the_trigger_on_every_non_target_image",),
           "the all-to-one artifact test triggers one class only"),
    Mutant("label-flip-stamps", "hansbench/datasets/poisonings.py",
           "    stamps = False\n    control_of = \"BD\"", "    stamps = True\n    control_of = \"BD\"",
           ("tests/test_poisonings.py::test_label_flip_relabels_exactly_the_backdoors_images_without_stamping",),
           "the label-flip control carries the trigger"),
    Mutant("ground-truth-visible", "hansbench/datasets/base.py",
           "return replace(self, train=BlindSplit.of(self.train), meta=meta)", "return replace(self, meta=meta)",
           ("tests/test_poisonings.py::test_without_ground_truth_hides_flags_masks_and_true_labels",),
           "without_ground_truth leaves the flags readable"),
    Mutant("ordering-unpaired", "hansbench/metrics/relevance_ordering.py",
           "            salt = \"artifact_test\"  # the choice of artifact-localisation too, so their maps are shared",
           "            salt = split_name",
           ("tests/test_protocol.py::test_relevance_ordering_pairs_the_two_test_splits",),
           "relevance ordering's clean and artifact images differ"),
    Mutant("ties-raster-order", "hansbench/metrics/_perturbation.py",
           "        order = ties[torch.argsort(flat[..., ties], dim=-1, descending=True, stable=True)]",
           "        order = torch.argsort(flat, dim=-1, descending=True, stable=True)",
           ("tests/test_protocol.py::test_ties_are_broken_by_a_seeded_random_order_not_raster_order",),
           "ties in relevance broken in raster order"),
    Mutant("insertion-frame-relative", "hansbench/metrics/artifact_insertion.py",
           "    boxes = None if split.boxes is None else split.boxes[index]", "    boxes = None",
           ("tests/test_protocol.py::test_insertion_stamps_the_artifact_inside_the_object_box",),
           "insertion stamps relative to the frame, not the object"),
    Mutant("weights-load-loosely", "hansbench/models/backbones.py",
           "    if missing or unexpected or shapes:", "    if shapes:",
           ("tests/test_protocol.py::test_partial_or_mismatched_state_dicts_are_refused_in_one_line",),
           "a partial state dict loads silently"),
    Mutant("randomisation-input-first", "hansbench/metrics/randomisation.py",
           "groups = head + _backbone_blocks(model)[::-1]", "groups = head + _backbone_blocks(model)",
           ("tests/test_randomisation.py::test_cascade_randomises_from_the_output_and_one_more_group_per_step",),
           "the cascade randomises from the input up"),
    Mutant("probe-folds-unseeded", "hansbench/metrics/probe.py",
           "folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)",
           "folds = StratifiedKFold(n_splits=n_splits, shuffle=True)",
           ("tests/test_probe.py::test_probe_folds_are_seeded",), "the probe's folds are not seeded"),
    Mutant("only-filter-ignored", "hansbench/bench/graph.py",
           "    return allowed is None or name in allowed", "    return True",
           ("tests/test_graph.py::test_a_scenarios_only_table_limits_what_runs_there_and_keeps_its_data_key",),
           "a scenario's only-table does not limit what runs there"),
    # statistics and tables (issue 17)
    Mutant("holm-not-monotone", "hansbench/bench/stats.py",
           "adjusted = np.maximum.accumulate(p[order] * (m - np.arange(m)))", "adjusted = p[order] * (m - np.arange(m))",
           ("tests/test_stats.py::test_holm_on_a_literal_example",), "Holm's step-down without monotonicity"),
    Mutant("nemenyi-cd-halved", "hansbench/bench/stats.py",
           "cd = q * math.sqrt(k * (k + 1) / (6.0 * n))", "cd = q * math.sqrt(k * (k + 1) / (12.0 * n))",
           ("tests/test_stats.py::test_friedman_and_nemenyi_cd_against_scipy_and_demsar",), "Nemenyi CD formula wrong"),
    Mutant("no-ties-reported", "hansbench/bench/summary.py",
           "tied = [best] + [k for k, c in zip(explained[1:], comps) if not c.significant]", "tied = [best]",
           ("tests/test_leaderboard.py::test_overlapping_intervals_give_a_tie_and_no_method_beats_the_baseline",),
           "the summary names a winner where the tests cannot tell"),
    Mutant("marks-without-holm", "hansbench/bench/cells.py",
           "adj = holm([c.p for c in comparisons])", "adj = [c.p for c in comparisons]",
           ("tests/test_leaderboard.py::test_significance_marks_against_the_reference_are_holm_corrected",),
           "significance marks not Holm-corrected"),
    Mutant("cleaning-cost-sign", "hansbench/metrics/data_cleaning.py",
           "before[\"acc\"] - after[\"acc\"]", "after[\"acc\"] - before[\"acc\"]",
           ("tests/test_metric_data_cleaning.py::test_clean_control_reports_what_cleaning_costs_in_clean_accuracy",),
           "what cleaning costs the clean control has the wrong sign"),
    Mutant("figures-low-dpi", "hansbench/bench/styles.py", "DPI = 200", "DPI = 90",
           ("tests/test_figures.py::test_every_figure_is_a_png_of_at_least_200_dpi_with_an_svg_twin",),
           "figures below 200 dpi"),
    Mutant("seed-flag-last-wins", "hansbench/bench/cli.py",
           "nargs=\"+\", action=\"extend\", metavar=\"SEED\"", "nargs=\"+\", metavar=\"SEED\"",
           ("tests/test_cli_reliability.py::test_both_seed_spellings_give_both_seeds",), "--seed 5 --seed 6 runs 6 only"),
]


def _copy(dst: Path) -> None:
    for name in ("hansbench", "tests", "docs"):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("README.md", "pyproject.toml"):
        shutil.copy2(ROOT / name, dst / name)


def _pytest(where: Path, tests: tuple[str, ...]) -> int:
    args = [a for t in tests for a in (t.split(" ", 1) if t.startswith("-k ") else [t])]
    # no bytecode: a mutated file of the same size written within the same second would run a stale .pyc
    env = {**os.environ, "PYTHONPATH": f"{where}{os.pathsep}{where / 'tests'}", "MPLBACKEND": "Agg",
           "PYTHONDONTWRITEBYTECODE": "1"}
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
