"""Suite configuration: TOML files validated before any work starts.

A suite names scenarios, models and their training budgets, explainers, clusterers,
metrics (each with options), seeds and the device. Built-in suites ship in
``hansbench/suites``; a user's suite may ``extends = "quick"`` (or a path) and
override any field: tables merge, arrays replace, and ``replace = ["explainers"]``
takes the listed sections from the user's file alone. A parent's ``[data]`` option tables apply only to the
dataset/artifact they were written for. Scenarios are checked by the one path ``make_scenario`` uses too
(:mod:`hansbench.datasets.scenario_checks`). Every error names the key path and what would be valid.
The checked suite is typed: each scenario a :class:`~hansbench.datasets.scenarios.Scenario` (defaults filled in
here, once), each explainer/clusterer/metric a :class:`Component` (its options and its filters).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hansbench.bench.suite.errors import SuiteError
from hansbench.bench.suite.files import TOP_LEVEL, load_raw, merge_tables
from hansbench.bench.suite.seeds import OVERLAP_WARNING, check_seeds, describe_seeds, seed_overlap_warnings
from hansbench.bench.suite.sweep import SWEEP_META, SweepError, point_path, scenarios_with_sweeps
from hansbench.datasets.poisonings import default_scenario_name
from hansbench.datasets.scenario_checks import ScenarioError, check_scenario
from hansbench.datasets.scenarios import SCENARIO_FILTER, SETTINGS, Scenario
from hansbench.options import OptionError, check_options
from hansbench.registry import REGISTRIES, UnknownNameError, backbones, clusterer_inputs, model_kinds

SCENARIO_KEYS = {*SETTINGS, SCENARIO_FILTER, SWEEP_META}  # what a [[scenarios]] entry may write
# ``only = { metrics = [...], ... }`` in a scenario: what runs there (e.g. a clean control that needs no ROAR).
ONLY_SECTIONS = ("models", "explainers", "clusterers", "metrics")
# Keys of an explainer/clusterer/metric table that the runner reads as filters instead of
# passing them on as options: which model kinds / explainers / clusterers it runs with.
FILTER_KEYS = {"explainers": ("models",), "clusterers": ("models", "explainers"),
               "metrics": ("models", "explainers", "clusterers")}
SUITE_KEYS = {"name", "description", "seeds", "dev_seeds", "device", "extends", "replace", "node_timeout_s"}


@dataclass(frozen=True)
class Component:
    """One explainer/clusterer/metric entry of a suite: the options its plugin is built with, and the filters
    (``models``/``explainers``/``clusterers`` = [...]) the planner reads instead of passing them on."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def allows(self, *, model: str = "", explainer: str = "", clusterer: str = "") -> bool:
        """Whether the filters let it run with this model kind / explainer / clusterer ("" = not asked)."""
        combo = {"models": model, "explainers": explainer, "clusterers": clusterer}
        return all(not combo[key] or combo[key] in allowed for key, allowed in self.filters.items())


@dataclass
class Suite:
    name: str
    seeds: list[int]
    device: str
    scenarios: list[Scenario]
    models: dict[str, dict[str, Any]]
    explainers: dict[str, Component]
    clusterers: dict[str, Component]
    metrics: dict[str, Component]
    clustering: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    node_timeout_s: float = 3600.0  # a node running longer is failed with that reason; the run goes on
    dev_seeds: list[int] = field(default_factory=list)  # the seeds its settings were tuned on (not for publishing)
    warnings: list[str] = field(default_factory=list)  # usable but worth a line before the run (printed by the CLI)
    figures: bool = True  # plan the nodes the session figures draw from (``hansbench run --no-figures``: False)

    def set_seeds(self, seeds: list[int]) -> None:
        """Replace the seeds to run (``hansbench run --seed``): checked like ``suite.seeds``, the
        dev-seed overlap warning recomputed, and the run config (``raw``) updated so it records
        the seeds that actually ran."""
        self.seeds = check_seeds("--seed", seeds)
        self.raw.setdefault("suite", {})["seeds"] = list(self.seeds)
        self.warnings = [w for w in self.warnings if not w.startswith(OVERLAP_WARNING)]
        self.warnings += seed_overlap_warnings(self.seeds, self.dev_seeds)

    def describe_seeds(self) -> str:
        """What tables say about the seeds: ``evaluation seeds 2-6 (settings tuned on 0, 1)``."""
        return describe_seeds(self.seeds, self.dev_seeds)

    def allows(self, section: str, name: str, *, model: str = "", explainer: str = "", clusterer: str = "") -> bool:
        """Whether the suite's filters let ``name`` (of ``section``) run with this model kind / explainer /
        clusterer; a name the section does not hold has no filters."""
        entry = getattr(self, section).get(name)
        return entry is None or entry.allows(model=model, explainer=explainer, clusterer=clusterer)


