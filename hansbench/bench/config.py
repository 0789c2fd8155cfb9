"""Suite configuration: TOML files validated before any work starts.

A suite names scenarios, models and their training budgets, explainers, clusterers,
metrics (each with options), seeds and the device. Built-in suites ship in
``hansbench/suites``; a user's suite may ``extends = "quick"`` (or a path) and
override any field: tables merge, arrays replace, and ``replace = ["explainers"]``
takes the listed sections from the user's file alone. Every error names the key path and what would be valid.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hansbench.registry import REGISTRIES, UnknownNameError, backbones, clusterer_inputs, model_kinds

SCENARIO_KEYS = {
    "name", "dataset", "poisoning", "fraction", "artifact", "image_size", "n_train", "n_test",
    "affected_class", "target_class", "dataset_options", "artifact_options", "only",
}
# ``only = { metrics = [...], ... }`` in a scenario: what runs there (e.g. a clean control that needs no ROAR).
ONLY_SECTIONS = ("models", "explainers", "clusterers", "metrics")
# Keys of an explainer/clusterer/metric table that the runner reads as filters instead of
# passing them on as options: which model kinds / explainers / clusterers it runs with.
FILTER_KEYS = {"explainers": ("models",), "clusterers": ("models", "explainers"),
               "metrics": ("models", "explainers", "clusterers")}
SUITE_KEYS = {"name", "description", "seeds", "dev_seeds", "device", "extends", "replace", "node_timeout_s"}
TOP_LEVEL = {"suite", "data", "scenarios", "models", "explainers", "clusterers", "metrics", "clustering", "timing"}


class SuiteError(ValueError):
    """A suite that cannot run; the message names the key path and the fix."""


@dataclass
class Suite:
    name: str
    seeds: list[int]
    device: str
    scenarios: list[dict[str, Any]]
    models: dict[str, dict[str, Any]]
    explainers: dict[str, dict[str, Any]]
    clusterers: dict[str, dict[str, Any]]
    metrics: dict[str, dict[str, Any]]
    filters: dict[str, dict[str, dict[str, list[str]]]] = field(default_factory=dict)
    clustering: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    node_timeout_s: float = 3600.0  # a node running longer is failed with that reason; the run goes on
    dev_seeds: list[int] = field(default_factory=list)  # the seeds its settings were tuned on (not for publishing)
    warnings: list[str] = field(default_factory=list)  # usable but worth a line before the run (printed by the CLI)

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
        """Whether the suite's filters let ``name`` run with this model kind / explainer / clusterer."""
        filt = self.filters.get(section, {}).get(name, {})
        combo = {"models": model, "explainers": explainer, "clusterers": clusterer}
        return all(not combo[key] or combo[key] in allowed for key, allowed in filt.items())

    @property
    def map_size(self) -> int | None:
        return self.clustering.get("map_size")


def builtin_suites() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("hansbench.suites").iterdir() if p.name.endswith(".toml"))


def _read(ref: str | Path) -> tuple[dict, Path | None]:
    """Parse a suite given as a built-in name or a path."""
    path = Path(ref)
    if path.suffix == ".toml" or path.is_file() or (path.exists() and str(ref) not in builtin_suites()):
        if not path.is_file():
            raise SuiteError(f"suite file {str(path)!r} not found")
        text, origin = path.read_text(), path
    else:
        names = builtin_suites()
        if str(ref) not in names:
            raise SuiteError(f"unknown suite {str(ref)!r}: give a .toml path or one of the built-in suites {names}")
        text, origin = resources.files("hansbench.suites").joinpath(f"{ref}.toml").read_text(), None
    try:
        return tomllib.loads(text), origin
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"suite {str(ref)!r} is not valid TOML: {exc}") from None


