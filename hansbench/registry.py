"""One Registry class for every pluggable kind, and plugin discovery.

Every kind has its registry here: explainers, clusterers, clusterer input kinds, metrics,
datasets, artifacts, poisonings, model kinds and backbones. Built-ins register with a decorator
(``@explainers.register("prp")``); third-party
packages expose an entry point in the group ``hansbench.plugins`` whose target is a
module (importing it registers) or a callable taking no arguments. Unknown names fail
with the list of known names and the closest match, before any work starts.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from typing import Any

PLUGIN_GROUP = "hansbench.plugins"
# Names that work everywhere a name goes: suite keys, file names, table cells, command lines.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._+-]{0,63}")
NAME_RULE = ("lowercase letters, digits and . _ + - only, starting with a letter or digit, at most 64 characters "
             "(e.g. 'my-method')")


# Poisonings keep the upper-case names of the papers' scenarios (CH-50, BD-15).
UPPER_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
UPPER_NAME_RULE = NAME_RULE.replace("lowercase letters", "letters").replace("'my-method'", "'CH', 'label-flip'")


def check_name(kind: str, name: Any, pattern: re.Pattern = NAME_PATTERN, rule: str = NAME_RULE) -> str:
    """``name`` if it matches ``pattern``; a ``ValueError`` saying the rule otherwise."""
    if not isinstance(name, str) or not pattern.fullmatch(name):
        raise ValueError(f"invalid {kind} name {name!r}: use {rule}")
    return name


class UnknownNameError(KeyError, ValueError):
    """A name that no registry entry carries; the message lists the known ones.

    A ``KeyError`` (a failed lookup) and a ``ValueError`` (a bad setting), so code validating
    settings catches it with the other bad values.
    """

    def __init__(self, kind: str, name: str, known: list[str], broken: dict[str, str] | None = None):
        close = [k for k in known if k.lower() == str(name).lower()] or difflib.get_close_matches(str(name), known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        self.kind, self.name, self.known = kind, name, known
        broken = {n: " ".join(str(e).split()) for n, e in (broken or {}).items()}  # one line each
        known_list = f"Known {kind}s: {', '.join(known) or '(none)'}."
        if name in broken:  # the name is a plugin's entry point that failed to load: say why first
            msg = f"unknown {kind} {name!r} (the plugin {name!r} failed to load: {broken[name]}).{hint} {known_list}"
        else:
            msg = f"unknown {kind} {name!r}.{hint} {known_list}"
            if broken:  # its entry point may carry another name than the one it registers
                msg += " Plugins that failed to load: " + "; ".join(f"{n!r} ({e})" for n, e in broken.items()) + "."
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class Registry:
    """A name -> object table for one kind of plugin (explainer, clusterer, ...).

    ``kind`` is the singular noun used in messages; names must match ``pattern``.

    Parameters
    ----------
    kind : str
        The singular noun in messages ("explainer", "model kind").
    pattern : re.Pattern, default NAME_PATTERN
        What a name must match in full.
    rule : str, default NAME_RULE
        The pattern in words, for the error message.
    validator : str, default ""
        The name of a method every entry provides to validate itself as it registers: ``entry.<validator>(name)``
        raises, in one line, when the entry is unfit (nothing is registered then). "" = no check.
    interface : str, default ""
        What an entry without that method should subclass, for the error message (e.g.
        ``"hansbench.metrics.base.Metric"``).

    Examples
    --------
    >>> reg = Registry("widget")
    >>> @reg.register("round")
    ... class Round:
    ...     "A round widget."
    >>> reg.get("round") is Round, Round.name, reg.describe("round")
    (True, 'round', 'A round widget.')
    >>> reg.get("rnd")
    Traceback (most recent call last):
    ...
    hansbench.registry.UnknownNameError: unknown widget 'rnd'. Did you mean 'round'? Known widgets: round.

    Lookups (:meth:`get`, :meth:`names`, ``in``) first import the built-ins and every installed
    plugin (:func:`load_all`), so a plugin's names are there without an import of its own.
    """

    def __init__(self, kind: str, *, pattern: re.Pattern = NAME_PATTERN, rule: str = NAME_RULE,
                 validator: str = "", interface: str = ""):
        self.kind = kind
        self.pattern, self.rule = pattern, rule
        # The entries own their validation (``entry.<validator>(name)``), so this module imports nothing of the
        # kinds it registers.
        self.validator, self.interface = validator, interface or f"{kind} class"
        self._entries: dict[str, Any] = {}

    def register(self, name: str, obj: Any = None, *, replace: bool = False) -> Callable:
        """Register ``obj`` under ``name``; usable as ``@registry.register("name")``.

        ``name`` must match the registry's pattern (:data:`NAME_PATTERN` unless given).

        Parameters
        ----------
        name : str
            The name suites, tables and ``hansbench list`` use.
        obj : object, optional
            What to register; omitted, the method returns a decorator.
        replace : bool, default False
            Allow replacing another object registered under ``name``.

        Returns
        -------
        object or callable
            ``obj`` (a class also gets ``cls.name = name``), or the decorator.

        Raises
        ------
        ValueError
            ``name`` breaks the naming rule, or is taken by another object and ``replace`` is False, or
            the entry's own ``validator`` method refuses it (a metric's declarations: ``Metric.check_declarations``).
        TypeError
            The registry names a ``validator`` and the object lacks it (it is not a subclass of ``interface``).
        """
        check_name(self.kind, name, self.pattern, self.rule)

        def add(target: Any) -> Any:
            if name in self._entries and self._entries[name] is not target and not replace:
                raise ValueError(f"{self.kind} {name!r} is registered twice; pass replace=True to override")
            if isinstance(target, type):
                target.name = name
            if self.validator:
                self._validate(name, target)
            self._entries[name] = target
            return target

        return add(obj) if obj is not None else add

    def _validate(self, name: str, target: Any) -> None:
        """Run the entry's own validation (``target.<validator>(name)``); refuse an object that has none."""
        validate = getattr(target, self.validator, None)
        if not callable(validate):
            raise TypeError(f"{self.kind} {name!r}: {target!r} is not a subclass of {self.interface} (it has no "
                            f"{self.validator}); subclass it")
        validate(name)

    def get(self, name: str) -> Any:
        """The object registered under ``name`` (plugins loaded first).

        Parameters
        ----------
        name : str
            A registered name.

        Returns
        -------
        object
            The registered class (or factory function, for backbones).

        Raises
        ------
        UnknownNameError
            No entry has that name; the message lists the known names, the closest match and any
            plugin that failed to load.
        """
        load_all()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, sorted(self._entries), dict(plugin_errors)) from None

    def check(self, name: str) -> None:
        """Raise :class:`UnknownNameError` unless ``name`` is registered."""
        self.get(name)

    def names(self) -> list[str]:
        """Every registered name, sorted (plugins included)."""
        load_all()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, Any]]:
        """``(name, object)`` pairs, sorted by name (plugins included)."""
        for name in self.names():
            yield name, self._entries[name]

    def describe(self, name: str) -> str:
        """The first line of the entry's docstring."""
        doc = (getattr(self.get(name), "__doc__", None) or "").strip()
        return doc.splitlines()[0] if doc else ""

    def unregister(self, name: str) -> None:
        """Remove ``name`` if registered (tests and plugins that register something for a while; no error when
        it is absent)."""
        self._entries.pop(name, None)

    @contextmanager
    def scratch(self) -> Iterator[Registry]:
        """Within the block, registrations (and removals) are this block's own: on exit the entries are exactly
        what they were before (what a test registers never leaks into the next test)."""
        saved = dict(self._entries)
        try:
            yield self
        finally:
            self._entries.clear()
            self._entries.update(saved)

    def __contains__(self, name: str) -> bool:
        load_all()
        return name in self._entries


