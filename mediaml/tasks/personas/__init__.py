"""task=personas: film-character personas scored by VI against TV Tropes (seed 003, after Bamman et al. 2013).

Files: ``task.py`` (the runner), ``data.py`` (character features, gold matching, synthetic characters),
``extraction.py`` (spaCy attribute extraction from plot summaries), ``models.py`` (LDA / tf-idf personas),
``embedding.py`` (sentence-embedding personas), ``clustering.py`` (VI, purity, AMI), ``revenue.py`` (OLS).
"""
from mediaml.errors import require_extra

# Before any module of this package imports them: a missing extra stops with its install command.
require_extra("personas", ['gensim', 'statsmodels', 'spacy', 'sentence_transformers'])
