"""Content-hashed cache of every expensive step (CoRelAy style).

A key is the SHA-256 of a canonical JSON of everything that determines the output
(configuration, plugin version, seed, package version). Entries are written to a
temporary file and renamed, so an interrupted run never leaves a half-written entry.
Checkpoints are state dicts, loaded with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import hansbench


def _canonical(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return {"tensor_sha256": tensor_digest(obj)}
    if isinstance(obj, np.ndarray):
        return {"array_sha256": hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest(), "shape": obj.shape}
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def tensor_digest(t: torch.Tensor) -> str:
    t = t.detach().cpu().contiguous()
    h = hashlib.sha256(str((tuple(t.shape), str(t.dtype))).encode())
    h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def hash_key(parts: dict) -> str:
    """Stable hex key of a JSON-able description (tensors hashed by content)."""
    payload = {"hansbench": hansbench.__version__, **parts}
    text = json.dumps(_canonical(payload), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class Workspace:
    """The on-disk cache of one results directory (``<out>/cache``)."""

    def __init__(self, root: str | Path, device: torch.device | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.device = device or torch.device("cpu")
        self.hits = 0
        self.misses = 0

    def _path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.pt"

    def cached_module(
        self,
        key_parts: dict,
        build: Callable[[], nn.Module],
        init: Callable[[], nn.Module] | None = None,
    ) -> nn.Module:
        """The module ``build()`` trains, or its cached state dict loaded into ``init()``.

        ``init`` returns the untrained architecture; without it nothing can be loaded
        safely (no full pickles), so ``build`` runs every time.
        """
        key = hash_key(key_parts)
        path = self._path("modules", key)
        if path.is_file() and init is not None:
            module = init()
            module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            self.hits += 1
            return module.to(self.device).eval()
        self.misses += 1
        module = build()
        _atomic_save({k: v.detach().cpu() for k, v in module.state_dict().items()}, path)
        return module.to(self.device).eval()

    def cached_tensors(self, key_parts: dict, compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """A dict of tensors, computed once per key."""
        key = hash_key(key_parts)
        path = self._path("tensors", key)
        if path.is_file():
            self.hits += 1
            return torch.load(path, map_location="cpu", weights_only=True)
        self.misses += 1
        value = compute()
        _atomic_save({k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in value.items()}, path)
        return value
