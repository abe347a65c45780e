"""The catalog report in a real headless Chromium: seven charts drawn, no console errors, the year slider
and the hover highlight work under real mouse events. Screenshots are kept in the test's tmp folder.

Needs Debian's `chromium` (.ci/run installs it); skipped with a reason when it is not on PATH.
"""
import os
import shutil

import pandas as pd
import pytest

from conftest import require_real
from support.chromium import Chromium, find_chromium
from mediaml.tasks.catalog.task import FIGURES, CatalogTask
from mediaml.tracking.tracker import Tracker

RENDERED = "document.body && (document.body.dataset.rendered || document.body.dataset.renderError)"
RED, DARK = "#E50914", "#221F1F"


@pytest.fixture(params=["synthetic_catalog", "netflix"])
def report(request, make_cfg, tmp_path):
    if not find_chromium():
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does)")
    overrides = ["task=catalog", "logger=none", "task.export_static=false", f"dataset={request.param}"]
    if request.param == "netflix":
        require_real("netflix/netflix_titles.csv")
    out = tmp_path / "run"
    CatalogTask(make_cfg(overrides)).run(Tracker(out))
    return out / "artifacts"


def center(browser, selector: str, index: int = 0) -> tuple[float, float]:
    """Scroll the element into view and return its centre in viewport coordinates."""
    return tuple(browser.eval(
        f"(() => {{ const e = document.querySelectorAll({selector!r})[{index}]; e.scrollIntoView({{block: 'center'}});"
        f" const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"))


def test_report_renders_and_reacts_in_chromium(report, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with Chromium(log_path=tmp_path / "chromium.log") as b:
        b.open((report / "catalog_report.html").as_uri())
        assert b.wait_for(RENDERED) == "7", b.eval("document.body.dataset.renderError")
        # Seven vega-embed SVGs, one per figure, each with drawn marks.
        ids = b.eval("Array.from(document.querySelectorAll('.vega-embed')).map(e => e.id)")
        assert ids == list(FIGURES)
        marks = b.eval("Array.from(document.querySelectorAll('.vega-embed svg.marks'))"
                       ".map(s => s.querySelectorAll('g.role-mark path').length)")
        assert len(marks) == 7 and all(n > 0 for n in marks), marks
        b.screenshot(shots / "report.png")

        # The year slider: a real click on the track moves it; the line keeps only years <= the value.
        fig1 = pd.read_csv(report / "figures/fig1_titles_by_year.csv")
        points = "document.querySelectorAll('#fig1_titles_by_year g.mark-symbol.role-mark path').length"
        assert b.eval(points) == len(fig1)
        x, y = center(b, "#fig1_titles_by_year input[type=range]")
        width = b.eval("document.querySelector('#fig1_titles_by_year input[type=range]').offsetWidth")
        b.click(x - width * 0.25, y)
        b.pump(0.3)
        year = int(b.eval("document.querySelector('#fig1_titles_by_year input[type=range]').value"))
        assert fig1["release_year"].min() < year < fig1["release_year"].max()
        assert b.eval("window.mediamlViews.fig1_titles_by_year.signal('Year')") == year
        assert b.wait_for(f"{points} === {int((fig1['release_year'] <= year).sum())}")
        b.screenshot(shots / "slider.png", full_page=False)

        # Hover: the bar under the mouse turns Netflix red, the others stay dark; the tooltip names it.
        bars = "#fig6_country_hover g.mark-rect.role-mark path"
        fills = f"Array.from(document.querySelectorAll({bars!r})).map(p => p.getAttribute('fill').toUpperCase())"
        assert set(b.eval(fills)) == {DARK}
        x, y = center(b, bars, 1)
        b.mouse(x, y)
        assert b.wait_for(f"{fills}.includes({RED!r})", timeout=5)
        after = b.eval(fills)
        assert after[1] == RED and after.count(RED) == 1
        second = pd.read_csv(report / "figures/fig6_country_hover.csv")["country"].iloc[1]
        assert second in b.wait_for("(e => e && e.classList.contains('visible') && e.textContent)"
                                    "(document.getElementById('vg-tooltip-element'))")
        b.screenshot(shots / "hover.png", full_page=False)
        b.mouse(5, 5)  # moving away clears the highlight
        assert b.wait_for(f"!{fills}.includes({RED!r})", timeout=5)
        assert b.errors() == []
    for name in ("report.png", "slider.png", "hover.png"):
        assert (shots / name).stat().st_size > 10_000
    keep = os.environ.get("MEDIAML_KEEP_SCREENSHOTS")
    if keep:  # for looking at them after the run
        shutil.copytree(shots, f"{keep}/{tmp_path.name}", dirs_exist_ok=True)