def _merge(base: dict, override: dict) -> dict:
    """Deep-merge tables; arrays and scalars in ``override`` replace those in ``base``."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_raw(ref: str | Path, _seen: tuple = ()) -> dict:
    raw, origin = _read(ref)
    parent = raw.get("suite", {}).get("extends")
    if parent:
        if origin is not None and not Path(parent).is_absolute() and Path(parent).suffix == ".toml":
            parent = str(origin.parent / parent)
        if parent in _seen or parent == str(ref):
            raise SuiteError(f"suite.extends forms a cycle: {' -> '.join(map(str, _seen + (str(ref), parent)))}")
        base = load_raw(parent, _seen + (str(ref),))
        replace = raw["suite"].get("replace", [])
        if not isinstance(replace, list) or not set(replace) <= TOP_LEVEL - {"suite"}:
            raise SuiteError(f"suite.replace: expected a list of sections among {sorted(TOP_LEVEL - {'suite'})}, "
                             f"got {replace!r}")
        for section in replace:  # these sections come from this file alone, not merged into the parent's
            base.pop(section, None)
        raw = _merge(base, raw)
        raw["suite"].pop("extends", None)
        raw["suite"].pop("replace", None)
    return raw


def load_suite(ref: str | Path = "quick", overrides: dict | None = None) -> Suite:
    """Read, merge and validate a suite; raises :class:`SuiteError` before any work."""
    raw = load_raw(ref)
    if overrides:
        raw = _merge(raw, overrides)
    return validate(raw)


def _table(raw: dict, key: str, default: Any = None) -> Any:
    value = raw.get(key, {} if default is None else default)
    if not isinstance(value, dict):
        raise SuiteError(f"{key}: expected a table, got {type(value).__name__}")
    return value


def _check_options(path: str, cls: Any, options: Any) -> dict:
    """Options must be keys the plugin's __init__ accepts, and values it accepts too."""
    params = inspect.signature(cls.__init__).parameters if isinstance(cls, type) else inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        accepted = [n for n in params if n not in ("self", "args", "kwargs")]
        for key in options:
            if key not in accepted:
                raise SuiteError(f"{path}.{key}: unknown option; {path} accepts {accepted or 'no options'}")
    try:
        if isinstance(cls, type):
            cls(**options)
    except (TypeError, ValueError) as exc:
        raise SuiteError(f"{path}: {exc}") from None
    return options


def _named_section(raw: dict, key: str, filters: dict) -> dict[str, dict]:
    """Validate ``[key]``: registered names, accepted options; filter keys go to ``filters[key]``."""
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
                filt[fkey] = value
        filters.setdefault(key, {})[name] = filt
        out[name] = _check_options(f"{key}.{name}", cls, options)
    return out


def validate(raw: dict) -> Suite:
    unknown = set(raw) - TOP_LEVEL
    if unknown:
        raise SuiteError(f"unknown top-level key(s) {sorted(unknown)}; a suite has {sorted(TOP_LEVEL)}")
    meta = _table(raw, "suite")
    bad = sorted(set(meta) - SUITE_KEYS)
    if bad:
        import difflib

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
    scenarios = raw.get("scenarios", [])
    if not isinstance(scenarios, list) or not scenarios:
        raise SuiteError("scenarios: a suite needs at least one [[scenarios]] entry")
    resolved = []
    for i, sc in enumerate(scenarios):
        sc = {**defaults, **sc}
        bad = set(sc) - SCENARIO_KEYS
        if bad:
            raise SuiteError(f"scenarios[{i}]: unknown key(s) {sorted(bad)}; accepted: {sorted(SCENARIO_KEYS)}")
        for key, registry in (("dataset", "datasets"), ("artifact", "artifacts")):
            if key in sc:
                try:
                    REGISTRIES[registry].check(sc[key])
                except UnknownNameError as exc:
                    raise SuiteError(f"scenarios[{i}].{key}: {exc}") from None
        frac = sc.get("fraction", _scenario_default("fraction"))
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac <= 1:
            raise SuiteError(f"scenarios[{i}].fraction: {frac!r}; expected a share between 0 and 1")
        size = sc.get("image_size", _scenario_default("image_size"))
        if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 512:
            raise SuiteError(f"scenarios[{i}].image_size: {size!r}; expected an integer pixel size (32..224 typical)")
        _check_scenario(f"scenarios[{i}]", sc)
        if not sc.get("name"):
            from hansbench.datasets.poisonings import default_scenario_name

            sc["name"] = default_scenario_name(sc.get("poisoning", _scenario_default("poisoning")), frac)
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

    filters: dict = {}
    named = {key: _named_section(raw, key, filters) for key in ("explainers", "clusterers", "metrics")}
    _check_inputs(named, _table(raw, "clustering"))
    for section, entries in filters.items():
        for name, filt in entries.items():
            for fkey, values in filt.items():
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
        scenarios=resolved,
        models=models,
        explainers=named["explainers"],
        clusterers=named["clusterers"],
        metrics=named["metrics"],
        filters=filters,
        clustering=_table(raw, "clustering"),
        timing=_table(raw, "timing"),
        raw=raw,
    )


