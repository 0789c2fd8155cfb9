"""The verdicts step: a scenario's per-seed rows -> typed results (grids, comparisons, ranks, detection verdicts).

Every number a table or the summary shows is computed here, once, from the rows, by the statistics of
:mod:`hansbench.bench.report.stats` into the records of :mod:`hansbench.bench.report.results`; the table modules
(:mod:`~hansbench.bench.report.tables`, :mod:`~hansbench.bench.report.ranking_tables`,
:mod:`~hansbench.bench.report.detection_tables`, :mod:`~hansbench.bench.report.controls`,
:mod:`~hansbench.bench.report.summary`) call this step and only format its records
(tests/bench/report/test_verdicts_apart.py keeps them from calling a statistic themselves). One module per shape:
:mod:`.stages` (stages and model tables), :mod:`.explainers` (the ranking tables), :mod:`.detection` (detection
tables and the detection rows and values), :mod:`.controls` (the detection controls), :mod:`.summary` (the
detection verdict that opens the page); :mod:`.common` holds what they share.
"""
