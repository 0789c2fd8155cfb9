"""The cluster explorer in a real browser (issue 32): headless Chromium, driven by Selenium, opens a view of the
smoke run, clicks a point and a cluster, compares two detectors, and checks what appears.

Skipped, with the reason, where Selenium, Chromium or its driver is absent (``pip install selenium``; Debian:
``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import shutil

import pytest

from hansbench.bench.report.explorer import links
from tests.bench import test_explorer as shared
from tests.bench.test_explorer import page_json, pages

smoke_run = shared.smoke_run  # the one run of the hostile smoke suite, a module fixture here too

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(BROWSER is None or DRIVER is None,
                                reason="no Chromium or chromedriver on PATH (Debian: apt-get install chromium "
                                       "chromium-driver)")


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        opts.add_argument(arg)
    opts.binary_location = BROWSER
    driver = webdriver.Chrome(options=opts, service=Service(DRIVER))  # the local driver: no download
    yield driver
    driver.quit()


def _open(browser, path, fragment: str):
    browser.get(path.resolve().as_uri() + fragment)
    browser.find_element("css selector", "svg.emb circle")  # rendered
    return page_json(path)


def _free_point(browser, svg: int = 0, poisoned: list | None = None) -> int:
    """A point of the ``svg``-th embedding that no other point covers (``poisoned``: only among these flags)."""
    return browser.execute_script("""
        var svg = document.querySelectorAll('svg.emb')[arguments[0]], want = arguments[1];
        var cs = svg.querySelectorAll('circle[data-i]');
        for (var k = 0; k < cs.length; k++) {
          var r = cs[k].getBoundingClientRect(), i = +cs[k].getAttribute('data-i');
          if (want && !want[i]) { continue; }
          if (document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === cs[k]) { return i; }
        }
        return null;""", svg, poisoned)


def _css(browser, selector):
    return browser.find_elements("css selector", selector)


def test_clicking_a_point_shows_its_image_and_what_each_rule_said(browser, smoke_run):
    path = next(p for p in pages(smoke_run) if "protopnet" in p.name)
    d = _open(browser, path, "")
    det = d["detectors"][0]
    i = _free_point(browser)
    fills = browser.execute_script("return Array.from(document.querySelectorAll('svg.emb circle[data-i]'))"
                                   ".map(function (c) { return [+c.getAttribute('data-i'), c.getAttribute('fill')]; })")
    color = {c["label"]: c["color"].lower() for c in det["clusters"]}
    assert {k: f.lower() for k, f in fills} == {k: color[lab] for k, lab in enumerate(det["labels"])}, \
        "every point is coloured by its cluster"
    circle = browser.find_element("css selector", f"svg.emb circle[data-i='{i}']")
    circle.click()
    browser.find_element("tag name", "h1").click()  # move away: a clicked point stays shown
    text = browser.find_element("id", "detail").text
    assert f"training image {d['index'][i]}" in text
    assert ("poisoned" if d["poisoned"][i] else "clean") in text
    assert f"cluster {det['labels'][i]}" in text
    for r in det["rules"]:
        said = "abstained" if r["abstained"] else "flagged" if i in r["flagged"] else "not flagged"
        assert f"{r['rule']}: {said}" in text
    tiles = _css(browser, "#detail .tile")
    assert len(tiles) == 1 + bool(d["sources"][det["source"]]["maps"]), "the image and its map"
    assert "sprites/img-" in tiles[0].value_of_css_property("background-image")
    src = d["sources"][det["source"]]
    if src["maps"]:
        scale = src["scales"][i]
        assert ("±" + scale if scale != "0" else "±0 (all zero)") in text, "the map's scale, as explain states it"
        assert tiles[1].size["width"] >= 8 * src["maps"]["w"], "a map tile of map_size pixels shown enlarged"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"the page logged errors: {errors}"


def test_clicking_a_cluster_shows_only_its_points_and_its_rules(browser, smoke_run):
    path = pages(smoke_run)[0]
    d = _open(browser, path, "")
    det = d["detectors"][0]
    c = det["clusters"][0]
    browser.find_element("css selector", f".cluster[data-label='{c['label']}'] .head").click()
    card = browser.find_element("css selector", f".cluster[data-label='{c['label']}']")
    assert "sel" in card.get_attribute("class")
    assert len(_css(browser, "svg.emb circle.dim")) == len(det["labels"]) - c["size"], "the others dimmed"
    assert len(card.find_elements("css selector", ".typ")) == len(c["typical"])
    rows = card.find_elements("css selector", "table.rules tr")
    assert [r.find_elements("tag name", "td")[1].text for r in rows] == [x["decision"] for x in c["rules"]]


def test_truth_colours_and_two_detectors_highlight_the_same_image(browser, smoke_run):
    path = next(p for p in pages(smoke_run) if "protopnet" in p.name)
    d = page_json(path)
    a, b = d["detectors"][0]["id"], d["detectors"][-1]["id"]
    _open(browser, path, f"#a={a}&b={b}&color=truth")
    svgs = _css(browser, "svg.emb")
    assert [s.get_attribute("data-detector") for s in svgs] == [a, b]
    i = _free_point(browser, 0, d["poisoned"])
    point = svgs[0].find_element("css selector", f"circle[data-i='{i}']")
    assert point.get_attribute("fill").lower() == d["truth_colors"]["poisoned"].lower()
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).move_to_element(point).perform()
    lit = [s.find_element("css selector", "circle.hl").get_attribute("data-i") for s in svgs]
    assert lit == [str(i), str(i)], "the same image is highlighted in both embeddings"
    assert len(_css(browser, "svg.emb circle.ring[visibility='visible']")) == 2
    back = browser.find_element("link text", "← leaderboard")
    assert back.get_attribute("href").endswith("/leaderboard.html")


def test_the_index_links_every_page(browser, smoke_run):
    browser.get((smoke_run / links.EXPLORER_DIR / links.INDEX).resolve().as_uri())
    hrefs = {a.get_attribute("href").split("#")[0] for a in _css(browser, "table.index a")}
    assert hrefs == {p.resolve().as_uri() for p in pages(smoke_run)}
