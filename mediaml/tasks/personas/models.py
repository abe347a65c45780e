"""Seed 003's persona model: word topics from word vectors, then LDA over topic counts.

fit(chars) on a frame with list columns adj / active / patient:
1. vocabulary: words with count >= min_freq and count <= max_freq x (number of word types), the seed's
   `get_vocab` rule (relative to word types, not documents: on real data it removes nothing);
2. word vectors: gensim Word2Vec trained on the characters' bags (no pretrained vectors offline; the
   seed used spaCy's), so word topics are co-occurrence topics;
3. word topics: AgglomerativeClustering(n_topics, cosine, complete) of the vocabulary;
4. each character -> counts over 3 x n_topics columns [adj | active | patient];
5. LDA with n_personas components; persona = argmax of the character's persona mixture.
`n_topics: null` skips 2-3 and counts words directly (model=lda_words). `weighting: tfidf` rescales
the counts by idf before LDA, `genre_weight > 0` appends the movie's genres as extra columns with
that count each (variants, not the seed's).
"""
from __future__ import annotations

import logging
import time
from collections import Counter

import numpy as np
import pandas as pd
from scipy import sparse

from mediaml.errors import ConfigError

log = logging.getLogger(__name__)
ROLES = ("adj", "active", "patient")


class PersonaLDA:
    def __init__(self, n_personas: int = 50, n_topics: int | None = 100, min_freq: int = 5,
                 max_freq: float = 0.9, vector_size: int = 100, window: int = 10, w2v_epochs: int = 10,
                 lda_max_iter: int = 10, doc_topic_prior: float | None = None,
                 topic_word_prior: float | None = None, weighting: str = "counts", genre_weight: float = 0.0,
                 random_state: int = 0):
        self.n_personas, self.n_topics = int(n_personas), (int(n_topics) if n_topics else None)
        self.min_freq, self.max_freq = int(min_freq), float(max_freq)
        self.vector_size, self.window, self.w2v_epochs = int(vector_size), int(window), int(w2v_epochs)
        self.lda_max_iter, self.doc_topic_prior, self.topic_word_prior = int(lda_max_iter), doc_topic_prior, \
            topic_word_prior
        if weighting not in ("counts", "tfidf"):
            raise ConfigError(f"model.weighting={weighting!r}: expected 'counts' or 'tfidf'")
        self.weighting, self.random_state, self.genre_weight = weighting, int(random_state), float(genre_weight)

    # -- steps ---------------------------------------------------------------------------------
    def _vocab(self, chars: pd.DataFrame) -> list[str]:
        counts = Counter(w for role in ROLES for bag in chars[role] for w in bag)
        cap = self.max_freq * len(counts) if self.max_freq <= 1 else self.max_freq
        self.word_count_ = {w: c for w, c in counts.items() if self.min_freq <= c <= cap}
        return sorted(self.word_count_)

    def _word_topics(self, chars: pd.DataFrame) -> np.ndarray:
        from gensim.models import Word2Vec
        from sklearn.cluster import AgglomerativeClustering

        logging.getLogger("gensim").setLevel(logging.WARNING)  # per-epoch INFO lines drown the run log
        sentences = [a + b + c for a, b, c in zip(chars["adj"], chars["active"], chars["patient"]) if a or b or c]
        w2v = Word2Vec(sentences, vector_size=self.vector_size, window=self.window, min_count=1, workers=1,
                       epochs=self.w2v_epochs, seed=self.random_state)
        vectors = np.stack([w2v.wv[w] for w in self.vocab_]) + 1e-9  # the seed's +1e-9: no zero vector
        n = min(self.n_topics, len(self.vocab_))
        return AgglomerativeClustering(n_clusters=n, metric="cosine", linkage="complete").fit_predict(vectors)

    def transform_counts(self, chars: pd.DataFrame) -> sparse.csr_matrix:
        """Characters -> counts over [adj | active | patient] x (word topics, or words)."""
        width = self.n_columns_
        rows, cols = [], []
        for i, bags in enumerate(zip(*(chars[r] for r in ROLES))):
            for k, bag in enumerate(bags):
                for w in bag:
                    j = self.column_.get(w)
                    if j is not None:
                        rows.append(i)
                        cols.append(k * width + j)
        X = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(chars), 3 * width))
        X.sum_duplicates()
        if self.genre_weight:
            g_rows = [i for i, gs in enumerate(chars["genres"]) for g in gs if g in self.genre_column_]
            g_cols = [self.genre_column_[g] for gs in chars["genres"] for g in gs if g in self.genre_column_]
            G = sparse.csr_matrix((np.full(len(g_rows), self.genre_weight), (g_rows, g_cols)),
                                  shape=(len(chars), len(self.genre_column_)))
            X = sparse.hstack([X, G]).tocsr()
        if self.weighting == "tfidf" and hasattr(self, "idf_"):
            X = X.multiply(self.idf_).tocsr()
        return X

    # -- estimator -----------------------------------------------------------------------------
    def fit(self, chars: pd.DataFrame) -> "PersonaLDA":
        from sklearn.decomposition import LatentDirichletAllocation

        t0 = time.perf_counter()
        self.vocab_ = self._vocab(chars)
        if not self.vocab_:
            raise ValueError(f"empty vocabulary: no word occurs >= model.min_freq={self.min_freq} times")
        self.timings_ = {"vocab_s": time.perf_counter() - t0}
        if self.n_topics:
            t0 = time.perf_counter()
            self.word_topic_ = self._word_topics(chars)
            self.column_ = dict(zip(self.vocab_, self.word_topic_))
            self.n_columns_ = int(self.word_topic_.max()) + 1
            self.timings_["word_topics_s"] = time.perf_counter() - t0
        else:
            self.column_ = {w: j for j, w in enumerate(self.vocab_)}
            self.n_columns_ = len(self.vocab_)
        if self.genre_weight:
            if "genres" not in chars or not any(len(g) for g in chars["genres"]):
                raise ValueError("model.genre_weight > 0 but the dataset has no movie genres")
            self.genre_column_ = {g: j for j, g in enumerate(sorted({g for gs in chars["genres"] for g in gs}))}
        X = self.transform_counts(chars)
        if self.weighting == "tfidf":
            df = np.asarray((X > 0).sum(axis=0)).ravel()
            self.idf_ = np.log((1 + X.shape[0]) / (1 + df)) + 1
            X = X.multiply(self.idf_).tocsr()
        from mediaml.progress import bar, count_calls

        t0 = time.perf_counter()
        lda = LatentDirichletAllocation(
            n_components=self.n_personas, max_iter=self.lda_max_iter, doc_topic_prior=self.doc_topic_prior,
            topic_word_prior=self.topic_word_prior, random_state=self.random_state, n_jobs=1)
        with bar(total=int(self.lda_max_iter), desc=f"LDA {self.n_personas} personas", unit="pass") as passes:
            count_calls(lda, "_em_step", passes)  # one EM pass of the batch method per call
            self.lda_ = lda.fit(X)
        vars(self.lda_).pop("_em_step", None)  # the fitted model pickles without the counter
        self.timings_["lda_s"] = time.perf_counter() - t0
        return self

    def predict_proba(self, chars: pd.DataFrame) -> np.ndarray:
        return self.lda_.transform(self.transform_counts(chars))

    def predict(self, chars: pd.DataFrame) -> np.ndarray:
        return self.predict_proba(chars).argmax(axis=1)

    # -- interpretation ------------------------------------------------------------------------
    def topic_words(self, top: int = 8) -> dict[int, list[str]]:
        """Word topic (or word) -> its `top` most frequent words in the fit set, for reading persona tables."""
        groups: dict[int, list[str]] = {}
        for w, j in sorted(self.column_.items(), key=lambda wj: (-self.word_count_.get(wj[0], 0), wj[0])):
            groups.setdefault(int(j), []).append(w)
        return {j: ws[:top] for j, ws in sorted(groups.items())}

    def persona_table(self, top: int = 3) -> pd.DataFrame:
        """Per persona and role, its `top` heaviest columns (word topics), as seed 003's interpretation."""
        words = self.topic_words()
        comp = self.lda_.components_ / self.lda_.components_.sum(axis=1, keepdims=True)
        rows = []
        for p, weights in enumerate(comp):
            for k, role in enumerate(ROLES):
                block = weights[k * self.n_columns_:(k + 1) * self.n_columns_]
                for rank, j in enumerate(np.argsort(block)[::-1][:top]):
                    rows.append({"persona": p, "role": role, "rank": rank, "column": int(j),
                                 "weight": float(block[j]), "words": " ".join(words.get(int(j), []))})
            if self.genre_weight:
                names = sorted(self.genre_column_, key=self.genre_column_.get)
                block = weights[3 * self.n_columns_:]
                for rank, j in enumerate(np.argsort(block)[::-1][:top]):
                    rows.append({"persona": p, "role": "genre", "rank": rank, "column": int(j),
                                 "weight": float(block[j]), "words": names[j]})
        return pd.DataFrame(rows)


