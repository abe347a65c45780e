"""§6 evaluation (mediaml.tasks.listening.retrieval) on a hand-computed example.

Items lie on a line: item i at x = (0, 1, 3, 6, 10, 15)[i]; user 0 at x = 0, user 1 at x = 15; no session
vectors, so a session query is the mean of its distinct training songs. Every expected number below is
worked out by hand in the comments.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from mediaml.tasks.listening.retrieval import evaluate, plot_curves, reference_sessions, retrieve_hits, sample_sessions, top_k
from mediaml.tasks.listening.recommenders import EmbeddingRecommender, PopularityRecommender, RandomRecommender

X = np.array([0.0, 1.0, 3.0, 6.0, 10.0, 15.0])


def make_split(train_rows, test_rows, n_users, n_items, has_device=True):
    """A ListeningSplit look-alike from (user, session, item, timestamp[, device]) rows."""
    cols = ["user", "session", "item", "timestamp"] + (["device"] if has_device else [])

    def frame(rows):
        df = pd.DataFrame([r[:len(cols)] for r in rows], columns=cols)
        return df.astype({"user": "int32", "session": "int32", "item": "int32", "timestamp": "int64"})

    def sessions(df):
        agg = {"user": ("user", "first"), "start": ("timestamp", "min"), "n_events": ("item", "size")}
        if has_device:
            agg["device"] = ("device", "first")
        return df.groupby("session").agg(**agg)

    train, test = frame(train_rows), frame(test_rows)
    train_sessions, test_sessions = sessions(train), sessions(test)
    plays = np.bincount(train["item"], minlength=n_items)
    return SimpleNamespace(train=train, test=test, train_sessions=train_sessions, test_sessions=test_sessions,
                           items=pd.DataFrame({"item_id": np.arange(n_items), "plays": plays}),
                           n_users=n_users, n_items=n_items, n_train_sessions=len(train_sessions),
                           n_test_sessions=len(test_sessions), has_device=has_device)


TRAIN = [  # user, session, item, timestamp, device
    (0, 0, 0, 100, "phone"), (0, 0, 1, 101, "phone"), (0, 0, 2, 102, "phone"),          # mean x = 4/3
    (0, 1, 3, 200, "desktop"), (0, 1, 4, 201, "desktop"), (0, 1, 5, 202, "desktop"),
    (0, 1, 5, 203, "desktop"),                    # distinct mean x = 31/3 (events' mean 11.5 would rank 4,5,3)
    (1, 2, 5, 150, "phone"),                                                            # x = 15
    (1, 3, 0, 300, "desktop"),                    # user 1's most recent session, not on the phone: x = 0
]
TEST = [  # rows deliberately not in time order inside session 0
    (0, 0, 0, 1010, "phone"), (0, 0, 2, 1000, "phone"), (0, 0, 3, 1020, "phone"), (0, 0, 2, 1030, "phone"),
    (0, 1, 4, 1100, "tablet"), (0, 1, 5, 1101, "tablet"), (0, 1, 4, 1102, "tablet"),
    (1, 2, 5, 1200, "phone"),                     # a single song: no relevant song for exp1
]


class LineModel(EmbeddingRecommender):
    def __init__(self, metric="euclidean"):
        self.metric = metric

    def fit(self, split):
        self.item_vectors_ = np.c_[X, np.zeros_like(X)].astype(np.float32)
        self.user_vectors_ = np.array([[0.0, 0.0], [15.0, 0.0]], dtype=np.float32)
        self.session_vectors_ = None
        self._keep_sessions(split)
        return self


@pytest.fixture
def split():
    return make_split(TRAIN, TEST, n_users=2, n_items=6)


def test_hand_computed_recall_precision(split):
    metrics, table = evaluate(LineModel().fit(split), split, ks=(1, 2, 3))
    # exp1. t0: query 2 (x=3, the first song in time); d^2: 1->4, 0->9, 3->9 (tie: lower index first), 4->49;
    #   ranking without the query 1,0,3,4,5; relevant {0,3}: hits 0,1,2 -> recall 0,1/2,1; precision 0,1/2,2/3.
    # t1: query 4 (x=10): 3->16, 5->25, 2->49; ranking 3,5,2; relevant {5}: hits 0,1,1 -> recall 0,1,1;
    #   precision 0,1/2,1/3. t2 has a single song: skipped.
    expected = {
        "exp1": ([0, 0.75, 1.0], [0, 0.5, 0.5]),
        # user 0 ranks 0,1,2,...; user 1 ranks 5,4,3. t0 rel {0,2,3}: hits 1,1,2; t1 rel {4,5}: 0,0,0;
        # t2 rel {5}: 1,1,1.
        "exp2_user": ([(1 / 3 + 0 + 1) / 3, (1 / 3 + 0 + 1) / 3, (2 / 3 + 0 + 1) / 3],
                      [(1 + 0 + 1) / 3, (0.5 + 0 + 0.5) / 3, (2 / 3 + 0 + 1 / 3) / 3]),
        # references: t0 (phone) -> session 0 (x=4/3: ranks 1,0,2,3); t1 (tablet, none) -> most recent,
        # session 1 (x=31/3: ranks 4,3,5); t2 (phone) -> session 2 (x=15), not the more recent session 3.
        # t0 rel {0,2,3}: hits 0,1,2; t1 rel {4,5}: 1,1,2; t2 rel {5}: 1,1,1.
        "exp2_session": ([(0 + 0.5 + 1) / 3, (1 / 3 + 0.5 + 1) / 3, (2 / 3 + 1 + 1) / 3],
                         [(0 + 1 + 1) / 3, (0.5 + 0.5 + 0.5) / 3, (2 / 3 + 2 / 3 + 1 / 3) / 3]),
    }
    for exp, (recall, precision) in expected.items():
        t = table[table["experiment"] == exp].sort_values("k")
        np.testing.assert_allclose(t["recall"], recall, atol=1e-12, err_msg=exp)
        np.testing.assert_allclose(t["precision"], precision, atol=1e-12, err_msg=exp)
        for k, r, p in zip((1, 2, 3), recall, precision):
            assert metrics[f"{exp}/recall_at_{k}"] == pytest.approx(r, abs=1e-12)
            assert metrics[f"{exp}/precision_at_{k}"] == pytest.approx(p, abs=1e-12)
    assert metrics["data/eval_exp1_sessions"] == 2 and metrics["data/eval_exp1_skipped_no_relevant"] == 1
    assert metrics["data/eval_exp2_user_sessions"] == 3 and metrics["data/eval_exp2_session_sessions"] == 3
    assert metrics["data/eval_exp2_session_device_fallback"] == 1
    assert set(table.columns) == {"experiment", "k", "recall", "precision", "n_sessions"}
    assert not any("@" in name for name in metrics)


def test_reference_session_uses_device_then_most_recent(split):
    tests = sample_sessions(split, None)
    refs, fallback = reference_sessions(split, tests)
    assert refs.tolist() == [0, 1, 2] and fallback == 1
    no_device = make_split([r[:4] for r in TRAIN], [r[:4] for r in TEST], 2, 6, has_device=False)
    refs, fallback = reference_sessions(no_device, sample_sessions(no_device, None))
    assert refs.tolist() == [1, 1, 3] and fallback == 0  # the most recent training session of the user


def test_exp1_never_retrieves_the_query(split):
    model = LineModel().fit(split)
    queries = np.arange(6)
    rel = sparse.csr_matrix(np.ones((6, 6), dtype=np.int8))
    cum = retrieve_hits(model, "item", queries, rel, k=10, exclude=queries)
    assert cum.shape == (6, 5)  # at most n_items - 1 candidates
    assert (cum[:, -1] == 5).all()  # all 5 other items retrieved, never the query itself


def test_euclidean_and_dot_scores(split):
    model = LineModel().fit(split)
    s = model.score("user", np.array([1, 0]))
    np.testing.assert_allclose(s, -(X[None, :] - np.array([[15.0], [0.0]])) ** 2, atol=1e-4)
    dot = LineModel(metric="dot").fit(split).score("item", np.array([2]))
    np.testing.assert_allclose(dot[0], 3.0 * X, atol=1e-5)
    sess = model.score("session", np.array([1]))  # distinct songs' mean x = 31/3
    np.testing.assert_allclose(sess[0], -(X - 31 / 3) ** 2, atol=1e-3)


def test_top_k_ties_lower_index_first():
    scores = np.array([[1, 3, 3, 3, 0, 3], [5, 4, 3, 2, 1, 0]], dtype=np.float32)
    assert top_k(scores, 2).tolist() == [[1, 2], [0, 1]]
    assert top_k(scores, 5).tolist() == [[1, 2, 3, 5, 0], [0, 1, 2, 3, 4]]
    plays = np.tile(np.array([2, 1, 1, 1, 1, 2, 1, 1], dtype=np.float32), (300, 1))  # > one tie chunk
    assert (top_k(plays, 4) == [0, 5, 1, 2]).all()


def _random_split(n_users=30, n_items=80, seed=0):
    rng = np.random.default_rng(seed)
    train, test = [], []
    for u in range(n_users):
        for s in range(3):
            sid, t0 = u * 3 + s, 1000 * s
            for j, item in enumerate(rng.integers(0, n_items, 6)):
                train.append((u, sid, int(item), t0 + j, ["a", "b"][s % 2]))
        for s in range(2):
            for j, item in enumerate(rng.integers(0, n_items, 5)):
                test.append((u, u * 2 + s, int(item), 10_000 + 100 * s + j, ["a", "b", "c"][(u + s) % 3]))
    return make_split(train, test, n_users, n_items)


def test_batch_size_does_not_change_results():
    split = _random_split()
    for model in (LineLike().fit(split), PopularityRecommender().fit(split), RandomRecommender(3).fit(split)):
        _, a = evaluate(model, split, batch_size=1024)
        _, b = evaluate(model, split, batch_size=7)
        pd.testing.assert_frame_equal(a, b)


class LineLike(EmbeddingRecommender):
    """Seeded random 2-D vectors (many near-ties), users too."""

    def fit(self, split):
        rng = np.random.default_rng(1)
        self.item_vectors_ = rng.normal(size=(split.n_items, 2)).astype(np.float32)
        self.user_vectors_ = rng.normal(size=(split.n_users, 2)).astype(np.float32)
        self._keep_sessions(split)
        return self


def test_n_eval_sessions_sample_is_seeded():
    split = _random_split()
    a, b, c = (sample_sessions(split, 10, seed) for seed in (0, 0, 1))
    assert len(a) == 10 and a.index.equals(b.index) and not a.index.equals(c.index)
    m1, t1 = evaluate(PopularityRecommender().fit(split), split, n_eval_sessions=10, seed=0)
    m2, _ = evaluate(LineLike().fit(split), split, n_eval_sessions=10, seed=0)
    assert m1["data/eval_sampled_sessions"] == m2["data/eval_sampled_sessions"] == 10
    assert m1["data/eval_exp2_user_sessions"] == m2["data/eval_exp2_user_sessions"] == 10
    assert (t1["k"].unique() == np.arange(10, 55, 5)).all()


def test_unsupported_kind_is_skipped(split):
    class ItemsOnly(LineModel):
        def fit(self, split):
            super().fit(split)
            self.user_vectors_ = None
            self.session_items_ = None
            return self

    metrics, table = evaluate(ItemsOnly().fit(split), split, ks=(1,))
    assert set(table["experiment"]) == {"exp1"}
    assert metrics["data/eval_exp2_user_sessions"] == 0 and metrics["data/eval_exp2_session_sessions"] == 0


def test_plot_curves(split):
    _, t1 = evaluate(LineModel().fit(split), split, ks=(1, 2, 3))
    _, t2 = evaluate(PopularityRecommender().fit(split), split, ks=(1, 2, 3))
    figs = plot_curves({"line": t1, "popularity": t2})
    assert set(figs) == {"fig7_exp1", "fig8_exp2"}
    assert len(figs["fig7_exp1"].axes[0].lines) == 2 and len(figs["fig8_exp2"].axes[1].lines) == 4
    assert set(plot_curves({"one": t1[t1["experiment"] == "exp1"]})) == {"fig7_exp1"}