def input_kind_rows() -> list[str]:
    """The input kinds whose clusterings fill the ``explainer`` column with their own name (all but ``maps``)."""
    return [k for k in clusterer_inputs.names() if not clusterer_inputs.get(k).needs_explainer]


def _check_inputs(named: dict[str, dict], clustering: dict) -> None:
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


def _close(value: str, known: list[str]) -> str:
    close = [k for k in known if k.lower() == value.lower()] or difflib.get_close_matches(value, known, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _check_class(path: str, value: Any, names: list[str], dataset: str, default: bool) -> int:
    """Index of a class given by name or index; a SuiteError with the dataset's classes otherwise."""
    listed = ", ".join(map(repr, names))
    given = f"{value!r} (the default)" if default else repr(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(names):
            return value
        raise SuiteError(f"{path}: index {value} is out of range: dataset {dataset!r} has {len(names)} classes "
                         f"({listed})")
    if not isinstance(value, str):
        raise SuiteError(f"{path}: expected a class name or index, got {value!r}; classes: {listed}")
    if value in names:
        return names.index(value)
    raise SuiteError(f"{path}: {given} is not a class of dataset {dataset!r}; classes: {listed}."
                     f"{_close(value, names)}")


def _build(path: str, registry: str, name: str, options: Any) -> Any:
    """The configured dataset/artifact object: unknown option names and bad values fail here."""
    if not isinstance(options, dict):
        raise SuiteError(f"{path}: expected a table of options, got {options!r}")
    cls = REGISTRIES[registry].get(name)
    try:
        return cls(**options)
    except (TypeError, ValueError, OSError) as exc:
        raise SuiteError(f"{path}: {exc}") from None


def _check_scenario(path: str, sc: dict) -> None:
    """Scenario settings that would otherwise fail only once the scenario is built: the poisoning,
    sizes, the dataset's and the artifact's options, and the classes against the dataset's class
    names (read without generating or loading any image)."""
    from hansbench.datasets.poisonings import get_poisoning

    poisoning = sc.get("poisoning", _scenario_default("poisoning"))
    try:
        rule = get_poisoning(poisoning)
    except UnknownNameError as exc:
        raise SuiteError(f"{path}.poisoning: {exc}") from None
    for key in ("n_train", "n_test"):
        n = sc.get(key, 1)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise SuiteError(f"{path}.{key}: {n!r}; expected a positive number of images")
    dataset = sc.get("dataset", _scenario_default("dataset"))
    _build(f"{path}.artifact_options", "artifacts", sc.get("artifact", _scenario_default("artifact")),
           sc.get("artifact_options", {}))
    ds = _build(f"{path}.dataset_options", "datasets", dataset, sc.get("dataset_options", {}))
    class_names = getattr(ds, "class_names", None)
    if not callable(class_names):  # a plugin dataset without class_names: checked when the scenario is built
        return
    try:
        names = list(class_names())
    except (TypeError, ValueError, OSError) as exc:
        raise SuiteError(f"{path}.dataset_options: {exc}") from None
    affected = _check_class(f"{path}.affected_class", sc.get("affected_class", _scenario_default("affected_class")),
                            names, dataset, "affected_class" not in sc)
    if rule.needs_target or "target_class" in sc:
        target = _check_class(f"{path}.target_class", sc.get("target_class", _scenario_default("target_class")),
                              names, dataset, "target_class" not in sc)
        if rule.needs_target and target == affected:
            raise SuiteError(f"{path}.target_class: {names[target]!r} equals affected_class; poisoning "
                             f"{poisoning!r} relabels the poisoned images to another class: pick a different "
                             "target_class")


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


def _scenario_default(key: str) -> Any:
    """The default of a scenario setting, from the one table of them."""
    from hansbench.datasets.scenarios import SCENARIO_DEFAULTS

    return SCENARIO_DEFAULTS[key]


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