def genre_docs(chars: pd.DataFrame) -> list[str]:
    """One space-joined document of the movie's genre tokens per character."""
    return [" ".join(g) for g in chars["genres"]]


def fit_genre_tfidf(chars: pd.DataFrame):
    """The genre tf-idf vectoriser, fitted on the characters' movie genres (errors if there are none)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if "genres" not in chars or not any(len(g) for g in chars["genres"]):
        raise ValueError("model.genre_weight > 0 but the dataset has no movie genres")
    return TfidfVectorizer(token_pattern=r"\S+", lowercase=False).fit(genre_docs(chars))


def genre_block(vectorizer, chars: pd.DataFrame, weight: float = 1.0):
    """`weight` x the l2-normalised genre tf-idf rows (sparse; a movie with no genre is a zero row)."""
    from sklearn.preprocessing import normalize

    return weight * normalize(vectorizer.transform(genre_docs(chars)))


class PersonaKMeans:
    """Characters as tf-idf vectors, clustered by k-means (a persona = a cluster).

    Columns: the role-tagged words ("a:cop", "v:shoots", "p:kills"; sublinear tf, idf over the fit
    set, words in >= min_df characters), optionally followed by the movie's genres as tf-idf tokens
    scaled by `genre_weight` (0 = words only). Each block is l2-normalised before scaling, so
    `genre_weight=1` gives words and genres equal say. The genres are a property of the movie, not of
    the character: they are the metadata Bamman et al.'s full model conditions personas on.
    """

    n_topics = None

    def __init__(self, n_personas: int = 50, min_df: int = 3, genre_weight: float = 0.0,
                 word_weight: float = 1.0, n_init: int = 3, random_state: int = 0):
        self.n_personas, self.min_df, self.n_init = int(n_personas), int(min_df), int(n_init)
        self.genre_weight, self.word_weight, self.random_state = float(genre_weight), float(word_weight), \
            int(random_state)

    @staticmethod
    def _docs(chars: pd.DataFrame) -> list[str]:
        return [" ".join(f"{r[0]}:{w}" for r, bag in zip(ROLES, bags) for w in bag)
                for bags in zip(*(chars[r] for r in ROLES))]

    def _matrix(self, chars: pd.DataFrame):
        from sklearn.preprocessing import normalize

        blocks = []
        if self.word_weight:
            blocks.append(self.word_weight * normalize(self.words_.transform(self._docs(chars))))
        if self.genre_weight:
            blocks.append(genre_block(self.genres_, chars, self.genre_weight))
        return sparse.hstack(blocks).tocsr()

    def fit(self, chars: pd.DataFrame) -> "PersonaKMeans":
        from sklearn.cluster import KMeans
        from sklearn.feature_extraction.text import TfidfVectorizer

        if not (self.word_weight or self.genre_weight):
            raise ValueError("model.word_weight and model.genre_weight are both 0: no features")
        t0 = time.perf_counter()
        self.words_ = TfidfVectorizer(min_df=self.min_df, sublinear_tf=True, token_pattern=r"\S+",
                                      lowercase=False).fit(self._docs(chars))
        if self.genre_weight:
            self.genres_ = fit_genre_tfidf(chars)
        self.vocab_ = list(self.words_.get_feature_names_out())
        X = self._matrix(chars)
        self.kmeans_ = KMeans(self.n_personas, n_init=self.n_init, random_state=self.random_state).fit(X)
        self.timings_ = {"kmeans_s": time.perf_counter() - t0}
        return self

    def predict(self, chars: pd.DataFrame) -> np.ndarray:
        return self.kmeans_.predict(self._matrix(chars))

    def topic_words(self, top: int = 8) -> dict[int, list[str]]:
        return {}

    def persona_table(self, top: int = 3) -> pd.DataFrame:
        """Per persona and block (role words, genres), its `top` heaviest centroid terms."""
        names = np.array([*(self.vocab_ if self.word_weight else []),
                          *(f"genre:{g}" for g in (self.genres_.get_feature_names_out() if self.genre_weight else []))])
        rows = []
        for p, centre in enumerate(self.kmeans_.cluster_centers_):
            for prefix, role in (("a:", "adj"), ("v:", "active"), ("p:", "patient"), ("genre:", "genre")):
                idx = np.flatnonzero(np.char.startswith(names.astype(str), prefix))
                for rank, j in enumerate(idx[np.argsort(centre[idx])[::-1][:top]]):
                    rows.append({"persona": p, "role": role, "rank": rank, "weight": float(centre[j]),
                                 "words": names[j].split(":", 1)[1]})
        return pd.DataFrame(rows)