def load_suite(ref: str | Path = "quick", overrides: dict | None = None) -> Suite:
    """Read, merge and validate a suite; raises :class:`SuiteError` before any work."""
    origins: dict[str, str] = {}
    raw = load_raw(ref, origins=origins)
    if overrides:
        raw = merge_tables(raw, overrides)
    return validate(raw, origins=origins)


def _table(raw: dict, key: str, default: Any = None) -> Any:
    value = raw.get(key, {} if default is None else default)
    if not isinstance(value, dict):
        raise SuiteError(f"{key}: expected a table, got {type(value).__name__}")
    return value


def _check_options(path: str, cls: Any, options: Any) -> dict:
    """Options must be keywords the plugin's ``__init__`` (or factory) accepts, with values it accepts too."""
    try:
        check_options(cls, options, what=path)
        if isinstance(cls, type):
            cls(**options)
    except OptionError as exc:
        raise SuiteError(f"{path}.{exc.key}: {exc.reason}") from None
    except (TypeError, ValueError) as exc:
        raise SuiteError(f"{path}: {exc}") from None
    return options


def _named_section(raw: dict, key: str) -> dict[str, Component]:
    """Validate ``[key]``: registered names, accepted options; filter keys go to each entry's ``filters``."""
    registry = REGISTRIES[key]
    section = _table(raw, key)
    out = {}
    for name, options in section.items():
        try:
            cls = registry.get(name)
        except UnknownNameError as exc:
            raise SuiteError(f"{key}.{name}: {exc}") from None
        if not isinstance(options, dict):
            raise SuiteError(f"{key}.{name}: expected a table of options (use {{}} for defaults), got {options!r}")
        options = dict(options)
        filt = {}
        for fkey in FILTER_KEYS[key]:
            if fkey in options:
                value = options.pop(fkey)
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise SuiteError(f"{key}.{name}.{fkey}: expected a list of names, got {value!r}")
                filt[fkey] = tuple(value)
        out[name] = Component(name, _check_options(f"{key}.{name}", cls, options), filt)
    return out


