"""TF-IDF text baselines: words of a free-text column (+ a comma-separated tag column) -> a linear model.

    python train.py task=catalog dataset=netflix model=tfidf_logreg

Input is a DataFrame with the text column and, if `tags_column` is set, the tag column; the tags
(e.g. `listed_in` genres) are whole tokens ("Kids' TV"), not split into words.
"""
from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline


def split_tags(text: str) -> list[str]:
    """'Dramas, International Movies' -> ['Dramas', 'International Movies'] (module level: picklable)."""
    return [t.strip() for t in text.split(",") if t.strip()]


def text_pipeline(classifier, text_column: str = "description", tags_column: str | None = "listed_in",
                  max_features: int | None = 20000, ngram_max: int = 2, min_df: int = 2,
                  stop_words: str | None = "english", sublinear_tf: bool = True) -> Pipeline:
    features = [("words", TfidfVectorizer(max_features=max_features, ngram_range=(1, int(ngram_max)),
                                          min_df=int(min_df), stop_words=stop_words, sublinear_tf=sublinear_tf),
                 text_column)]
    if tags_column:
        features.append(("tags", TfidfVectorizer(tokenizer=split_tags, token_pattern=None, lowercase=False),
                         tags_column))
    return Pipeline([("features", ColumnTransformer(features)), ("model", classifier)])
