"""One Registry class for every pluggable kind, and plugin discovery.

Built-ins register with a decorator (``@explainers.register("prp")``); third-party
packages expose an entry point in the group ``hansbench.plugins`` whose target is a
module (importing it registers) or a callable taking no arguments. Unknown names fail
with the list of known names and the closest match, before any work starts.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any

PLUGIN_GROUP = "hansbench.plugins"


class UnknownNameError(KeyError):
    """A name that no registry entry carries; the message lists the known ones."""

    def __init__(self, kind: str, name: str, known: list[str]):
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        self.kind, self.name, self.known = kind, name, known
        msg = f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(known) or '(none)'}."
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class Registry:
    """A name -> object table for one kind of plugin (explainer, clusterer, ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def register(self, name: str, obj: Any = None, *, replace: bool = False) -> Callable:
        """Register ``obj`` under ``name``; usable as ``@registry.register("name")``."""

        def add(target: Any) -> Any:
            if name in self._entries and self._entries[name] is not target and not replace:
                raise ValueError(f"{self.kind} {name!r} is registered twice; pass replace=True to override")
            if isinstance(target, type):
                target.name = name
            self._entries[name] = target
            return target

        return add(obj) if obj is not None else add

    def get(self, name: str) -> Any:
        load_all()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, sorted(self._entries)) from None

    def check(self, name: str) -> None:
        """Raise :class:`UnknownNameError` unless ``name`` is registered."""
        self.get(name)

    def names(self) -> list[str]:
        load_all()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, Any]]:
        for name in self.names():
            yield name, self._entries[name]

    def describe(self, name: str) -> str:
        """The first line of the entry's docstring."""
        doc = (getattr(self.get(name), "__doc__", None) or "").strip()
        return doc.splitlines()[0] if doc else ""

    def __contains__(self, name: str) -> bool:
        load_all()
        return name in self._entries


explainers = Registry("explainer")
clusterers = Registry("clusterer")
metrics = Registry("metric")
datasets = Registry("dataset")
artifacts = Registry("artifact")

REGISTRIES = {
    "explainers": explainers,
    "clusterers": clusterers,
    "metrics": metrics,
    "datasets": datasets,
    "artifacts": artifacts,
}

_BUILTIN_MODULES = (
    "hansbench.datasets",
    "hansbench.methods.explainers",
    "hansbench.methods.clusterers",
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
