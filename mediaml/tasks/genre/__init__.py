"""task=genre: Spotify genre classification with scikit-learn baselines (seed 004).

Files: ``task.py`` (the runner), ``data.py`` (labelled tables), ``synthetic.py`` (planted genre tables),
``class_maps.py`` (label groupings such as the seed's condensed genres).
"""
