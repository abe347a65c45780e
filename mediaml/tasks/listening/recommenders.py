"""Recommenders for task=listening (paper seed 001, §6): base classes and the baselines.

Every recommender is a scikit-learn-style estimator: ``__init__`` only stores parameters (``name``: the
method's label in tables and plots), ``fit(split)`` learns from a
:class:`~mediaml.tasks.listening.data.ListeningSplit` and returns ``self``, learned attributes end in ``_``. :meth:`Recommender.score` answers a batch of queries with one row of scores over all items
(float32, HIGHER = better); :mod:`mediaml.tasks.listening.retrieval` turns those rows into top-k lists.

Query kinds: ``"item"`` (item indexes: the first song of a test session, experiment 1), ``"user"`` (user
indexes, experiment 2a), ``"session"`` (TRAINING session ids: a reference session, experiment 2b).

* :class:`EmbeddingRecommender` — items, users and sessions are vectors; score = -squared Euclidean
  distance (``metric="euclidean"``, the paper's DeepWalk) or the inner product (``metric="dot"``, MF).
  Without session vectors a session query is the mean of the vectors of the session's distinct training
  songs (``session_items_``, a sessions x items CSR kept at fit).
* :class:`RandomRecommender` — seeded uniform scores (the same for a (kind, id, item) whatever the batch).
* :class:`PopularityRecommender` — training play counts.
* :class:`ALSRecommender` — implicit-feedback matrix factorisation (eq. 6) with ``implicit``'s CPU ALS.
"""
from __future__ import annotations

import os

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator

KINDS = ("item", "user", "session")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown query kind {kind!r}; expected one of {KINDS}")


