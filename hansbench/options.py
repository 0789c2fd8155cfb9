"""Plugin options: the keyword arguments of a plugin's ``__init__`` (or factory), with their defaults.

Every plugin kind (explainer, clusterer, metric, dataset, artifact, backbone) declares its options
the same way: ``__init__`` keywords with defaults. The framework reads them from the signature, so a
plugin needs nothing beyond a normal ``__init__`` (no base-class call, no table of defaults).
:func:`check_options` is the one checker the suite loader and ``make_scenario`` use: an unknown option
fails before any work, naming the accepted ones and their defaults; :func:`resolved_options` is what an
instance runs with (the given options, defaults filled in) for run metadata and ``repr``.
"""

from __future__ import annotations

import inspect
from typing import Any

REQUIRED = inspect.Parameter.empty  # the "default" of an option without one


class OptionError(TypeError):
    """An option the plugin does not accept. ``key``: the option; the message lists the accepted ones
    with their defaults (a ``TypeError``, like Python's own for an unexpected keyword)."""

    def __init__(self, key: str, message: str):
        self.key, self.reason = key, message
        super().__init__(f"{key}: {message}")


def accepted_options(target: Any) -> dict[str, Any] | None:
    """Option name -> default (:data:`REQUIRED` if none) of a class's ``__init__`` or a factory's
    keywords; ``None`` when it takes ``**kwargs`` (it checks its own options when called)."""
    if isinstance(target, type):
        if target.__init__ is object.__init__:
            return {}
        params = list(inspect.signature(target.__init__).parameters.values())[1:]  # without self
    else:
        params = list(inspect.signature(target).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name: p.default for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def describe(accepted: dict[str, Any]) -> str:
    """``['size', 'colour'] (defaults: size=0.18, colour=(1, 1, 0))``, or ``no options``."""
    if not accepted:
        return "no options"
    shown = ", ".join(f"{k} required" if v is REQUIRED else f"{k}={v!r}" for k, v in accepted.items())
    return f"{list(accepted)} (defaults: {shown})"


def check_options(target: Any, options: dict, *, what: str) -> dict:
    """``options`` if ``target`` accepts every key; :class:`OptionError` naming the first unknown one,
    ``what`` (the plugin, e.g. ``artifact 'postit'``) and the accepted options otherwise."""
    accepted = accepted_options(target)
    if accepted is not None:
        for key in options:
            if key not in accepted:
                raise OptionError(key, f"unknown option; {what} accepts {describe(accepted)}")
        missing = [k for k, v in accepted.items() if v is REQUIRED and k not in options]
        if missing:
            raise OptionError(missing[0], f"required option missing; {what} accepts {describe(accepted)}")
    return options


def resolved_options(target: Any, options: dict | None = None) -> dict:
    """The options an instance of ``target`` runs with: ``options`` (checked) with the defaults of every
    option not given, in signature order (what run metadata records and ``repr`` shows)."""
    options = dict(options or {})
    accepted = accepted_options(target)
    if accepted is None:
        return options
    check_options(target, options, what=getattr(target, "__name__", repr(target)))
    return {k: options.get(k, v) for k, v in accepted.items()}


def options_of(obj: Any) -> dict:
    """An instance's options read back by scikit-learn's convention (each ``__init__`` keyword stored as
    the attribute of the same name; the default where it is not)."""
    return {k: getattr(obj, k, v) for k, v in (accepted_options(type(obj)) or {}).items()}
