"""The cluster explorer (issue 32): per scenario x model kind x seed one static page that shows what every detector
grouped, from the run's own cache; written beside the leaderboard, opened with ``hansbench explore``.

:mod:`.links` names the pages (the leaderboard links into them), :mod:`.slots` finds the nodes a page shows,
:mod:`.views` turns their cached outputs into the page's data, :mod:`.sprites` writes the images,
:mod:`.page` and :mod:`.script` the HTML, and :mod:`.write` puts it together.
"""

from hansbench.bench.report.explorer.links import EXPLORER_DIR, explorer_href

__all__ = ["EXPLORER_DIR", "explorer_href"]
