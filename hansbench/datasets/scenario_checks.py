"""The checks of a scenario's settings, in one place: ``make_scenario`` and the suite loader both run
:func:`check_scenario` before any image is generated or loaded.

Every failure is a :class:`ScenarioError` whose ``key`` is the setting's path inside the scenario
(``fraction``, ``artifact_options.size``) and whose ``reason`` says what would be valid; the suite
loader prefixes the scenario's path (``scenarios[0].fraction``) and says where inherited options came from.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from hansbench.datasets.poisonings import Poisoning, get_poisoning
from hansbench.options import OptionError, check_options, resolved_options
from hansbench.registry import REGISTRIES, UnknownNameError

MIN_SIZE, MAX_SIZE = 16, 512  # image_size in pixels


class ScenarioError(ValueError):
    """A scenario setting that cannot run: ``key`` (its path in the scenario) and ``reason`` (the fix)."""

    def __init__(self, key: str, reason: str):
        self.key, self.reason = key, reason
        super().__init__(f"{key}: {reason}")


@dataclass
class CheckedScenario:
    """What the checks built on the way: the poisoning, the configured artifact and dataset, the options
    they run with (defaults filled in), and the classes when the dataset can name them without loading."""

    rule: Poisoning
    artifact: Any
    dataset: Any
    artifact_options: dict
    class_names: list[str] | None
    affected: int | None
    target: int | None


def check_scenario(sc: dict, *, written: Collection[str] | None = None) -> CheckedScenario:
    """Check every setting of ``sc`` (complete: defaults filled in) that can be checked without images.

    ``written``: the keys the user wrote, when known (the suite loader): a class that is not is shown as
    ``(the default)``, and a ``target_class`` written for a poisoning that needs none is still checked.
    """
    try:
        rule = get_poisoning(sc["poisoning"])
    except UnknownNameError as exc:
        raise ScenarioError("poisoning", str(exc)) from None
    for key in ("dataset", "artifact"):
        try:
            REGISTRIES[f"{key}s"].check(sc[key])
        except UnknownNameError as exc:
            raise ScenarioError(key, str(exc)) from None
    frac = sc["fraction"]
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or math.isnan(frac) or not 0 <= frac <= 1:
        raise ScenarioError("fraction", f"{frac!r}; expected a share between 0 and 1 of the source-class training "
                                        "images to poison (the affected class; all-to-one: every non-target class; "
                                        "CH-20 is fraction = 0.2)")
    size = sc["image_size"]
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ScenarioError("image_size", f"{size!r}; expected an integer pixel size between {MIN_SIZE} and "
                                          f"{MAX_SIZE} (32..224 typical)")
    for key in ("n_train", "n_test"):
        n = sc[key]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ScenarioError(key, f"{n!r}; expected a positive number of images")
    artifact_options = _options(sc, "artifact")
    art = _build("artifact", sc["artifact"], artifact_options)
    ds = _build("dataset", sc["dataset"], _options(sc, "dataset"))
    checked = CheckedScenario(rule, art, ds, resolved_options(type(art), artifact_options), None, None, None)
    names_of = getattr(ds, "class_names", None)
    if callable(names_of):  # a plugin dataset without class_names: its classes are checked once it is loaded
        try:
            names = list(names_of())
        except (TypeError, ValueError, OSError) as exc:
            raise ScenarioError("dataset_options", str(exc)) from None
        checked.class_names = names
        checked.affected, checked.target = check_classes(sc, names, rule, written=written)
    return checked


def check_classes(sc: dict, names: list[str], rule: Poisoning, *,
                  written: Collection[str] | None = None) -> tuple[int, int | None]:
    """``(affected, target)`` class indices of ``sc`` in the dataset's ``names`` (``target`` None when the
    poisoning needs none); a :class:`ScenarioError` listing the classes otherwise."""
    affected = _class_index("affected_class", sc, names, written)
    if not rule.needs_target and (written is None or "target_class" not in written):
        return affected, None
    if rule.needs_target and sc["target_class"] is None:
        raise ScenarioError("target_class", f"poisoning {sc['poisoning']!r} needs target_class, the class "
                                            "poisoned images are relabelled to")
    target = _class_index("target_class", sc, names, written)
    if rule.needs_target and target == affected:
        raise ScenarioError("target_class", f"{names[target]!r} equals affected_class; poisoning {sc['poisoning']!r} "
                                            "relabels the poisoned images to another class: pick a different "
                                            "target_class")
    return affected, target if rule.needs_target else None


def _class_index(key: str, sc: dict, names: list[str], written: Collection[str] | None) -> int:
    """Index of a class given by name or index; the dataset's classes (and the closest name) otherwise."""
    value, dataset = sc[key], sc["dataset"]
    listed = ", ".join(map(repr, names))
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(names):
            return value
        raise ScenarioError(key, f"index {value} is out of range: dataset {dataset!r} has {len(names)} classes "
                                 f"({listed})")
    if not isinstance(value, str):
        raise ScenarioError(key, f"expected a class name or index, got {value!r}; classes: {listed}")
    if value in names:
        return names.index(value)
    given = f"{value!r} (the default)" if written is not None and key not in written else repr(value)
    close = [n for n in names if n.lower() == value.lower()] or difflib.get_close_matches(value, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ScenarioError(key, f"{given} is not a class of dataset {dataset!r}; classes: {listed}.{hint}")


def _options(sc: dict, kind: str) -> dict:
    options = sc[f"{kind}_options"]
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ScenarioError(f"{kind}_options", f"expected a table of options, got {options!r}")
    return options


def _build(kind: str, name: str, options: dict) -> Any:
    """The configured dataset or artifact: unknown options and bad values fail here, before any image."""
    cls = REGISTRIES[f"{kind}s"].get(name)
    try:
        check_options(cls, options, what=f"{kind} {name!r}")
    except OptionError as exc:
        raise ScenarioError(f"{kind}_options.{exc.key}", exc.reason) from None
    try:
        return cls(**options)
    except (TypeError, ValueError, OSError) as exc:
        raise ScenarioError(f"{kind}_options", str(exc)) from None
