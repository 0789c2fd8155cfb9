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
from hansbench.bench.suite.scenarios import resolve_scenarios
from hansbench.bench.suite.seeds import check_seeds, describe_seeds, seed_overlap_warnings
from hansbench.bench.suite.sweep import (
    SweepAxis,
    axes_of_points,
)
from hansbench.datasets.scenarios import Scenario
from hansbench.options import OptionError, check_options
from hansbench.registry import REGISTRIES, UnknownNameError, backbones, clusterer_inputs, model_kinds

# Keys of an explainer/clusterer/metric table that the runner reads as filters instead of
# passing them on as options: which model kinds / explainers / clusterers it runs with.
FILTER_KEYS = {"explainers": ("models",), "clusterers": ("models", "explainers"),
               "flagging": ("models", "explainers", "clusterers"),
               "metrics": ("models", "explainers", "clusterers", "rules")}
# A suite without a [flagging] section flags by every built-in rule that needs no retraining (PAPERS.md §9).
DEFAULT_RULES = ("smaller-cluster", "relative-size", "silhouette", "true-rate-budget", "upper-bound-budget", "own-flag")
_FILTER_REGISTRY = {"rules": "flagging"}  # a filter key whose registry has another name
SUITE_KEYS = {"name", "description", "seeds", "dev_seeds", "device", "extends", "replace", "node_timeout_s", "threads",
              "jobs", "figures", "explorer_seeds"}


