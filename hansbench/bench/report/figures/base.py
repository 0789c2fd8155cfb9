"""The figure record every figure module returns, and what they share (docs/figures.md says what each figure
shows and how to read it).

Every figure is a PNG at :data:`hansbench.bench.report.figures.styles.DPI` with an SVG twin beside it
(:func:`~hansbench.bench.report.figures.styles.save`), sized for a page (<= 7 in wide, text >= 7 pt at print
size); a method has one colour and marker everywhere (:mod:`hansbench.bench.report.figures.styles`). The
figures: :mod:`.curves` (ordering curves, from the rows), :mod:`.maps` (map panels and the gallery),
:mod:`.session` (from the run's cache), :mod:`.sweep` (a sweep axis), :mod:`.cd_diagram` (rankings).
"""

from __future__ import annotations

from dataclasses import dataclass

from hansbench.bench.report.figures.styles import vector_twin


@dataclass
class Figure:
    """A figure file in the results directory, the scenario it belongs to, what it shows, and its
    vector twin (same figure as SVG; '' when none was written)."""

    scenario: str
    file: str
    caption: str
    vector: str = ""


def new_figure(scenario: str, name: str, caption: str) -> Figure:
    """A drawn figure of ``scenario`` with its vector twin's name."""
    return Figure(str(scenario), name, caption, vector_twin(name))


def seed_text(seeds) -> str:
    from hansbench.bench.suite.seeds import seed_list

    seeds = sorted({int(s) for s in seeds})
    return f"seed{'s' if len(seeds) > 1 else ''} {seed_list(seeds)}"