def session_item_matrix(split) -> sparse.csr_matrix:
    """Binary (n_train_sessions x n_items) CSR: which songs each training session played."""
    train = split.train
    n_sessions, n_items = int(split.n_train_sessions), int(split.n_items)
    m = sparse.csr_matrix(
        (np.ones(len(train), dtype=np.float32),
         (train["session"].to_numpy(np.int64), train["item"].to_numpy(np.int64))),
        shape=(n_sessions, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def user_item_counts(split) -> sparse.csr_matrix:
    """(n_users x n_items) CSR of training play counts y_ui (float32)."""
    train = split.train
    m = sparse.csr_matrix(
        (np.ones(len(train), dtype=np.float32),
         (train["user"].to_numpy(np.int64), train["item"].to_numpy(np.int64))),
        shape=(int(split.n_users), int(split.n_items)))
    m.sum_duplicates()
    return m


class Recommender(BaseEstimator):
    """Abstract recommender: ``fit(split) -> self``, ``supports(kind)``, ``score(kind, ids)``."""

    def fit(self, split) -> "Recommender":  # pragma: no cover - abstract
        raise NotImplementedError

    def supports(self, kind: str) -> bool:
        _check_kind(kind)
        return True

    def score(self, kind: str, ids: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """Scores of shape (len(ids), n_items), float32, higher = better."""
        raise NotImplementedError


class EmbeddingRecommender(Recommender):
    """Scores items by the distance (or inner product) between a query vector and the item vectors.

    Subclasses set in ``fit``: ``item_vectors_`` (n_items, d), ``user_vectors_`` (n_users, d) or None,
    ``session_vectors_`` (n_train_sessions, d) or None, and call :meth:`_keep_sessions` (or set
    ``session_items_``) so session queries work without session vectors. ``metric`` is a parameter or a
    class attribute: "euclidean" (score = -||q - v||^2) or "dot" (score = q . v).
    """

    metric = "euclidean"
    item_vectors_: np.ndarray
    user_vectors_: np.ndarray | None = None
    session_vectors_: np.ndarray | None = None
    session_items_: sparse.csr_matrix | None = None

    def _keep_sessions(self, split) -> None:
        """Remember each training session's songs for the session fallback (mean of song vectors)."""
        self.session_items_ = session_item_matrix(split)

    def supports(self, kind: str) -> bool:
        _check_kind(kind)
        if kind == "item":
            return getattr(self, "item_vectors_", None) is not None
        if kind == "user":
            return self.user_vectors_ is not None
        return self.session_vectors_ is not None or self.session_items_ is not None

    def query_vectors(self, kind: str, ids: np.ndarray) -> np.ndarray:
        _check_kind(kind)
        if not self.supports(kind):
            raise ValueError(f"{type(self).__name__} has no vectors for {kind!r} queries")
        ids = np.asarray(ids, dtype=np.int64)
        if kind == "item":
            return self.item_vectors_[ids]
        if kind == "user":
            return self.user_vectors_[ids]
        if self.session_vectors_ is not None:
            return self.session_vectors_[ids]
        # Fallback: mean of the vectors of the session's distinct training songs.
        rows = self.session_items_[ids]
        counts = np.asarray(rows.sum(axis=1), dtype=np.float64).ravel()
        means = rows @ self.item_vectors_.astype(np.float64)
        return (means / np.maximum(counts, 1.0)[:, None]).astype(np.float32)

    def score(self, kind: str, ids: np.ndarray) -> np.ndarray:
        q = np.asarray(self.query_vectors(kind, ids), dtype=np.float32)
        v = np.asarray(self.item_vectors_, dtype=np.float32)
        dots = q @ v.T
        if self.metric == "dot":
            return dots.astype(np.float32, copy=False)
        if self.metric != "euclidean":
            raise ValueError(f"unknown metric {self.metric!r}; expected 'euclidean' or 'dot'")
        # -||q - v||^2 = 2 q.v - ||v||^2 - ||q||^2 (the last term is constant per row, kept for true distances)
        v_sq = np.einsum("ij,ij->i", v, v)
        q_sq = np.einsum("ij,ij->i", q, q)
        return (2.0 * dots - v_sq[None, :] - q_sq[:, None]).astype(np.float32, copy=False)


_KIND_CODE = {kind: i + 1 for i, kind in enumerate(KINDS)}


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


class RandomRecommender(Recommender):
    """Uniform random scores in [0, 1), a seeded hash of (seed, kind, query id, item): the same query gets
    the same ranking whatever batch it is scored in, and different queries get independent rankings."""

    def __init__(self, seed: int = 0, name: str = "random"):
        self.seed = seed
        self.name = name

    def fit(self, split) -> "RandomRecommender":
        self.n_items_ = int(split.n_items)
        return self

    def score(self, kind: str, ids: np.ndarray) -> np.ndarray:
        _check_kind(kind)
        ids = np.asarray(ids, dtype=np.int64).astype(np.uint64)
        with np.errstate(over="ignore"):
            key = _splitmix64(np.uint64(int(self.seed) & 0xFFFFFFFFFFFFFFFF) * np.uint64(4)
                              + np.uint64(_KIND_CODE[kind]))
            rows = _splitmix64(key ^ (ids * np.uint64(0xD1B54A32D192ED03)))
            h = _splitmix64(rows[:, None] + np.arange(self.n_items_, dtype=np.uint64)[None, :])
        return ((h >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / (1 << 24)))


class PopularityRecommender(Recommender):
    """Every query gets the items ranked by their training play count (``plays_``)."""

    def __init__(self, name: str = "popularity"):
        self.name = name

    def fit(self, split) -> "PopularityRecommender":
        self.plays_ = split.items["plays"].to_numpy(np.float32)  # the data layer's training play counts
        return self

    def score(self, kind: str, ids: np.ndarray) -> np.ndarray:
        _check_kind(kind)
        return np.tile(self.plays_, (len(ids), 1))


class ALSRecommender(EmbeddingRecommender):
    """Matrix factorisation of the paper's eq. (6) with ``implicit.cpu.als.AlternatingLeastSquares``.

    Confidence c_ui = 1 + alpha * log(1 + y_ui) (alpha = 1: the paper's c_ui = 1 + log(1 + y_ui)), y_ui the
    training play count of user u for song i. Scored by inner product: item query = its item factors,
    user query = its user factors, session query = mean of the session's songs' item factors (fallback).
    """

    metric = "dot"

    def __init__(self, factors: int = 128, regularization: float = 0.01, iterations: int = 15,
                 alpha: float = 1.0, seed: int = 0, use_gpu: bool = False, num_threads: int = 0,
                 name: str = "als"):
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.alpha = alpha
        self.seed = seed
        self.use_gpu = use_gpu
        self.num_threads = num_threads
        self.name = name

    def confidence_matrix(self, split) -> sparse.csr_matrix:
        """The user x song matrix handed to implicit: c_ui = 1 + alpha * log(1 + y_ui) on played pairs.

        implicit's ALS (Hu, Koren & Volinsky 2008, the paper's ref. [6]) reads each stored value as the
        confidence c_ui of a preference p_ui = 1 and gives every unstored pair confidence 1 and p_ui = 0:
        its conjugate-gradient solver builds Y^T C_u Y as Y^T Y + sum (c_ui - 1) y_i y_i^T and the right
        side as sum c_ui y_i. So the faithful input is c_ui itself (not c_ui - 1 = log(1 + y)), and the
        unplayed pairs get c = 1 + log(1 + 0) = 1 exactly as eq. (6) says. implicit's own ``alpha`` (which
        multiplies the stored values, i.e. would scale the constant 1 too) is left at 1; our ``alpha``
        scales only the log term (Hu et al.'s c = 1 + alpha * f(y)).
        """
        counts = user_item_counts(split)
        conf = counts.copy()
        conf.data = (1.0 + float(self.alpha) * np.log1p(counts.data)).astype(np.float32)
        return conf

    def fit(self, split) -> "ALSRecommender":
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit warns (and slows) with threaded BLAS
        if self.use_gpu:
            from implicit.gpu.als import AlternatingLeastSquares
            extra = {}
        else:
            from implicit.cpu.als import AlternatingLeastSquares
            extra = {"num_threads": int(self.num_threads)}
        from threadpoolctl import threadpool_limits

        self.confidence_ = self.confidence_matrix(split)
        # numpy has usually loaded OpenBLAS before we get here, so the env var alone is too late.
        with threadpool_limits(1, "blas"):
            als = AlternatingLeastSquares(factors=int(self.factors), regularization=float(self.regularization),
                                          alpha=1.0, iterations=int(self.iterations),
                                          random_state=int(self.seed), **extra)
            als.fit(self.confidence_, show_progress=False)
        if self.use_gpu:  # pragma: no cover - no GPU here
            als = als.to_cpu()
        self.user_vectors_ = np.ascontiguousarray(als.user_factors, dtype=np.float32)
        self.item_vectors_ = np.ascontiguousarray(als.item_factors, dtype=np.float32)
        self.session_vectors_ = None
        self._keep_sessions(split)
        return self
