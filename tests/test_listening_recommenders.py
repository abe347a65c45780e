"""Baseline recommenders of task=listening: random, popularity, implicit ALS (mediaml.tasks.listening.recommenders)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from mediaml.tasks.listening.retrieval import evaluate, top_k
from mediaml.tasks.listening.recommenders import (ALSRecommender, EmbeddingRecommender, PopularityRecommender,
                                         RandomRecommender, Recommender)
from test_listening_retrieval import make_split

N_BLOCKS, USERS_PER_BLOCK, ITEMS_PER_BLOCK = 4, 10, 15


def planted_split(seed=0):
    """Users of block b play (with repeats) only songs of block b, in training and in test."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    n_users, n_items = N_BLOCKS * USERS_PER_BLOCK, N_BLOCKS * ITEMS_PER_BLOCK
    for u in range(n_users):
        block = u // USERS_PER_BLOCK
        songs = block * ITEMS_PER_BLOCK + np.arange(ITEMS_PER_BLOCK)
        for s in range(2):
            for j, item in enumerate(rng.choice(songs, 8)):
                train.append((u, 2 * u + s, int(item), 1000 * s + j))
        for j, item in enumerate(rng.choice(songs, 6)):
            test.append((u, u, int(item), 10_000 + j))
    return make_split(train, test, n_users, n_items, has_device=False)


@pytest.fixture(scope="module")
def split():
    return planted_split()


def test_estimator_api(split):
    for model in (RandomRecommender(seed=1), PopularityRecommender(), ALSRecommender(factors=4, iterations=2)):
        assert isinstance(model, Recommender)
        assert not [k for k in vars(model) if k.endswith("_")]  # __init__ only stores parameters
        assert clone(model).get_params() == model.get_params()
        assert model.fit(split) is model
        for kind in ("item", "user", "session"):
            assert model.supports(kind)
            s = model.score(kind, np.array([0, 3, 1]))
            assert s.shape == (3, split.n_items) and s.dtype == np.float32
    with pytest.raises(ValueError):
        PopularityRecommender().fit(split).score("song", np.array([0]))


def test_random_scores_are_seeded(split):
    a, b, c = RandomRecommender(seed=0).fit(split), RandomRecommender(seed=0).fit(split), \
        RandomRecommender(seed=1).fit(split)
    ids = np.array([5, 2, 7])
    sa = a.score("user", ids)
    np.testing.assert_array_equal(sa, b.score("user", ids))
    assert not np.array_equal(sa, c.score("user", ids))
    np.testing.assert_array_equal(sa[1], a.score("user", np.array([2]))[0])  # whatever the batch
    assert not np.array_equal(sa[0], sa[1])  # queries get different lists
    assert not np.array_equal(sa[0], a.score("item", np.array([5]))[0])  # kinds too
    assert sa.min() >= 0 and sa.max() < 1
    big = a.score("user", np.arange(split.n_users))
    assert abs(big.mean() - 0.5) < 0.02


def test_popularity_ranks_by_plays(split):
    model = PopularityRecommender().fit(split)
    np.testing.assert_array_equal(model.plays_, split.items["plays"].to_numpy())
    s = model.score("item", np.array([0, 1]))
    np.testing.assert_array_equal(s[0], s[1])
    top = top_k(s, 10)[0]
    plays = model.plays_
    assert (np.diff(plays[top]) <= 0).all()  # best first
    assert plays[top[-1]] >= np.sort(plays)[-10]  # really the 10 most played


def test_als_passes_paper_confidence(split, monkeypatch):
    import implicit.cpu.als as als_mod

    seen = {}
    original = als_mod.AlternatingLeastSquares.fit

    def spy(self, user_items, *args, **kwargs):
        seen["matrix"], seen["alpha"] = user_items.copy(), self.alpha
        return original(self, user_items, *args, **kwargs)

    monkeypatch.setattr(als_mod.AlternatingLeastSquares, "fit", spy)
    ALSRecommender(factors=4, iterations=1).fit(split)
    m = seen["matrix"].tocsr()
    counts = np.zeros((split.n_users, split.n_items))
    np.add.at(counts, (split.train["user"], split.train["item"]), 1)
    played = counts > 0
    assert m.shape == counts.shape and m.nnz == played.sum()  # only played pairs are stored
    np.testing.assert_allclose(m.toarray()[played], 1 + np.log1p(counts[played]), rtol=1e-6)
    assert seen["alpha"] == 1.0  # implicit's alpha would also scale the constant 1
    assert (counts > 1).any()  # the test data has repeats, so log(1 + y) is not constant


def test_als_recommends_in_block_songs(split):
    model = ALSRecommender(factors=8, regularization=0.01, iterations=10, seed=0).fit(split)
    assert model.item_vectors_.shape == (split.n_items, 8) and model.user_vectors_.shape == (split.n_users, 8)
    assert model.metric == "dot"
    np.testing.assert_allclose(model.score("user", np.array([3])), model.user_vectors_[[3]] @ model.item_vectors_.T,
                               rtol=1e-5, atol=1e-6)
    top = top_k(model.score("user", np.arange(split.n_users)), 10)
    user_block = np.arange(split.n_users)[:, None] // USERS_PER_BLOCK
    assert (top // ITEMS_PER_BLOCK == user_block).mean() > 0.95
    metrics, _ = evaluate(model, split, ks=(10,))
    rand, _ = evaluate(RandomRecommender(seed=0).fit(split), split, ks=(10,))
    for exp in ("exp1", "exp2_user", "exp2_session"):
        # in-block retrieval: about 10/15 of a session's distinct songs (random: about 10/60)
        assert metrics[f"{exp}/recall_at_10"] > 0.5 > 0.3 > rand[f"{exp}/recall_at_10"], exp


def test_session_fallback_is_mean_of_distinct_songs(split):
    model = ALSRecommender(factors=4, iterations=2).fit(split)
    assert model.session_vectors_ is None
    sid = 5
    songs = np.unique(split.train.loc[split.train["session"] == sid, "item"])
    q = model.item_vectors_[songs].mean(axis=0)
    np.testing.assert_allclose(model.score("session", np.array([sid]))[0], model.item_vectors_ @ q,
                               rtol=1e-4, atol=1e-6)


def test_embedding_recommender_unsupported_kind():
    class NoUsers(EmbeddingRecommender):
        def fit(self, split):
            self.item_vectors_ = np.eye(3, dtype=np.float32)
            return self

    model = NoUsers().fit(None)
    assert model.supports("item") and not model.supports("user") and not model.supports("session")
    with pytest.raises(ValueError, match="user"):
        model.score("user", np.array([0]))
