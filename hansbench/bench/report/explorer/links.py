"""Where the explorer's pages are, by name: the one rule the leaderboard's links and the writer share.

A page is one (scenario, model kind, seed); a detector (source x clusterer) is picked by the URL's fragment,
``#a=<detector id>`` (``&b=<id>`` adds a second one to compare). Every piece is a :func:`~hansbench.bench.names.slug`,
so a hostile name cannot leave the folder or open markup.
"""

from __future__ import annotations

from hansbench.bench.names import slug

EXPLORER_DIR = "explorer"  # the folder beside the leaderboard
INDEX = "index.html"
SEPARATOR = "~"  # between a detector id's source and clusterer: never in a slug, so the id is unambiguous


def page_path(scenario: str, model: str, seed: int) -> str:
    """The page of one (scenario, model kind, seed), relative to the explorer folder."""
    return f"{slug(scenario)}/{slug(model)}-seed-{int(seed)}.html"


def detector_id(source: str, clusterer: str) -> str:
    """A detector's id on its page (the fragment's value): ``<source>~<clusterer>``, each slugged."""
    return f"{slug(source)}{SEPARATOR}{slug(clusterer)}"


def explorer_href(scenario: str, model: str, seed: int, source: str, clusterer: str) -> str:
    """The link from the leaderboard (beside the explorer folder) to one detector's view on one seed."""
    return f"{EXPLORER_DIR}/{page_path(scenario, model, seed)}#a={detector_id(source, clusterer)}"
