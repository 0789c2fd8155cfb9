"""Flagging rules: how a detector's split becomes a flagged set without labels (PAPERS.md §9).

Built-ins register on import (``hansbench.registry.flagging_rules``); the contract is in :mod:`.base`.
"""

from hansbench._autoload import import_submodules

import_submodules(__name__, __path__)