explainers = Registry("explainer")
clusterers = Registry("clusterer")
clusterer_inputs = Registry("clusterer input")  # what a clusterer clusters: maps, activations, pixels, ...
# A metric validates its values and presentation as it registers (``Metric.check_declarations``), not when tables
# are built; named here as text, so the registry imports nothing of the metrics.
metrics = Registry("metric", validator="check_declarations", interface="hansbench.metrics.base.Metric")
datasets = Registry("dataset")
artifacts = Registry("artifact")
poisonings = Registry("poisoning", pattern=UPPER_NAME_PATTERN, rule=UPPER_NAME_RULE)
model_kinds = Registry("model kind")
backbones = Registry("backbone")
# How a detector's split becomes a flagged set without labels (smaller cluster, relative size, score budgets, ...)
flagging_rules = Registry("flagging rule")

# The key is the name in ``hansbench list <key>``; where a suite has a section or filter key of that
# name (``[explainers]``, ``[models.<kind>]``, ``models = [...]``) it is this registry's.
REGISTRIES = {
    "explainers": explainers,
    "clusterers": clusterers,
    "inputs": clusterer_inputs,
    "metrics": metrics,
    "datasets": datasets,
    "artifacts": artifacts,
    "poisonings": poisonings,
    "models": model_kinds,
    "backbones": backbones,
    "flagging": flagging_rules,
}

_BUILTIN_MODULES = (
    "hansbench.datasets",
    "hansbench.models.backbones",
    "hansbench.models.kinds",
    "hansbench.methods.explainers",
    "hansbench.methods.inputs",
    "hansbench.methods.clusterers",
    "hansbench.methods.flagging",
    "hansbench.metrics",
)
_loaded = False
plugin_errors: dict[str, str] = {}


def load_all() -> None:
    """Import the built-ins and every installed plugin, once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            target = ep.load()
            if callable(target) and not isinstance(target, type):
                target()
        except Exception as exc:  # a broken plugin must not take the harness down
            plugin_errors[ep.name] = f"{type(exc).__name__}: {exc}"


def reset_for_tests() -> None:
    """Forget that plugins were loaded, so a test can fake a new entry point."""
    global _loaded
    _loaded = False
