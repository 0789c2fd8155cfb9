"""The strip of dots a bimodal cell is drawn as: one dot per seed at its value's place on the range, the mean
marked, the values in the title; escaped and script-free whatever the unit says."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from hansbench.bench.report.figures.strip import PAD, WIDTH, cell_strip_svg, strip_svg
from hansbench.bench.report.results import seed_cell

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str):
    root = ET.fromstring(svg)  # well-formed XML or it raises
    circles = [float(c.get("cx")) for c in root.iter(f"{SVG}circle") if c.get("class") == "seed"]
    means = [float(m.get("x1")) for m in root.iter(f"{SVG}line") if m.get("class") == "mean"]
    return root, circles, means


def _x(v, lo, hi):  # independent of the module: the dot's pixel, the range's ends PAD px inside the box
    return PAD + (v - lo) / (hi - lo) * (WIDTH - 2 * PAD)


def test_a_bimodal_cell_gives_one_dot_per_seed_at_its_value_and_the_mean_marked():
    values = [0.0, 1.0, 0.02, 0.98, 0.97]  # hit or miss: F1 per seed
    cell = seed_cell(pd.Series(values, index=[0, 1, 2, 3, 4]), bounds=(0.0, 1.0))
    assert cell.split  # the results step decided it: k of n, no interval
    root, circles, means = _parse(cell_strip_svg(cell))
    assert root.get("width") == str(WIDTH) and int(root.get("height")) <= 20  # sits in a table cell
    assert circles == pytest.approx([_x(v, 0, 1) for v in values], abs=0.01)
    assert means == pytest.approx([_x(sum(values) / 5, 0, 1)], abs=0.01)
    title = root.find(f"{SVG}title").text
    assert title.startswith("5 seeds: 0, 1, 0.0200, 0.980, 0.970;") and "range 0 to 1" in title
    assert root.get("aria-label") == title and root.get("role") == "img"
    # a cell with an interval gets no strip: the renderer can call it on every cell
    assert cell_strip_svg(seed_cell(pd.Series([0.5, 0.52, 0.55]), bounds=(0.0, 1.0))) == ""


def test_a_signed_range_places_its_dots_from_its_low_end():
    _, circles, _ = _parse(strip_svg([-1.0, -0.9, 0.9], -1.0, 1.0))  # e.g. ARI in [-1, 1]
    assert circles == pytest.approx([_x(-1, -1, 1), _x(-0.9, -1, 1), _x(0.9, -1, 1)], abs=0.01)
    assert circles[0] == pytest.approx(PAD) and circles[2] < WIDTH - PAD


@pytest.mark.parametrize("unit", ["</title><script>alert(1)</script>", "' onload='alert(1)", "a & b \" <c>"])
def test_a_hostile_unit_is_text_never_markup(unit):
    svg = strip_svg([0.0, 100.0, 95.0], 0.0, 100.0, unit=unit, level=50.0)
    root, circles, _ = _parse(svg)
    assert "<script" not in svg and "onload=" not in svg.replace("onload=&#x27;", "")
    assert not list(root.iter(f"{SVG}script")) and len(circles) == 3
    assert root.get("onload") is None and unit in root.find(f"{SVG}title").text  # shown as written
    assert root.get("aria-label") == root.find(f"{SVG}title").text


@pytest.mark.parametrize("values, lo, hi, what", [([0.5], 1.0, 1.0, "finite range lo < hi"),
                                                  ([], 0.0, 1.0, "at least one finite value"),
                                                  ([0.5, 1.2], 0.0, 1.0, "outside the range")])
def test_bad_input_is_named(values, lo, hi, what):
    with pytest.raises(ValueError, match=what):
        strip_svg(values, lo, hi)
