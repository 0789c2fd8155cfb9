"""One writer per output format of the leaderboard page: each renders a
:class:`hansbench.bench.report.document.Document` and knows nothing else (``markdown``, ``latex``, ``html``);
``columns`` splits a wide table into parts, as LaTeX and HTML both need."""
