"""Show that the guarding tests can fail: each mutant breaks the code one test guards.

For every mutant: copy ``hansbench/``, ``tests/``, ``docs/``, ``tools/`` and ``README.md`` to a temporary
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
    Mutant("gradient-pass-noop", "hansbench/bench/engine/kernel_timer.py",
           "        return input_gradient(model, x, target)\n", "        return x\n",
           ("tests/bench/engine/test_timing.py",), "the gradient unit does nothing"),
    Mutant("mcgc-always-falls-back", "hansbench/methods/clusterers/mcgc.py",
           "        if n_comp == c:\n", "        if False:\n",
           ("tests/methods/test_clusterers.py", "-k mcgc"), "MCGC ignores its learned graph S (k-means every time)"),
    Mutant("wmsc-uniform-weights", "hansbench/methods/clusterers/wmsc.py",
           "        w = simplex_qp((h + h.T) / 2, y)\n", "        w = np.full(nv, 1.0 / nv)\n",
           ("tests/methods/test_clusterers.py", "-k wmsc"), "WMSC's view weights are not learned"),
    Mutant("ddc2-dropped", "hansbench/methods/clusterers/deep_mvc.py",
           "    ddc2 = 2.0 / (n * (n - 1)) * _triu_sum(assign @ assign.T)\n",
           "    ddc2 = 1.0 / (n * (n - 1)) * _triu_sum(assign @ assign.T)\n",
           ("tests/methods/test_deep_mvc_losses.py",), "DDC's second loss off by a factor of 2"),
    Mutant("contrastive-no-temperature", "hansbench/methods/clusterers/deep_mvc.py",
           "    logits = zz @ zz.T / tau\n", "    logits = zz @ zz.T\n",
           ("tests/methods/test_deep_mvc_losses.py",), "CoMVC's contrastive loss ignores tau"),
    Mutant("zplus-keeps-bias", "hansbench/methods/explainers/_zennit.py",
           "    return lambda param, name: torch.zeros_like(param) if name == \"bias\" else keep(param)\n",
           "    return lambda param, name: keep(param)\n",
           ("tests/methods/test_lrp_conservation.py",), "z+ with the bias: relevance leaks in BN-merged convs"),
    Mutant("cluster-detection-no-rows", "hansbench/metrics/cluster_detection.py",
           "        return [self._row(name, value, detail) for name, value in values.items()]\n", "        return []\n",
           ("tests/bench/engine/test_runner.py",), "the runner test must see cluster-detection rows, not an empty frame"),
    Mutant("readme-plugin-leaves-grads", "docs/plugin_example.py,README.md",
           "                (grad,) = torch.autograd.grad(logits, x)   # the input's gradient only: no .grad on parameters\n",
           "                logits.backward(); grad = x.grad\n",
           ("tests/test_readme_plugin.py",), "the plugin example leaves .grad on the model's parameters"),
    # controls and baselines (issue 18)
    Mutant("pixels-grey", "hansbench/methods/inputs.py",
           "return pool(images, settings).flatten(1)", "return pool(images.mean(1, keepdim=True), settings).flatten(1)",
           ("tests/methods/test_inputs.py::test_pixel_views_are_the_pooled_images_of_the_inspected_class",),
           "the raw-input control is not the pooled RGB images"),
    Mutant("setup-sees-ground-truth", "hansbench/bench/engine/nodes/explainer.py",
           "obj.setup(model, data.without_ground_truth(), env.ws)", "obj.setup(model, data, env.ws)",
           ("tests/methods/test_inputs.py::test_explainer_setup_gets_the_data_without_ground_truth",),
           "explainer set-up can read the poisoned flags"),
    Mutant("auroc-reversed", "hansbench/metrics/cluster_detection.py",
           "\"auroc\": float(roc_auc_score(truth, scores))", "\"auroc\": float(roc_auc_score(truth, -scores))",
           ("tests/metrics/test_metric_cluster_detection.py::test_auroc_auprc_equal_sklearn_and_a_perfect_score_gives_one",),
           "AUROC of the suspicion score turned around"),
    Mutant("scores-point-away", "hansbench/methods/clusterers/_graph.py",
           "return others - dist[int(flagged)]", "return dist[int(flagged)] - others",
           ("tests/methods/test_clusterers.py::test_scores_rank_the_planted_minority_and_are_oriented",),
           "clusterers' suspicion scores point away from the flagged cluster"),
    Mutant("spectral-signature-not-squared", "hansbench/methods/clusterers/spectral_signatures.py",
           "scores = pca.fit_transform(x)[:, 0] ** 2", "scores = np.abs(pca.fit_transform(x)[:, 0])",
           ("tests/methods/test_detectors.py::test_spectral_signature_scores_equal_numpy_svd",),
           "spectral signature score is not the squared projection"),
    Mutant("spectre-no-whitening", "hansbench/methods/clusterers/spectre.py",
           "w = (z - mcd.location_) @ inv_sqrt(mcd.covariance_, floor)", "w = z - mcd.location_",
           ("tests/methods/test_detectors.py::test_spectre_sees_a_poison_direction_that_spectral_signatures_miss",),
           "SPECTRE without robust whitening"),
    Mutant("strip-score-sign", "hansbench/methods/clusterers/strip.py",
           "        scores = -entropy", "        scores = entropy",
           ("tests/methods/test_detectors.py::test_strip_flags_images_whose_trigger_dominates_the_prediction",),
           "STRIP suspects high-entropy images"),
    Mutant("a2o-only-affected", "hansbench/datasets/poisonings.py",
           "        return self.source_index(test_labels, num_classes, affected, target)",
           "        return torch.nonzero(test_labels == affected).flatten()",
           ("tests/datasets/test_poisonings.py::test_all_to_one_artifact_test_carries_the_trigger_on_every_non_target_image",),
           "the all-to-one artifact test triggers one class only"),
    Mutant("label-flip-stamps", "hansbench/datasets/poisonings.py",
           "    stamps = False\n    control_of = \"BD\"", "    stamps = True\n    control_of = \"BD\"",
           ("tests/datasets/test_poisonings.py::test_label_flip_relabels_exactly_the_backdoors_images_without_stamping",),
           "the label-flip control carries the trigger"),
    Mutant("ground-truth-visible", "hansbench/datasets/base.py",
           "return replace(self, train=BlindSplit.of(self.train), meta=meta)", "return replace(self, meta=meta)",
           ("tests/datasets/test_poisonings.py::test_without_ground_truth_hides_flags_masks_and_true_labels",),
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
           ("tests/metrics/test_randomisation.py::test_cascade_randomises_from_the_output_and_one_more_group_per_step",),
           "the cascade randomises from the input up"),
    Mutant("probe-folds-unseeded", "hansbench/metrics/probe.py",
           "folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)",
           "folds = StratifiedKFold(n_splits=n_splits, shuffle=True)",
           ("tests/metrics/test_probe.py::test_probe_folds_are_seeded",), "the probe's folds are not seeded"),
    Mutant("only-filter-ignored", "hansbench/datasets/scenarios.py",
           "    return allowed is None or name in allowed", "    return True",
           ("tests/bench/engine/test_graph.py::test_a_scenarios_only_table_limits_what_runs_there_and_keeps_its_data_key",),
           "a scenario's only-table does not limit what runs there"),
    # statistics and tables (issue 17)
    Mutant("holm-not-monotone", "hansbench/bench/report/stats.py",
           "adjusted = np.maximum.accumulate(p[order] * (m - np.arange(m)))", "adjusted = p[order] * (m - np.arange(m))",
           ("tests/bench/report/test_stats.py::test_holm_on_a_literal_example",), "Holm's step-down without monotonicity"),
    Mutant("nemenyi-cd-halved", "hansbench/bench/report/stats.py",
           "cd = q * math.sqrt(k * (k + 1) / (6.0 * n))", "cd = q * math.sqrt(k * (k + 1) / (12.0 * n))",
           ("tests/bench/report/test_stats.py::test_friedman_and_nemenyi_cd_against_scipy_and_demsar",), "Nemenyi CD formula wrong"),
    Mutant("no-ties-reported", "hansbench/bench/report/summary.py",
           "tied = [best] + [k for k, c in zip(explained[1:], comps) if not c.significant]", "tied = [best]",
           ("tests/bench/report/test_leaderboard.py::test_overlapping_intervals_give_a_tie_and_no_method_beats_the_baseline",),
           "the summary names a winner where the tests cannot tell"),
    Mutant("marks-without-holm", "hansbench/bench/report/results.py",
           "adj = holm([c.p for c in comparisons])", "adj = [c.p for c in comparisons]",
           ("tests/bench/report/test_leaderboard.py::test_significance_marks_against_the_reference_are_holm_corrected",),
           "significance marks not Holm-corrected"),
    Mutant("cleaning-cost-sign", "hansbench/metrics/data_cleaning.py",
           "before[\"acc\"] - after[\"acc\"]", "after[\"acc\"] - before[\"acc\"]",
           ("tests/metrics/test_metric_data_cleaning.py::test_clean_control_reports_what_cleaning_costs_in_clean_accuracy",),
           "what cleaning costs the clean control has the wrong sign"),
    Mutant("figures-low-dpi", "hansbench/bench/report/figures/styles.py", "DPI = 200", "DPI = 90",
           ("tests/bench/report/test_figures.py::test_every_figure_is_a_png_of_at_least_200_dpi_with_an_svg_twin",),
           "figures below 200 dpi"),
    Mutant("seed-flag-last-wins", "hansbench/bench/cli.py",
           "nargs=\"+\", action=\"extend\", metavar=\"SEED\"", "nargs=\"+\", metavar=\"SEED\"",
           ("tests/bench/test_cli_reliability.py::test_both_seed_spellings_give_both_seeds",), "--seed 5 --seed 6 runs 6 only"),
    Mutant("sweep-names-drop-values", "hansbench/bench/suite/sweep.py",
           "        name += f\"-{value}\" if isinstance(value, str) else f\"-{field.split('.')[-1]}{value_text(value)}\"\n",
           "        name += \"\"\n",
           ("tests/bench/suite/test_sweep.py", "-k two_field"), "a sweep's points are not named by their swept values"),
    Mutant("sweep-name-clash-allowed", "hansbench/bench/suite/sweep.py",
           "            if name in taken:\n", "            if False:\n",
           ("tests/bench/suite/test_sweep.py", "-k written_scenario"), "a point may silently take a hand-written scenario's name"),
    Mutant("sweep-entry-in-data-key", "hansbench/datasets/scenarios.py",
           "        return {k: getattr(self, k) for k in SETTINGS}\n",
           "        return {**{k: getattr(self, k) for k in SETTINGS}, **({SWEEP_META: self.sweep} if self.sweep else {})}\n",
           ("tests/bench/suite/test_sweep.py", "-k data_key"), "the sweep entry (level, values) enters the data key"),
    Mutant("sweep-fraction-unchecked", "hansbench/bench/suite/sweep.py",
           "    if field == \"fraction\" and not (_is_number(v) and 0 <= v <= 1):\n",
           "    if False:\n",
           ("tests/bench/suite/test_sweep.py", "-k bad_sweeps"), "an out-of-range grid value is not refused at its key path"),
    Mutant("sweep-breakdown-counts-untaken", "hansbench/bench/report/sweep_report.py",
           "    ok = [i for i, (_, m, took) in enumerate(points) if took and m is not None and math.isfinite(m)]\n",
           "    ok = [i for i, (_, m, took) in enumerate(points) if m is not None and math.isfinite(m)]\n",
           ("tests/bench/report/test_sweep_report.py", "-k breakdown_is_the_smallest"), "a point whose poisoning did not take counts"),
    Mutant("sweep-breakdown-strict-level", "hansbench/bench/report/sweep_report.py",
           "    hit = [i for i in ok if points[i][1] >= level]\n", "    hit = [i for i in ok if points[i][1] > level]\n",
           ("tests/bench/report/test_sweep_report.py", "-k breakdown_is_the_smallest"), "reaching the level exactly does not count"),
    Mutant("sweep-holds-above-unchecked", "hansbench/bench/report/sweep_report.py",
           "    drop = next((i for i in ok if i > first and points[i][1] < level), None)\n", "    drop = None\n",
           ("tests/bench/report/test_sweep_report.py", "-k breakdown_is_the_smallest"), "holds above is always yes"),
    Mutant("sweep-gates-ignored", "hansbench/bench/report/sweep_report.py",
           "            failed[(sc, m)] = notes\n", "            pass\n",
           ("tests/bench/report/test_sweep_report.py", "-k skips_points_that_did_not_take"), "failed reliance gates are not read"),
    Mutant("sweep-never-hollow", "hansbench/bench/report/figures/sweep.py",
           'mfc=style["color"] if filled else "white"', 'mfc=style["color"]',
           ("tests/bench/report/test_sweep_report.py", "-k hollow"), "untaken points look like taken ones"),
    Mutant("sweep-baselines-solid", "hansbench/bench/report/figures/sweep.py",
           '    ls = "--" if explainer in kinds else', '    ls = "-" if explainer in kinds else',
           ("tests/bench/report/test_sweep_report.py", "-k hollow"), "baselines are not drawn dashed"),
    Mutant("sweep-no-t-band", "hansbench/bench/report/figures/sweep.py",
           "    band = [(xi, t_interval(s.to_numpy(dtype=float))) for xi, s in zip(x, series) if len(s) >= 3]\n",
           "    band = []\n", ("tests/bench/report/test_sweep_report.py", "-k hollow"), "no interval over seeds"),
    Mutant("sweeps-not-published", "hansbench/bench/report/page.py",
           "    page.blocks += sweep_page(rows, config, Path(out))  # the sweeps: after the rankings\n", "",
           ("tests/bench/report/test_sweep_report.py", "-k sweeps_section"), "the page has no Sweeps section"),
    Mutant("inherited-options-reach-other-artifact", "hansbench/bench/suite/scenarios.py",
           "            out.pop(f\"{kind}_options\", None)\n", "            pass\n",
           ("tests/test_options_convention.py::test_inherited_artifact_options_do_not_reach_another_artifact",),
           "a scenario naming another artifact inherits [data]'s options for the old one"),
    Mutant("parent-data-options-merged", "hansbench/bench/suite/files.py",
           "            data.pop(table, None)\n", "            pass\n",
           ("tests/test_options_convention.py::test_a_parents_data_options_apply_only_to_its_plugin",),
           "a parent suite's [data] options reach a child's other artifact"),
    Mutant("option-origin-unsaid", "hansbench/bench/suite/scenarios.py",
           "for k in keys if f\"{table}.{k}\" in origins})", "for k in keys if False})",
           ("tests/test_options_convention.py::test_option_errors_say_where_the_options_were_written",),
           "an inherited option's error does not say which suite wrote it"),
    Mutant("unknown-option-accepted", "hansbench/options.py",
           "            if key not in accepted:\n", "            if False:\n",
           ("tests/test_options_convention.py::test_unknown_plugin_option_fails_at_validation_with_the_accepted_ones",),
           "an unknown plugin option passes validation"),
    Mutant("poisoning-rule-rebuilt", "hansbench/datasets/base.py",
           "if cached is None or cached[0] != self.poisoning:", "if True:",
           ("tests/test_options_convention.py::test_poisoning_rule_is_built_once_per_scenario",),
           "ScenarioData builds a new Poisoning on every access"),
    Mutant("options-not-read-from-signature", "hansbench/datasets/_helpers.py",
           "        return options_of(self)\n", "        return {}\n",
           ("tests/test_options_convention.py::test_builtin_options_are_the_old_defaults",),
           "a dataset's/artifact's options are not read from its __init__"),
    Mutant("target-equals-affected-allowed", "hansbench/datasets/scenario_checks.py",
           "    if rule.needs_target and target == affected:\n", "    if False:\n",
           ("tests/datasets/test_scenarios.py::test_errors_name_the_allowed_values",), "a backdoor onto its own class passes"),
    Mutant("catalogue-check-blind", "tools/catalogue.py",
           "        if current != text:\n", "        if current is None:\n",
           ("tests/test_catalogue.py::test_stale_catalogue_fails_with_one_line",), "a stale catalogue passes --check"),
    Mutant("rows-always-higher-better", "hansbench/metrics/base.py",
           "            \"higher_is_better\": bool(higher),\n", "            \"higher_is_better\": True,\n",
           ("tests/metrics/test_metric_contract.py::test_rows_match_declarations[relevance-deletion-classifier]",),
           "a metric's rows ignore its declared directions"),
    Mutant("sweep-effect-ignored", "hansbench/bench/report/sweep_report.py",
           "            v = next((v for v in p.effect if ((dm.family == f) & (dm.metric == v)).any()), \"\")\n",
           "            v = \"\"\n",
           ("tests/bench/report/test_sweep_report.py", "-k skips_points_that_did_not_take"),
           "the breakdown table quotes no effect size of the reliance"),
    Mutant("cached-type-without-from-state", "hansbench/bench/engine/nodes/base.py",
           "    if cls.cached and not _overrides(cls, \"from_state\"):", "    if False:",
           ("tests/bench/engine/test_node_types.py::test_a_cached_type_without_from_state_fails_at_registration",),
           "a cached node type that cannot load its entry registers (fails only on a warm rerun)"),
    Mutant("node-version-ignores-code", "hansbench/bench/engine/nodes/base.py",
           "        return keys.digest([keys.code_version(cls), *plugin_versions], 16)",
           "        return keys.digest([*plugin_versions], 16)",
           ("tests/bench/engine/test_node_types.py::test_a_types_code_version_is_a_digest_of_its_code",),
           "editing a node type's code does not change its keys"),
    Mutant("warm-recomputes", "hansbench/bench/engine/execute.py",
           "                return self.memo.put(node.key, kind.from_state(node, state, self))",
           "                return self.memo.put(node.key, kind.compute(node, self)[0])",
           ("tests/bench/engine/test_node_types.py::test_a_toy_type_runs_cold_then_loads_warm_through_its_from_state",),
           "a warm rerun recomputes instead of loading the cache"),
    Mutant("bank-key-constant", "hansbench/bench/engine/nodes/maps.py",
           "        self.key = keys.node_key(\"maps-bank\", {\"split\": split}, MapsNode.code_version(),",
           "        self.key = keys.node_key(\"maps-bank\", {\"split\": split}, \"2\",",
           ("tests/bench/engine/test_node_types.py::test_editing_the_map_bank_reruns_maps_and_what_clusters_them_without_a_constant",),
           "editing the map bank does not invalidate its entries"),
    Mutant("sub-node-time-double-billed", "hansbench/bench/engine/execute.py",
           "        inner = sum(r[\"seconds\"] for r in self._records[n_before:])", "        inner = 0.0",
           ("tests/bench/engine/test_node_types.py::test_each_node_on_demand_is_billed_its_own_time_only",),
           "a node on demand is billed its inputs' time too"),
    Mutant("plan-order-reversed", "hansbench/bench/engine/planner.py",
           "        return sorted(seen.values(), key=lambda n: node_types.order(n.type))",
           "        return sorted(seen.values(), key=lambda n: -node_types.order(n.type))",
           ("tests/bench/engine/test_node_types.py::test_the_plan_orders_types_by_their_declared_order_inputs_first",),
           "a node is planned before its inputs"),
    Mutant("figures-compute-while-publishing", "hansbench/bench/report/figures/session.py",
           "        found = env.cached_output(node)\n", "        found = env.output(node)\n",
           ("tests/bench/engine/test_figure_inputs.py::test_figures_without_their_cached_inputs_are_skipped_not_computed",),
           "publishing computes a figure's inputs instead of reading them"),
    Mutant("figure-inputs-need-every-input", "hansbench/bench/engine/nodes/figure_inputs.py",
           "        model = node.inputs[\"model\"]\n        yield from model.ancestors()\n        yield model\n",
           "        yield from node.ancestors()\n",
           ("tests/bench/engine/test_graph.py::test_bad_output_fails_its_node_and_skips_dependants",),
           "one failed explainer skips every figure of its model"),
    Mutant("figures-planned-without-figures", "hansbench/bench/engine/planner.py",
           "for n in t.plan_after(self, rows)] if suite.figures else []", "for n in t.plan_after(self, rows)]",
           ("tests/bench/engine/test_figure_inputs.py::test_figure_inputs_are_planned_once_per_scenario_and_model_on_the_first_seed",),
           "--no-figures still computes the figures' inputs"),
    Mutant("scenario-written-settings-filled", "hansbench/datasets/scenarios.py",
           "for k in SETTINGS if k in self.written or k == \"name\"}", "for k in SETTINGS}",
           ("tests/datasets/test_scenario_typed.py::test_defaults_are_filled_in_once_by_validate_and_written_settings_stay_as_written",),
           "the data node's as-written settings carry defaults (keys move)"),
    Mutant("metric-sees-partial-scenario", "hansbench/bench/engine/nodes/metric.py",
           "model_kind=kind, scenario=scenario,", "model_kind=kind, scenario=scenario.written_settings(),",
           ("tests/datasets/test_scenario_typed.py::test_a_metric_written_against_scenario_dicts_still_gets_its_answers",),
           "a plugin metric's not_applicable gets a scenario without its defaults"),
    Mutant("component-filters-ignored", "hansbench/bench/suite/config.py",
           "return all(not combo[key] or combo[key] in allowed for key, allowed in self.filters.items())", "return True",
           ("tests/datasets/test_scenario_typed.py::test_components_carry_their_options_and_filters",),
           "a component's filters do not limit where it runs"),
    Mutant("omitted-key-moves-with-rename", "hansbench/bench/engine/runner.py",
           "digest({(\"metric\" if k == \"family\" else k): v for k, v in ids.items()}, 20)", "digest(ids, 20)",
           ("tests/datasets/test_scenario_typed.py::test_omitted_keys_digest_family_under_its_former_name",),
           "not-applicable jobs recorded before the family rename are counted twice"),
    Mutant("explainer-options-digested", "hansbench/bench/engine/nodes/explainer.py",
           "{\"name\": name, \"options\": options, \"files\": keys.with_file_digests(options)}",
           "{\"name\": name, \"options\": keys.with_file_digests(options), \"files\": options}",
           ("tests/datasets/test_scenario_typed.py::test_options_is_what_the_plugin_is_built_with_and_files_the_digested_copy",),
           "an explainer is built with the digested copy of its options"),
    Mutant("run-lock-after-store", "hansbench/bench/engine/runner.py",
           "        with DirectoryLock(self.out, wait_for_lock):  # a run in progress keeps its store: not migrated under it\n            self.store = ResultsStore(self.out / \"results.sqlite\")",
           "        self.store = ResultsStore(self.out / \"results.sqlite\")",
           ("tests/bench/engine/test_store.py::test_a_locked_directory_stops_a_second_runner_before_it_opens_the_store",),
           "a second run migrates the store under the first"),
    Mutant("store-reasons-stay-in-error", "hansbench/bench/engine/store.py",
           "        \"UPDATE jobs SET reason = error, error = NULL WHERE status = 'not-applicable'\"],", "        ],",
           ("tests/bench/engine/test_store.py::test_v2_store_is_migrated_to_v3_keeping_every_row_and_moving_reasons",),
           "migration leaves not-applicable reasons in the error column"),
    Mutant("presentation-shape-unchecked", "hansbench/metrics/presentation.py",
           "    if shape not in SHAPES:", "    if False:",
           ("tests/metrics/test_presentation.py::test_a_bad_declaration_fails_at_registration_in_one_line",),
           "a bad table_shape is caught only when tables are built"),
    Mutant("publish-never-skips", "hansbench/bench/report/publish.py",
           "    if not isinstance(previous, dict) or previous.get(\"digest\") != digest:", "    if True:",
           ("tests/bench/report/test_publish.py::test_publish_writes_every_output_then_skips_until_something_changes",),
           "a warm rerun rewrites every output"),
    Mutant("partial-results-skipped", "hansbench/bench/report/publish.py",
           "    if skip_unchanged and not partial:", "    if skip_unchanged:",
           ("tests/bench/report/test_publish.py::test_partial_results_are_never_skipped_and_keep_no_manifest",),
           "partial results may be skipped as unchanged"),
    Mutant("output-code-not-transitive", "hansbench/bench/report/publish.py",
           "    files = source_imports.import_closure(source_imports.package_files(OUTPUT_PACKAGE, root), root)\n",
           "    files = source_imports.package_files(OUTPUT_PACKAGE, root)\n",
           ("tests/bench/report/test_outputs_follow_code.py", "-k moves_with_any_module"),
           "the output digest misses the modules the report imports (metrics.presentation, suite.sweep)"),
    Mutant("outputs-ignore-the-code", "hansbench/bench/report/publish.py",
           '"code": output_code(), "suite": suite_name', '"code": "", "suite": suite_name',
           ("tests/bench/report/test_outputs_follow_code.py", "-k warm_rerun"),
           "a warm rerun keeps the leaderboard after a report module changed"),
    Mutant("cell-shown-on-text", "hansbench/bench/report/cells.py",
           "    return iv.n > 0 and math.isfinite(iv.mean)", "    return True",
           ("tests/bench/report/test_leaderboard.py::test_an_undefined_cell_is_decided_on_its_numbers_not_its_text",),
           "an undefined cell is decided on its display text"),
    Mutant("rows-differ-from-recorded", "hansbench/models/trainers.py",
           "            loss = F.cross_entropy(model(model.normalize(x)), y)\n",
           "            loss = F.cross_entropy(model(model.normalize(x)), y, label_smoothing=0.01)\n",
           ("tests/bench/test_behaviour_stays.py",), "a change of behaviour the refactor test must see (every trained row moves)"),
    Mutant("memo-ignores-in-place-edits", "hansbench/metrics/_memo.py",
           "            if all(r() is o for r, o in zip(refs, objects)) and stored_versions == versions:",
           "            if all(r() is o for r, o in zip(refs, objects)):",
           ("tests/bench/engine/test_shared_work.py::test_logits_memo_recomputes_after_any_change",),
           "a model retrained in place is served its old logits"),
    Mutant("memo-keeps-dead-entries", "hansbench/metrics/_memo.py",
           "            if entry is not None and any(r is ref for r in entry[0]):  # not a newer entry on a reused id",
           "            if False:",
           ("tests/bench/engine/test_shared_work.py::test_memo_holds_its_objects_weakly_and_a_reused_id_never_hits",),
           "a freed model's entry stays (and holds its value) until evicted"),
    Mutant("pruning-memo-ignores-blamed-set", "hansbench/metrics/pruning.py",
           "(\"last-layer\", blamed, self.epochs", "(\"last-layer\", (), self.epochs",
           ("tests/bench/engine/test_shared_work.py::test_two_pruning_nodes_that_blame_one_prototype_retrain_once_with_the_same_rows",),
           "pruning another prototype reuses another intervention's retrained model"),
    Mutant("memory-format-ignored", "hansbench/models/kinds.py",
           "    return model.to(memory_format=MEMORY_FORMATS[memory_format])  # (contiguous: already so, a no-op)",
           "    return model",
           ("tests/bench/engine/test_shared_work.py::test_channels_last_model_computes_the_same_function",),
           "memory_format = channels_last is accepted but not applied"),
    Mutant("cladec-chunk-order", "hansbench/methods/explainers/cladec.py",
           "            scores.append((change * m[:, None]).sum(dim=(-2, -1)))  # R(O) per window and image [n, B]\n",
           "            scores.append((change * m[:, None]).sum(dim=(-2, -1)) * (1 + 1e-6 * len(scores)))\n",
           ("tests/methods/test_cladec.py::test_occlusion_maps_do_not_depend_on_the_chunk_size",),
           "ClaDec's occlusion maps depend on how the windows are chunked"),
    Mutant("memo-lets-storage-go", "hansbench/metrics/_memo.py",
           "        aliases = [t.detach() for o in objects for t in _tensors(o)]\n", "        aliases = []\n",
           ("tests/bench/engine/test_shared_work.py::test_replaced_storage_never_passes_for_the_old_state",),
           "a replaced weight on the freed address passes for the old one"),
]


def _copy(dst: Path) -> None:
    for name in ("hansbench", "tests", "docs", "tools"):
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
