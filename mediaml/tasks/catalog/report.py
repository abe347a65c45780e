"""A self-contained, offline HTML report of Vega-Lite charts, and PNG/SVG exports, through vl-convert.

The report inlines one copy of Vega, Vega-Lite and vega-embed (vl-convert's bundle, as altair's
`save(inline=True)` does) and embeds every chart with the SVG renderer: no CDN, no network, and
each chart is a plain <svg> a browser test can inspect. When all charts are drawn the page sets
`document.body.dataset.rendered` to their number; a failure sets `data-render-error` and is logged
to the console.
"""
from __future__ import annotations

import functools
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import altair as alt


@dataclass
class Section:
    stem: str                  # element id and file stem, e.g. "fig1_titles_by_year"
    title: str
    description: str           # what the chart shows (from the seed's captions)
    chart: alt.TopLevelMixin
    sentences: list[str] = field(default_factory=list)  # interpretation, computed from the data


@functools.lru_cache(maxsize=1)
def _bundle() -> str:
    """Vega + Vega-Lite + vega-embed as one script (~900 kB; ~2 s to build, so once per process)."""
    import vl_convert as vlc

    return vlc.javascript_bundle(vl_version=_vl_version())


def _vl_version() -> str:
    from altair.utils._importers import vl_version_for_vl_convert

    return vl_version_for_vl_convert()


def export_chart(chart: alt.TopLevelMixin, stem: Path, scale: float = 2.0) -> tuple[Path, Path]:
    """Write `<stem>.png` and `<stem>.svg` (static renderings: sliders at their initial value)."""
    import vl_convert as vlc

    spec = chart.to_dict()
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    png.write_bytes(vlc.vegalite_to_png(spec, vl_version=_vl_version(), scale=scale))
    svg.write_text(vlc.vegalite_to_svg(spec, vl_version=_vl_version()))
    return png, svg


_CSS = """
body { font-family: Helvetica, Arial, sans-serif; max-width: 1000px; margin: 2em auto; color: #221F1F; }
h1 { color: #E50914; } h2 { border-bottom: 2px solid #E50914; padding-bottom: .2em; margin-top: 2em; }
.chart { margin: 1em 0; } .interp { background: #f6f6f6; border-left: 4px solid #E50914; padding: .5em 1em; }
table.summary td { padding: .15em 1em .15em 0; } .files { font-size: .85em; color: #666; }
"""

_EMBED = """
const specs = JSON.parse(document.getElementById("mediaml-specs").textContent);
window.mediamlViews = {};
Promise.all(Object.entries(specs).map(([id, spec]) =>
  vegaEmbed("#" + id, spec, {renderer: "svg", actions: false}).then(r => { window.mediamlViews[id] = r.view; })
)).then(() => { document.body.dataset.rendered = String(Object.keys(window.mediamlViews).length); })
  .catch(e => { document.body.dataset.renderError = String(e); console.error("chart failed:", e); });
"""


def render_report(title: str, intro: list[str], summary: dict[str, str], sections: list[Section],
                  files: dict[str, list[str]] | None = None) -> str:
    """The report as one HTML string; `files` lists each section's exported files (relative links)."""
    esc = html.escape
    specs = {s.stem: s.chart.to_dict() for s in sections}
    parts = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>",
             f"<style>{_CSS}</style></head><body>", f"<h1>{esc(title)}</h1>"]
    parts += [f"<p>{esc(p)}</p>" for p in intro]
    if summary:
        parts.append("<table class='summary'>" + "".join(
            f"<tr><td>{esc(k)}</td><td><b>{esc(v)}</b></td></tr>" for k, v in summary.items()) + "</table>")
    for i, s in enumerate(sections, 1):
        parts.append(f"<h2>Figure {i}. {esc(s.title)}</h2><p>{esc(s.description)}</p>")
        parts.append(f"<div class='chart' id='{esc(s.stem)}'></div>")
        parts.append("<div class='interp'><b>Interpretation.</b> "
                     + " ".join(f"<p>{esc(t)}</p>" for t in s.sentences) + "</div>")
        links = (files or {}).get(s.stem, [])
        if links:
            parts.append("<p class='files'>Static copies: " + ", ".join(
                f"<a href='{esc(f)}'>{esc(Path(f).name)}</a>" for f in links) + "</p>")
    # "</" inside inline JSON would end the <script> element early.
    spec_json = json.dumps(specs).replace("</", "<\\/")
    parts.append(f"<script type='application/json' id='mediaml-specs'>{spec_json}</script>")
    parts.append(f"<script>{_bundle()}</script>")
    parts.append(f"<script>{_EMBED}</script></body></html>")
    return "\n".join(parts)