@dataclass(frozen=True)
class Component:
    """One explainer/clusterer/metric entry of a suite: the options its plugin is built with, and the filters
    (``models``/``explainers``/``clusterers`` = [...]) the planner reads instead of passing them on."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def allows(self, *, model: str = "", explainer: str = "", clusterer: str = "", rule: str = "") -> bool:
        """Whether the filters let it run with this model kind / explainer / clusterer / rule ("" = not asked)."""
        combo = {"models": model, "explainers": explainer, "clusterers": clusterer, "rules": rule}
        return all(not combo[key] or combo[key] in allowed for key, allowed in self.filters.items())


@dataclass(frozen=True)
class Suite:
    """The one resolved configuration of a run: validated, defaults filled in, the CLI's values applied.

    Frozen: nothing writes onto it after validation (``hansbench run --seed/--device/--threads/--no-figures``
    go into :func:`load_suite` as overrides). It is stored with the run (:func:`hansbench.bench.suite.record.
    to_record`), and the planner, publishing and ``hansbench explain`` read it back instead of re-deriving
    defaults or re-expanding sweeps.
    """

    name: str
    seeds: tuple[int, ...]
    device: str
    scenarios: tuple[Scenario, ...]
    models: dict[str, dict[str, Any]]
    explainers: dict[str, Component]
    clusterers: dict[str, Component]
    metrics: dict[str, Component]
    flagging: dict[str, Component] = field(default_factory=dict)  # the rules that turn a split into a flag
    clustering: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict)  # the merged TOML as written (provenance only)
    node_timeout_s: float = 3600.0  # a node running longer is failed with that reason; the run goes on
    dev_seeds: tuple[int, ...] = ()  # the seeds its settings were tuned on (not for publishing)
    warnings: tuple[str, ...] = ()  # usable but worth a line before the run (printed by the CLI)
    figures: bool = True  # plan the nodes the session figures draw from (``hansbench run --no-figures``: False)
    threads: int | None = 1  # torch threads per node: fixed, so the rows do not depend on the machine's cores
    jobs: int | None = None  # nodes run side by side (worker processes; None: the cores // threads, at least 1)
    sweep_axes: tuple[SweepAxis, ...] = ()  # every sweep's axes, expanded once here

    def describe_seeds(self) -> str:
        """What tables say about the seeds: ``evaluation seeds 2-6 (settings tuned on 0, 1)``."""
        return describe_seeds(list(self.seeds), list(self.dev_seeds))

    def allows(self, section: str, name: str, *, model: str = "", explainer: str = "", clusterer: str = "",
               rule: str = "") -> bool:
        """Whether the suite's filters let ``name`` (of ``section``) run with this model kind / explainer /
        clusterer / rule; a name the section does not hold has no filters."""
        entry = getattr(self, section).get(name)
        return entry is None or entry.allows(model=model, explainer=explainer, clusterer=clusterer, rule=rule)

    def scenario(self, name: str) -> Scenario | None:
        """The scenario called ``name`` (None when the suite has none)."""
        return next((s for s in self.scenarios if s.name == name), None)


def load_suite(ref: str | Path = "quick", overrides: dict | None = None, *, seeds: list[int] | None = None,
               device: str | None = None, threads: int | None = None, figures: bool | None = None,
               jobs: int | None = None, node_timeout_s: float | None = None) -> Suite:
    """Read, merge and validate a suite; raises :class:`SuiteError` before any work.

    ``overrides``: tables merged over the suite's TOML. ``seeds``, ``device``, ``threads``, ``jobs``, ``figures``,
    ``node_timeout_s``: the
    command line's values, applied before validation (so they are checked like the suite's own and recorded
    with the run); None keeps the suite's.
    """
    origins: dict[str, str] = {}
    raw = load_raw(ref, origins=origins)
    if overrides:
        raw = merge_tables(raw, overrides)
    cli = {k: v for k, v in (("seeds", seeds), ("device", device), ("threads", threads), ("figures", figures),
                             ("jobs", jobs), ("node_timeout_s", node_timeout_s)) if v is not None}
    if cli:
        raw = merge_tables(raw, {"suite": cli})
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
    settings = _run_settings(meta)
    expanded, scenarios = resolve_scenarios(raw, origins or {})
    models = _table(raw, "models")
    _check_models(models)
    with_rules = raw if "flagging" in raw else {"flagging": {name: {} for name in DEFAULT_RULES}}  # the defaults
    named = {key: _named_section(with_rules if key == "flagging" else raw, key)
             for key in ("explainers", "clusterers", "flagging", "metrics")}
    _check_inputs(named, _table(raw, "clustering"))
    _check_filters(named)
    return Suite(
        name=meta.get("name", "custom"),
        description=meta.get("description", ""),
        warnings=tuple(seed_overlap_warnings(list(settings["seeds"]), list(settings["dev_seeds"]))),
        **settings,
        sweep_axes=tuple(axes_of_points(expanded)),
        scenarios=scenarios,  # defaults filled in here, and nowhere else
        models=models,
        explainers=named["explainers"],
        clusterers=named["clusterers"],
        metrics=named["metrics"],
        flagging=named["flagging"],
        clustering=_table(raw, "clustering"),
        timing=_table(raw, "timing"),
        raw=raw,
    )


def _run_settings(meta: dict) -> dict[str, Any]:
    """The ``[suite]`` table's run settings, checked: seeds, dev_seeds, device, threads, figures, node time-out."""
    bad = sorted(set(meta) - SUITE_KEYS)
    if bad:
        close = difflib.get_close_matches(bad[0], sorted(SUITE_KEYS), n=1)
        raise SuiteError(f"suite.{bad[0]}: unknown key{f'; did you mean {close[0]!r}?' if close else ''} "
                         f"[suite] accepts {sorted(SUITE_KEYS)}")
    node_timeout = meta.get("node_timeout_s", 3600)
    if isinstance(node_timeout, bool) or not isinstance(node_timeout, (int, float)) or node_timeout <= 0:
        raise SuiteError(f"suite.node_timeout_s: {node_timeout!r}; expected seconds > 0 that one node may run "
                         "before it is failed (default 3600)")
    device = meta.get("device", "auto")
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise SuiteError(f"suite.device: {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    threads, jobs, figures = meta.get("threads", 1), meta.get("jobs"), meta.get("figures", True)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise SuiteError(f"suite.threads: {threads!r}; expected a whole number >= 1 of torch threads per node "
                         "(default 1: the same rows on any number of cores)")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise SuiteError(f"suite.jobs: {jobs!r}; expected a whole number >= 1 of nodes run side by side "
                         "(leave it out for the cores divided by threads)")
    if not isinstance(figures, bool):
        raise SuiteError(f"suite.figures: {figures!r}; expected true (draw the session figures) or false")
    if meta.get("explorer_seeds", "all") not in ("first", "all"):  # read by the report (explorer.write)
        raise SuiteError(f"suite.explorer_seeds: {meta['explorer_seeds']!r}; expected 'first' (explorer pages for "
                         "each scenario and model's first seed only) or 'all' (default)")
    return {"seeds": tuple(check_seeds("suite.seeds", meta.get("seeds", [0]))),
            "dev_seeds": tuple(check_seeds("suite.dev_seeds", meta.get("dev_seeds", []), allow_empty=True)),
            "node_timeout_s": float(node_timeout), "device": device, "threads": threads, "jobs": jobs,
            "figures": figures}


def _check_models(models: dict) -> None:
    """At least one registered model kind, each with a recipe and backbone its factory accepts."""
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


def _check_filters(named: dict[str, dict[str, Component]]) -> None:
    """Filter keys name registered things. Registered names are fine even when this suite does not run them (an
    extending suite may drop an explainer that inherited filters name); typos are not. An explainer filter also
    takes the non-map input kinds (rows of "pixels", "activations")."""
    for section, entries in named.items():
        for name, entry in entries.items():
            for fkey, values in entry.filters.items():
                known = (REGISTRIES[_FILTER_REGISTRY.get(fkey, fkey)].names()
                         + (input_kind_rows() if fkey == "explainers" else []))
                for v in values:
                    if v not in known:
                        raise SuiteError(f"{section}.{name}.{fkey}: unknown name {v!r}; use one of {known}")


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