def validate(raw: dict, *, origins: dict[str, str] | None = None) -> Suite:
    """The checked :class:`Suite` of a merged suite table; ``origins``: which parent suite wrote each inherited
    ``[data]`` option (from :func:`load_raw`), named in errors."""
    unknown = set(raw) - TOP_LEVEL
    if unknown:
        raise SuiteError(f"unknown top-level key(s) {sorted(unknown)}; a suite has {sorted(TOP_LEVEL)}")
    meta = _table(raw, "suite")
    bad = sorted(set(meta) - SUITE_KEYS)
    if bad:
        close = difflib.get_close_matches(bad[0], sorted(SUITE_KEYS), n=1)
        raise SuiteError(f"suite.{bad[0]}: unknown key{f'; did you mean {close[0]!r}?' if close else ''} "
                         f"[suite] accepts {sorted(SUITE_KEYS)}")
    seeds = check_seeds("suite.seeds", meta.get("seeds", [0]))
    dev_seeds = check_seeds("suite.dev_seeds", meta.get("dev_seeds", []), allow_empty=True)
    node_timeout = meta.get("node_timeout_s", 3600)
    if isinstance(node_timeout, bool) or not isinstance(node_timeout, (int, float)) or node_timeout <= 0:
        raise SuiteError(f"suite.node_timeout_s: {node_timeout!r}; expected seconds > 0 that one node may run "
                         "before it is failed (default 3600)")
    device = meta.get("device", "auto")
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise SuiteError(f"suite.device: {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")

    defaults = _table(raw, "data")
    try:
        scenarios = scenarios_with_sweeps(raw)  # the hand-written scenarios, then every [[sweep]]'s points
    except SweepError as exc:
        raise SuiteError(str(exc)) from None
    if not isinstance(scenarios, list) or not scenarios:
        raise SuiteError("scenarios: a suite needs at least one [[scenarios]] entry or a [[sweep]]")
    resolved, wrote = [], []
    for i, own in enumerate(scenarios):
        sc = {**_inherited(defaults, own), **own}
        where = point_path(own) or f"scenarios[{i}]"  # a sweep's point is named by its sweep and values
        bad = set(sc) - SCENARIO_KEYS
        if bad:
            raise SuiteError(f"{where}: unknown key(s) {sorted(bad)}; accepted: {sorted(SCENARIO_KEYS)}")
        filled = Scenario.filled(sc)
        try:
            check_scenario(filled, written=set(sc))
        except ScenarioError as exc:
            raise SuiteError(f"{where}.{exc.key}{_origin(exc.key, sc, own, origins or {})}: "
                             f"{exc.reason}") from None
        wrote.append(frozenset(sc) - {SCENARIO_FILTER, SWEEP_META})
        if not sc.get("name"):
            sc["name"] = default_scenario_name(filled["poisoning"], filled["fraction"])
        resolved.append(sc)
    names = [s["name"] for s in resolved]
    if len(set(names)) != len(names):
        raise SuiteError(f"scenarios: names must be unique, got {names}")

    models = _table(raw, "models")
    if not models:
        raise SuiteError(f"models: train at least one of {model_kinds.names()}, e.g. [models.classifier]")
    for kind, cfg in models.items():
        try:
            model_kinds.check(kind)
        except UnknownNameError as exc:
            raise SuiteError(f"models.{kind}: {exc}") from None
        if not isinstance(cfg, dict):
            raise SuiteError(f"models.{kind}: expected a table")
        _check_recipe(f"models.{kind}", kind, cfg)
        _check_backbone(f"models.{kind}", cfg)

    named = {key: _named_section(raw, key) for key in ("explainers", "clusterers", "metrics")}
    _check_inputs(named, _table(raw, "clustering"))
    for section, entries in named.items():
        for name, entry in entries.items():
            for fkey, values in entry.filters.items():
                # Registered names are fine even when this suite does not run them (an extending
                # suite may drop an explainer that inherited filters name); typos are not. An
                # explainer filter also takes the non-map input kinds (rows of "pixels", "activations").
                known = REGISTRIES[fkey].names() + (input_kind_rows() if fkey == "explainers" else [])
                for v in values:
                    if v not in known:
                        raise SuiteError(f"{section}.{name}.{fkey}: unknown name {v!r}; use one of {known}")
    for sc in resolved:
        _check_only(sc)
    return Suite(
        name=meta.get("name", "custom"),
        node_timeout_s=float(node_timeout),
        dev_seeds=dev_seeds,
        warnings=seed_overlap_warnings(seeds, dev_seeds),
        description=meta.get("description", ""),
        seeds=seeds,
        device=device,
        scenarios=[Scenario.from_table(sc, w) for sc, w in zip(resolved, wrote)],  # defaults filled in here, and nowhere else
        models=models,
        explainers=named["explainers"],
        clusterers=named["clusterers"],
        metrics=named["metrics"],
        clustering=_table(raw, "clustering"),
        timing=_table(raw, "timing"),
        raw=raw,
    )


def input_kind_rows() -> list[str]:
    """The input kinds whose clusterings fill the ``explainer`` column with their own name (all but ``maps``)."""
    return [k for k in clusterer_inputs.names() if not clusterer_inputs.get(k).needs_explainer]


