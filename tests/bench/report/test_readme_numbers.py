"""The README's numbers come from the published tables (tools/readme_numbers.py): the real README's marked numbers
match their CSVs, and a drifted number is caught and, with --fix, rewritten."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("readme_numbers", ROOT / "tools" / "readme_numbers.py")
readme_numbers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(readme_numbers)


def test_the_readme_marks_its_headline_numbers_and_each_matches_its_table():
    if not (ROOT / "results" / "seeds").is_dir():
        pytest.skip("no published results/seeds here")
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme_numbers.MARKER.findall(text)) >= 10
    assert readme_numbers.check(text, ROOT)[1] == []


def readme(tmp_path, number: str) -> Path:
    (tmp_path / "t.csv").write_text("model,explainer,metric,mean,ci_low,ci_high\nc,a,f1,0.9661,0.9330,0.9986\n"
                                    "c,b,f1,0.5,0.4,0.6\n")
    path = tmp_path / "README.md"
    path.write_text(f"a scores <!-- num: t.csv | model=c explainer=a metric=f1 | mean .3f -->{number} ± "
                    "<!-- num: t.csv | explainer=a | ci_half .3f -->0.033 here\n")
    return path


def test_a_drifted_number_fails_and_fix_rewrites_it(tmp_path, capsys):
    good = readme(tmp_path, "0.966")
    assert readme_numbers.main([str(good), "--root", str(tmp_path)]) == 0
    bad = readme(tmp_path, "0.997")
    assert readme_numbers.main([str(bad), "--root", str(tmp_path)]) == 1
    assert "0.997 but t.csv says 0.966" in capsys.readouterr().err
    assert readme_numbers.main([str(bad), "--root", str(tmp_path), "--fix"]) == 0
    assert "-->0.966 ± " in bad.read_text() and readme_numbers.main([str(bad), "--root", str(tmp_path)]) == 0


def test_a_marker_that_picks_no_row_or_several_is_an_error(tmp_path):
    text = "<!-- num: t.csv | model=c | mean .3f -->0.5 and <!-- num: t.csv | explainer=z | mean .3f -->0.5"
    readme(tmp_path, "0.966")
    _, problems = readme_numbers.check(text, tmp_path)
    assert [p.split(": ", 1)[1][:22] for p in problems] == ["'model=c' picks 2 rows", "'explainer=z' picks 0 "]
