"""Graphs of a listening split and the numba DeepWalk walker / text writer (mediaml.tasks.listening.walks)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mediaml.tasks.listening.walks import (GraphLayout, build_graph, random_walks, walks_to_sentences, walks_to_text,
                                  walks_to_text_naive, write_walks_text)


def tiny_split():
    # user 0: session 0 = songs 0, 1, 1 (repeat); session 1 = song 1. user 1: session 2 = songs 1, 2, 2.
    train = pd.DataFrame({"user": [0, 0, 0, 0, 1, 1, 1], "session": [0, 0, 0, 1, 2, 2, 2],
                          "item": [0, 1, 1, 1, 1, 2, 2]}, dtype=np.int32)
    return SimpleNamespace(train=train, n_users=2, n_items=3, n_train_sessions=3)


def edge_set(adj) -> set[tuple[int, int]]:
    coo = adj.tocoo()
    return {(int(a), int(b)) for a, b in zip(coo.row, coo.col) if a < b}


def check_simple_symmetric(adj):
    assert adj.has_canonical_format  # sorted, no duplicate entries
    assert (adj.data == 1).all()
    assert abs(adj - adj.T).nnz == 0
    assert adj.diagonal().sum() == 0


def test_uss_graph_edges_are_user_session_and_session_song():
    split = tiny_split()
    adj = build_graph(split, "uss")
    lay = GraphLayout.of(split, "uss")
    assert adj.shape == (8, 8) and lay.n_nodes == 8
    u, s, i = lay.user_nodes, lay.session_nodes, lay.item_nodes
    expected = {(u(0)[()], s(0)[()]), (u(0)[()], s(1)[()]), (u(1)[()], s(2)[()]),
                (s(0)[()], i(0)[()]), (s(0)[()], i(1)[()]), (s(1)[()], i(1)[()]),
                (s(2)[()], i(1)[()]), (s(2)[()], i(2)[()])}
    assert edge_set(adj) == {tuple(map(int, e)) for e in expected}
    check_simple_symmetric(adj)
    assert list(lay.node_kind(np.arange(8))) == ["user"] * 2 + ["session"] * 3 + ["item"] * 3


def test_us_graph_edges_are_user_song():
    split = tiny_split()
    adj = build_graph(split, "us")
    lay = GraphLayout.of(split, "us")
    assert adj.shape == (5, 5) and lay.item_offset == 2 and lay.session_offset is None
    assert edge_set(adj) == {(0, 2), (0, 3), (1, 3), (1, 4)}
    check_simple_symmetric(adj)
    users, sessions, items = lay.split_rows(np.arange(5))
    assert list(users) == [0, 1] and sessions is None and list(items) == [2, 3, 4]
    with pytest.raises(ValueError, match="no session nodes"):
        lay.session_nodes([0])
    with pytest.raises(ValueError, match="graph kind"):
        build_graph(split, "usx")


def test_session_with_two_users_is_an_error():
    split = tiny_split()
    split.train.loc[2, "user"] = 1  # session 0 now has users 0 and 1
    with pytest.raises(ValueError, match="more than one user"):
        build_graph(split, "uss")


def random_split(seed=0, n_users=30, n_sessions=80, n_items=120, n_events=600):
    rng = np.random.default_rng(seed)
    session = rng.integers(0, n_sessions, n_events)
    owner = rng.integers(0, n_users, n_sessions)
    train = pd.DataFrame({"user": owner[session], "session": session, "item": rng.integers(0, n_items, n_events)})
    return SimpleNamespace(train=train, n_users=n_users, n_items=n_items, n_train_sessions=n_sessions)


@pytest.fixture(scope="module")
def graph():
    return build_graph(random_split(), "uss")


def test_walks_shape_edges_and_roots(graph):
    R, L = 4, 12
    n = graph.shape[0]
    w = random_walks(graph, R, L, seed=3, progress=False)
    assert w.shape == (R * n, L) and w.dtype == np.int32
    deg = np.diff(graph.indptr)
    isolated = deg[w[:, 0]] == 0
    assert (w[isolated, 1:] == -1).all()  # walks from isolated nodes stop at once
    full = w[~isolated]
    assert (full >= 0).all()
    a, b = full[:, :-1].ravel(), full[:, 1:].ravel()
    assert (np.asarray(graph[a, b]).ravel() == 1).all()  # every step is an edge
    assert (np.bincount(w[:, 0], minlength=n) == R).all()  # every node is the root of R walks
    for p in range(R):  # each pass is a permutation of the nodes
        assert sorted(w[p * n:(p + 1) * n, 0]) == list(range(n))


def test_walks_repeatable_per_seed_and_thread_count(graph):
    a = random_walks(graph, 3, 10, seed=7, n_threads=2, progress=False)
    b = random_walks(graph, 3, 10, seed=7, n_threads=1, progress=False, chunk_size=17, block=5)
    c = random_walks(graph, 3, 10, seed=8, progress=False)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (a[:, 1:] != c[:, 1:]).mean() > 0.5


def test_isolated_node_walk_stops():
    split = tiny_split()
    split.n_items = 4  # song 3 has no event: an isolated node
    adj = build_graph(split, "uss")
    w = random_walks(adj, 2, 5, seed=0, progress=False)
    rows = w[w[:, 0] == 8]
    assert rows.shape == (2, 5) and (rows[:, 1:] == -1).all()
    assert (w[w[:, 0] != 8] >= 0).all()


def test_steps_are_uniform_over_neighbours():
    # star: centre 0 with 4 leaves; from the centre each leaf should be drawn ~1/4 of the time
    from scipy import sparse

    rows = np.array([0, 0, 0, 0, 1, 2, 3, 4])
    cols = np.array([1, 2, 3, 4, 0, 0, 0, 0])
    star = sparse.csr_matrix((np.ones(8, np.float32), (rows, cols)), shape=(5, 5))
    w = random_walks(star, 2000, 3, seed=1, progress=False)
    counts = np.bincount(w[w[:, 0] == 0, 1], minlength=5)[1:]
    assert counts.sum() == 2000 and np.abs(counts / 2000 - 0.25).max() < 0.04


def test_text_writer_is_byte_identical_to_naive(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.choice(np.array([0, 7, 9, 10, 99, 100, 12345, 2_147_483_647], np.int32), size=(50, 9))
    w[3, 1:] = -1  # a stopped walk
    w[4, :] = -1  # (not produced by the walker) an empty line
    naive = walks_to_text_naive(w)
    assert walks_to_text(w) == naive
    n = write_walks_text(w, tmp_path / "w.txt", chunk_rows=7)
    assert (tmp_path / "w.txt").read_bytes() == naive and n == len(naive)
    assert naive.decode().splitlines()[3] == str(w[3, 0])
    assert [" ".join(s) for s in walks_to_sentences(w)] == naive.decode().splitlines()


def test_sentences_match_walks(graph):
    w = random_walks(graph, 1, 6, seed=0, progress=False)
    s = walks_to_sentences(w)
    assert len(s) == len(w) and s[5] == [str(v) for v in w[5] if v >= 0]