def _check_inputs(named: dict[str, dict[str, Component]], clustering: dict) -> None:
    """Clusterers' input kinds are registered; no explainer is named like one; ``[clustering] pixels`` is a bool."""
    kinds = clusterer_inputs.names()
    for name in named["clusterers"]:
        kind = REGISTRIES["clusterers"].get(name).input
        if kind not in kinds:
            raise SuiteError(f"clusterers.{name}: its input kind {kind!r} is not registered; known input kinds: "
                             f"{kinds} (a plugin registers one with hansbench.registry.clusterer_inputs)")
    for name in named["explainers"]:
        if name in kinds:
            raise SuiteError(f"explainers.{name}: {name!r} is the name of a clusterer input kind, so its rows could "
                             "not be told from that kind's baseline rows; register the explainer under another name")
    if not isinstance(clustering.get("pixels", True), bool):
        raise SuiteError(f"clustering.pixels: {clustering['pixels']!r}; expected true (default: every single-view "
                         "map clusterer also clusters the raw pixels, the no-model control) or false")


def _inherited(data: dict, sc: dict) -> dict:
    """The ``[data]`` settings a scenario inherits: all but an option table written for another plugin than the
    one the scenario names (its own option tables always apply)."""
    out = dict(data)
    for kind in ("dataset", "artifact"):
        if kind in sc and sc[kind] != data.get(kind, Scenario.default(kind)):
            out.pop(f"{kind}_options", None)
    return out


def _origin(key: str, sc: dict, own: dict, origins: dict[str, str]) -> str:
    """Where a scenario's failing option came from, when the scenario itself did not write it."""
    table, _, option = key.partition(".")
    if not table.endswith("_options") or table in own or table not in sc:  # written in the scenario, or nowhere
        return ""
    keys = [option] if option else list(sc.get(table) or {})
    parents = sorted({origins[f"{table}.{k}"] for k in keys if f"{table}.{k}" in origins})
    return f" (inherited from [data] of suite {', '.join(map(repr, parents))})" if parents else " (from [data])"


def _check_only(sc: dict) -> None:
    """A scenario's ``only`` table names known sections and registered names. As with filters, a registered
    name this suite does not run is fine (an extending suite may drop what an inherited ``only`` names)."""
    only = sc.get("only")
    if only is None:
        return
    where = f"scenarios.{sc['name']}.only"
    if not isinstance(only, dict) or not only:
        raise SuiteError(f"{where}: expected a table such as {{ metrics = [\"cluster-detection\"] }} naming "
                         f"what runs in this scenario ({', '.join(ONLY_SECTIONS)})")
    for section, names in only.items():
        if section not in ONLY_SECTIONS:
            raise SuiteError(f"{where}.{section}: unknown section; use one of {list(ONLY_SECTIONS)}")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise SuiteError(f"{where}.{section}: expected a non-empty list of names from [{section}]")
        known = REGISTRIES[section].names()
        for n in names:
            if n not in known:
                close = difflib.get_close_matches(n, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise SuiteError(f"{where}.{section}: unknown name {n!r}{hint}; use one of {known}")


def _check_recipe(path: str, kind: str, cfg: dict) -> None:
    from hansbench.models.recipes import recipe_from_config  # models validate their own keys

    try:
        recipe_from_config(kind, cfg)
    except (TypeError, ValueError) as exc:
        raise SuiteError(f"{path}: {exc}") from None


def _check_backbone(path: str, cfg: dict) -> None:
    """A registered backbone, and option names its factory accepts (nothing is built here)."""
    from hansbench.models.kinds import DEFAULT_BACKBONE

    name = cfg.get("backbone", DEFAULT_BACKBONE)
    try:
        factory = backbones.get(name)
    except UnknownNameError as exc:
        raise SuiteError(f"{path}.backbone: {exc}") from None
    options = cfg.get("backbone_options", {})
    if not isinstance(options, dict):
        raise SuiteError(f"{path}.backbone_options: expected a table of options, got {options!r}")
    _check_options(f"{path}.backbone_options", factory, options)
    from hansbench.models.backbones import check_weights  # keys and shapes only: no tensor data is read

    try:
        check_weights(name, options)
    except (ValueError, FileNotFoundError) as exc:
        raise SuiteError(f"{path}.backbone_options.weights: {exc}") from None
