"""Work the intervention metrics repeat on the same model object, done once per process.

Every metric node of one (scenario, seed, model) gets the same model object from the node
environment's memo, and several of them ask it the same thing: its logits on a test split
(reliance, model accuracy, each data-cleaning node's "before", each pruning node's "before"),
or the same pruned-and-retrained copy (two explainers that blame the same prototype). Both
are deterministic functions of the model's weights, so they are computed once and served
again (measured in PERFORMANCE.md: the rows stay identical).

An entry is keyed by the model's identity *and* the version counter and storage of every
parameter and buffer, so a model changed in place (last-layer retraining, ``p.data = ...``)
never hits a stale entry; models and image tensors are held weakly (an entry is dropped when
its model is freed), so an id that Python reuses for a new object never hits either. State kept
in a plain attribute (not a parameter or buffer), or edited through ``p.data``, is not seen: a
metric that changes such state must change a copy, as pruning and retraining do. No library
offers a version-checked memo on module identity (``functools.lru_cache`` would hold the model
alive and miss in-place edits).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from itertools import chain
from typing import Any

import torch
from torch import nn


def _tensors(obj: nn.Module | torch.Tensor) -> list[torch.Tensor]:
    return [obj] if isinstance(obj, torch.Tensor) else list(chain(obj.parameters(), obj.buffers()))


def state_version(obj: nn.Module | torch.Tensor) -> tuple:
    """What changes when ``obj``'s values change: (storage, version, shape, dtype, device) of each tensor it holds.

    An entry also keeps a detached alias of every such tensor (:meth:`IdentityMemo.get`): it shares the
    version counter and keeps the storage alive, so a ``p.data = new`` can never land on the old address
    and pass for the old state. Edits through ``p.data`` itself (``p.data.add_(1)``) bump no counter and
    are not seen: change a copy, or write ``with torch.no_grad(): p.add_(1)``.
    """
    return tuple((t.data_ptr(), t._version, tuple(t.shape), t.dtype, str(t.device)) for t in _tensors(obj))


class IdentityMemo:
    """Values computed from live objects (a model, an image tensor), served while those objects are unchanged.

    ``get(objects, key, compute)`` returns ``compute()`` the first time and the stored value after,
    as long as every object in ``objects`` is the same live object with the same
    :func:`state_version`. At most ``size`` entries (least recently used dropped).
    """

    def __init__(self, size: int = 64):
        self.size = size
        # slot -> (weak refs to the objects, their state versions, aliases of their tensors, value)
        self._entries: OrderedDict[tuple, tuple[list[weakref.ref], tuple, list, Any]] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, objects: tuple, key: Hashable, compute: Callable[[], Any]) -> Any:
        slot = (tuple(id(o) for o in objects), key)
        versions = tuple(state_version(o) for o in objects)
        entry = self._entries.get(slot)
        if entry is not None:
            refs, stored_versions, _, value = entry
            if all(r() is o for r, o in zip(refs, objects)) and stored_versions == versions:
                self._entries.move_to_end(slot)
                self.hits += 1
                return value
        self.misses += 1
        value = compute()
        refs = [weakref.ref(o, self._dropper(slot)) for o in objects]  # an entry goes when one of its objects does
        aliases = [t.detach() for o in objects for t in _tensors(o)]
        self._entries[slot] = (refs, versions, aliases, value)
        self._entries.move_to_end(slot)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value

    def _dropper(self, slot: tuple) -> Callable[[weakref.ref], None]:
        def drop(ref: weakref.ref) -> None:
            entry = self._entries.get(slot)
            if entry is not None and any(r is ref for r in entry[0]):  # not a newer entry on a reused id
                del self._entries[slot]
        return drop

    def clear(self) -> None:
        self._entries.clear()
        self.hits = self.misses = 0


LOGITS = IdentityMemo(64)  # (model, images) -> logits [N, K] on the CPU: ~5 KB each here
RETRAINED = IdentityMemo(8)  # (model,) + intervention -> the changed model (a ProtoPNet copy: a few MB)


def memo_counts() -> dict[str, int]:
    """How often this process's memos served a value again (the run's summary prints them)."""
    return {"logits served again": LOGITS.hits, "logits computed": LOGITS.misses,
            "interventions served again": RETRAINED.hits, "interventions computed": RETRAINED.misses}
