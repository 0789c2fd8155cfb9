"""Suite configuration: TOML files validated before any work starts.

A suite names scenarios, models and their training budgets, explainers, clusterers,
metrics (each with options), seeds and the device. Built-in suites ship in
``hansbench/suites``; a user's suite may ``extends = "quick"`` (or a path) and
override any field: tables merge, arrays replace, and ``replace = ["explainers"]``
takes the listed sections from the user's file alone. Every error names the key path and what would be valid.
"""

from __future__ import annotations

import copy
import inspect
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hansbench.registry import REGISTRIES, UnknownNameError

MODEL_KINDS = ("classifier", "protopnet")
SCENARIO_KEYS = {
    "name", "dataset", "poisoning", "fraction", "artifact", "image_size", "n_train", "n_test",
    "affected_class", "target_class", "dataset_options", "artifact_options",
}
# Keys of an explainer/clusterer/metric table that the runner reads as filters instead of
# passing them on as options: which model kinds / explainers / clusterers it runs with.
FILTER_KEYS = {"explainers": ("models",), "clusterers": ("models", "explainers"),
               "metrics": ("models", "explainers", "clusterers")}
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
    if path.suffix == ".toml" or path.exists():
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
    seeds = meta.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise SuiteError(f"suite.seeds: expected a non-empty list of integers, got {seeds!r}")
    device = meta.get("device", "auto")
    if device not in ("auto", "cpu") and not str(device).startswith("cuda"):
        raise SuiteError(f"suite.device: {device!r}; use 'auto', 'cpu' or 'cuda[:N]'")

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
        frac = sc.get("fraction", 1.0)
        if not isinstance(frac, (int, float)) or not 0 <= frac <= 1:
            raise SuiteError(f"scenarios[{i}].fraction: {frac!r}; expected a share between 0 and 1")
        size = sc.get("image_size", 32)
        if not isinstance(size, int) or not 16 <= size <= 512:
            raise SuiteError(f"scenarios[{i}].image_size: {size!r}; expected an integer pixel size (32..224 typical)")
        if not sc.get("name"):
            sc["name"] = f"{sc.get('poisoning', 'CH')}-{round(100 * frac)}"
        resolved.append(sc)
    names = [s["name"] for s in resolved]
    if len(set(names)) != len(names):
        raise SuiteError(f"scenarios: names must be unique, got {names}")

    models = _table(raw, "models")
    if not models:
        raise SuiteError(f"models: train at least one of {list(MODEL_KINDS)}, e.g. [models.classifier]")
    for kind, cfg in models.items():
        if kind not in MODEL_KINDS:
            raise SuiteError(f"models.{kind}: unknown model kind; use one of {list(MODEL_KINDS)}")
        if not isinstance(cfg, dict):
            raise SuiteError(f"models.{kind}: expected a table")
        _check_recipe(f"models.{kind}", kind, cfg)

    filters: dict = {}
    named = {key: _named_section(raw, key, filters) for key in ("explainers", "clusterers", "metrics")}
    for section, entries in filters.items():
        for name, filt in entries.items():
            for fkey, values in filt.items():
                # Registered names are fine even when this suite does not run them (an extending
                # suite may drop an explainer that inherited filters name); typos are not.
                known = list(MODEL_KINDS) if fkey == "models" else REGISTRIES[fkey].names() + (
                    ["activations"] if fkey == "explainers" else [])
                for v in values:
                    if v not in known:
                        raise SuiteError(f"{section}.{name}.{fkey}: unknown name {v!r}; use one of {known}")
    return Suite(
        name=meta.get("name", "custom"),
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


def _check_recipe(path: str, kind: str, cfg: dict) -> None:
    from hansbench.models.training import recipe_from_config  # models validate their own keys

    try:
        recipe_from_config(kind, cfg)
    except (TypeError, ValueError) as exc:
        raise SuiteError(f"{path}: {exc}") from None
