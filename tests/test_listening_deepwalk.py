"""DeepWalk estimator on a tiny planted listening graph (mediaml.tasks.listening.deepwalk)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from mediaml.tasks.listening.deepwalk import DeepWalk

ROOT = Path(__file__).resolve().parents[1]


def planted_split(seed=0, n_clusters=2, users_per=6, songs_per=15, sessions_per_user=4, session_len=6):
    """Users of cluster c play only songs of cluster c (songs c*songs_per .. (c+1)*songs_per - 1)."""
    rng = np.random.default_rng(seed)
    rows, s = [], 0
    for c in range(n_clusters):
        for u in range(c * users_per, (c + 1) * users_per):
            for _ in range(sessions_per_user):
                for i in rng.choice(songs_per, session_len, replace=False) + c * songs_per:
                    rows.append((u, s, i))
                s += 1
    train = pd.DataFrame(rows, columns=["user", "session", "item"]).astype(np.int32)
    return SimpleNamespace(train=train, n_users=n_clusters * users_per, n_items=n_clusters * songs_per,
                           n_train_sessions=s)


FAST = dict(dimensions=16, walk_length=20, walks_per_node=10, window=4, workers=1, seed=0, progress=False)


@pytest.fixture(scope="module")
def split():
    return planted_split()


@pytest.fixture(scope="module")
def fitted(split):
    return DeepWalk(graph="uss", **FAST).fit(split)


def test_fit_shapes_and_learned_attributes(fitted, split):
    m = fitted
    assert m.item_vectors_.shape == (30, 16) and m.user_vectors_.shape == (12, 16)
    assert m.session_vectors_.shape == (48, 16)
    n_nodes = 12 + 48 + 30
    assert m.walks_shape_ == (10 * n_nodes, 20)
    assert set(m.timings_) == {"graph_s", "walks_s", "write_s", "w2v_s"}
    assert np.abs(m.item_vectors_).sum(axis=1).min() > 0  # every song got a trained vector
    scores = m.score("item", np.array([0, 20]))
    assert scores.shape == (2, 30) and scores.dtype == np.float32
    assert m.supports("session") and m.score("session", np.array([0, 47])).shape == (2, 30)


def mean_sq_dist(a, b):
    return float(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1).mean())


@pytest.mark.parametrize("graph", ["uss", "us"])
def test_planted_clusters_are_closer_within(split, graph, fitted):
    m = fitted if graph == "uss" else DeepWalk(graph="us", **FAST).fit(split)
    a, b = m.item_vectors_[:15], m.item_vectors_[15:]
    within = (mean_sq_dist(a, a) + mean_sq_dist(b, b)) / 2
    across = mean_sq_dist(a, b)
    assert within < 0.5 * across, (within, across)
    # nearest songs of a query song (excluding itself) come from its own cluster
    scores = m.score("item", np.arange(30))
    np.fill_diagonal(scores, -np.inf)
    top = np.argsort(-scores, axis=1)[:, :5]
    assert ((top // 15) == (np.arange(30) // 15)[:, None]).mean() > 0.95


def test_us_graph_has_no_session_vectors_but_answers_sessions(split):
    m = DeepWalk(graph="us", **FAST).fit(split)
    assert m.session_vectors_ is None and m.user_vectors_.shape == (12, 16)
    assert m.walks_shape_ == (10 * 42, 20)
    assert m.supports("session")  # mean of the session's songs (EmbeddingRecommender fallback)
    assert m.score("session", np.array([0])).shape == (1, 30)


@pytest.mark.parametrize("inp", ["corpus_file", "sentences"])
def test_single_worker_fit_is_repeatable(split, inp):
    a = DeepWalk(input=inp, **FAST).fit(split)
    b = DeepWalk(input=inp, **FAST).fit(split)
    c = DeepWalk(input=inp, **{**FAST, "seed": 1}).fit(split)
    assert np.array_equal(a.item_vectors_, b.item_vectors_)
    assert np.array_equal(a.session_vectors_, b.session_vectors_)
    assert not np.array_equal(a.item_vectors_, c.item_vectors_)


def test_bad_params_are_named(split):
    with pytest.raises(ValueError, match="model.graph"):
        DeepWalk(graph="song").fit(split)
    with pytest.raises(ValueError, match="model.input"):
        DeepWalk(input="parquet").fit(split)
    with pytest.raises(ValueError, match="model.walks_per_node"):
        DeepWalk(walks_per_node=0).fit(split)


def test_config_instantiates_with_all_params():
    from hydra.utils import instantiate
    from sklearn.base import clone

    cfg = OmegaConf.create({"seed": 5, "model": OmegaConf.load(ROOT / "conf" / "model" / "deepwalk.yaml")})
    assert list(cfg.model.pop("tasks")) == ["listening"]
    m = instantiate(cfg.model, _convert_="all")
    assert isinstance(m, DeepWalk) and m.seed == 5 and m.graph == "uss" and m.name == "deepwalk"
    assert m.input in ("corpus_file", "sentences")
    assert clone(m).get_params() == m.get_params()
