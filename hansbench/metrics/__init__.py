"""Metrics; importing this package registers the built-ins."""

from hansbench._autoload import import_submodules

import_submodules(__name__, __path__)
