"""task=catalog: Netflix catalogue cleaning, Altair charts and an offline report (seed 000).

Files: ``task.py`` (the runner), ``data.py`` (loading, cleaning, synthetic catalogue), ``figures.py`` (chart
data), ``charts.py`` (Altair charts), ``story.py`` (computed sentences), ``report.py`` (the HTML report and
PNG/SVG export), ``models.py`` (TF-IDF text baselines).
"""
from mediaml.errors import require_extra

# Before any module of this package imports them: a missing extra stops with its install command.
require_extra("catalog", ['altair', 'vl_convert'])
