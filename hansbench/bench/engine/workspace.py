"""The cache of one results directory (``<out>/cache``), as nodes and plugins see it.

Entries are stored in the verified format of :mod:`hansbench.bench.engine.cache`; here a
corrupt entry is logged with its path, removed and treated as a miss (self-healing), and
plugins get helpers to cache their own auxiliary work (e.g. ClaDec's decoders) by key.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hansbench.bench.engine.cache import CorruptEntry, entry_path, read_entry, write_entry
from hansbench.bench.engine.keys import hash_key


class Workspace:
    """The cache of one results directory (``<out>/cache``)."""

    def __init__(self, root: str | Path, device: torch.device | None = None,
                 log: Callable[[str], None] | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.device = device or torch.device("cpu")
        self.log = log or (lambda msg: None)
        self.healed: list[Path] = []

    def path(self, kind: str, key: str) -> Path:
        """The file of entry ``key`` of ``kind`` (``<root>/<kind>/<key>.pt``)."""
        return entry_path(self.root, kind, key)

    def has(self, kind: str, key: str) -> bool:
        """Whether an entry exists (not whether it is readable: :meth:`load` checks that)."""
        return self.path(kind, key).is_file()

    def save(self, kind: str, key: str, value: Any) -> None:
        """Write ``value`` atomically, with the SHA-256 of its payload in the header."""
        write_entry(self.path(kind, key), value)

    def load(self, kind: str, key: str) -> Any | None:
        """The entry, or ``None`` on a miss; a corrupt entry is logged, removed and treated as a miss."""
        path = self.path(kind, key)
        if not path.is_file():
            return None
        try:
            value = read_entry(path)
        except CorruptEntry as exc:
            self.log(f"cache entry {path} is corrupt ({exc}); recomputing it")
            self.healed.append(path)
            try:
                path.unlink()
            except OSError:
                pass
            return None
        return value

    def cached(self, kind: str, key: str, compute: Callable[[], Any]) -> Any:
        """The entry, or ``compute()`` saved under ``key`` on a miss."""
        value = self.load(kind, key)
        if value is None:
            value = compute()
            self.save(kind, key, value)
        return value

    # -- helpers for plugins that cache their own auxiliary work (e.g. ClaDec's decoders) ----------
    def cached_module(self, key_parts: dict, build: Callable[[], nn.Module],
                      init: Callable[[], nn.Module] | None = None) -> nn.Module:
        """The module ``build()`` trains, or its cached state dict loaded into ``init()``.

        ``init`` returns the untrained architecture; without it nothing can be loaded
        safely (no full pickles), so ``build`` runs every time.
        """
        key = hash_key(key_parts)
        state = self.load("modules", key) if init is not None else None
        if state is not None:
            module = init()
            module.load_state_dict(state)
            return module.to(self.device).eval()
        module = build()
        self.save("modules", key, module.state_dict())
        return module.to(self.device).eval()

    def cached_tensors(self, key_parts: dict, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A dict of tensors (and plain values), computed once per key."""
        return self.cached("tensors", hash_key(key_parts), compute)
