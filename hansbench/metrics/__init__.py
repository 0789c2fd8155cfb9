"""Metrics; importing this package registers the built-ins. ``memo_counts``: how much work the metrics' memos
served again (the runner's shared-work line reads it from here, not from the private module)."""

from hansbench._autoload import import_submodules
from hansbench.metrics._memo import memo_counts

__all__ = ["memo_counts"]

import_submodules(__name__, __path__)
