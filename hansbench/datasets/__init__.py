"""Built-ins register on import."""

from hansbench._autoload import import_submodules

import_submodules(__name__, __path__)
