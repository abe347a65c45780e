"""task=listening: DeepWalk on the user-session-song graph (seed 001, Chung et al. ISMIR 2016).

Files: ``task.py`` (the runner), ``data.py`` (event logs, sessions, the real-life split, synthetic logs),
``walks.py`` (graphs + numba walks), ``deepwalk.py`` (skip-gram embeddings), ``recommenders.py`` (random,
popularity, implicit ALS), ``retrieval.py`` (the §6 recall/precision@k), ``maps.py`` (the §5 maps).
"""
from mediaml.errors import require_extra

# Before any module of this package imports them: a missing extra stops with its install command.
require_extra("listening", ['gensim', 'numba', 'implicit'])
