"""Graphs of a listening split and uniform DeepWalk random walks over them (seed 001, §3).

Graphs (`build_graph`), symmetric, unweighted, no duplicate edges, as a scipy CSR adjacency:
- ``uss``: user <-> each of its training sessions, session <-> each distinct song in it.
  Node ids: users [0, U), training sessions [U, U+S), songs [U+S, U+S+I).
- ``us``: user <-> each distinct song it heard in training. Node ids: users [0, U), songs [U, U+I).
`GraphLayout` maps node ids back to users / sessions / songs.

Walks (`random_walks`): DeepWalk's uniform walks (Perozzi et al. 2014, phanein/deepwalk): every node is the
root of R walks (R passes; the order of the roots is shuffled per pass, seeded), each walk has L nodes
(L counts nodes, like phanein's ``while len(path) < path_length``) and steps to a uniformly drawn neighbour.
A numba ``parallel=True`` kernel runs over the CSR arrays (each thread advances blocks of 64 walks in
lockstep, which overlaps their cache misses); each walk draws from its own splitmix64 stream
seeded by (seed, walk index), so the result depends only on the seed, never on the thread count or the
scheduling. Isolated nodes: the walk stops, as in phanein (its row is the root then -1 padding; the
text writer and `walks_to_sentences` drop the -1s). In a connected graph (every listening graph: each node
has an edge) no walk stops.

`write_walks_text` turns the walk matrix into gensim's ``corpus_file`` format (one walk per line, decimal
node ids separated by single spaces, ``\\n`` after each line) with a numba formatter, byte-identical to
`walks_to_text_naive`; `benchmarks/bench_walks.py` times both.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange
from scipy import sparse

log = logging.getLogger(__name__)

GRAPH_KINDS = ("uss", "us")


@dataclass(frozen=True)
class GraphLayout:
    """Node id layout of a graph kind over a split (see module docstring)."""

    kind: str
    n_users: int
    n_sessions: int  # 0 for "us"
    n_items: int

    @classmethod
    def of(cls, split, kind: str = "uss") -> "GraphLayout":
        if kind not in GRAPH_KINDS:
            raise ValueError(f"graph kind {kind!r}: expected one of {GRAPH_KINDS}")
        n_sessions = int(split.n_train_sessions) if kind == "uss" else 0
        return cls(kind, int(split.n_users), n_sessions, int(split.n_items))

    @property
    def user_offset(self) -> int:
        return 0

    @property
    def session_offset(self) -> int | None:
        return self.n_users if self.kind == "uss" else None

    @property
    def item_offset(self) -> int:
        return self.n_users + self.n_sessions

    @property
    def n_nodes(self) -> int:
        return self.n_users + self.n_sessions + self.n_items

    def user_nodes(self, users) -> np.ndarray:
        return np.asarray(users, dtype=np.int64) + self.user_offset

    def session_nodes(self, sessions) -> np.ndarray:
        if self.kind != "uss":
            raise ValueError("graph 'us' has no session nodes")
        return np.asarray(sessions, dtype=np.int64) + self.session_offset

    def item_nodes(self, items) -> np.ndarray:
        return np.asarray(items, dtype=np.int64) + self.item_offset

    def node_kind(self, nodes) -> np.ndarray:
        """'user' / 'session' / 'item' per node id."""
        nodes = np.asarray(nodes)
        out = np.full(nodes.shape, "item", dtype=object)
        out[nodes < self.item_offset] = "session"
        out[nodes < self.n_users] = "user"
        return out

    def split_rows(self, node_array: np.ndarray):
        """(users, sessions or None, items) row blocks of an array indexed by node id."""
        users = node_array[: self.n_users]
        sessions = node_array[self.n_users: self.item_offset] if self.kind == "uss" else None
        return users, sessions, node_array[self.item_offset: self.n_nodes]


def _symmetric(a: np.ndarray, b: np.ndarray, n: int) -> sparse.csr_matrix:
    """Unweighted symmetric CSR from (deduplicated, a != b) undirected edges a-b."""
    rows = np.concatenate([a, b]).astype(np.int32)
    cols = np.concatenate([b, a]).astype(np.int32)
    m = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, n))
    m.sum_duplicates()  # no-op for deduplicated input; also sorts the indices
    m.data[:] = 1.0
    return m


def _unique_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (a, b) pairs, sorted."""
    width = int(b.max(initial=0)) + 1
    key = np.unique(a.astype(np.int64) * width + b.astype(np.int64))
    return key // width, key % width


def build_graph(split, kind: str = "uss") -> sparse.csr_matrix:
    """Adjacency of the split's training events as a symmetric 0/1 float32 CSR with sorted indices.

    `split` needs ``train`` (columns user, session, item) and ``n_users``, ``n_items``,
    ``n_train_sessions`` (ListeningSplit or anything shaped like it).
    """
    layout = GraphLayout.of(split, kind)
    train = split.train
    users = train["user"].to_numpy(np.int64)
    items = train["item"].to_numpy(np.int64)
    if kind == "uss":
        sessions = train["session"].to_numpy(np.int64)
        s_u, u = _unique_pairs(sessions, users)
        s_i, i = _unique_pairs(sessions, items)
        if len(np.unique(s_u)) != len(s_u):
            raise ValueError("a training session belongs to more than one user")
        a = np.concatenate([u + layout.user_offset, s_i + layout.session_offset])
        b = np.concatenate([s_u + layout.session_offset, i + layout.item_offset])
    else:
        u, i = _unique_pairs(users, items)
        a, b = u + layout.user_offset, i + layout.item_offset
    return _symmetric(a, b, layout.n_nodes)


# ---------------------------------------------------------------------------------------------
# walks

@njit(cache=True, inline="always")
def _splitmix64(x):
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, parallel=True, nogil=True)
def _walk_kernel(indptr, indices, starts, first_walk, seed, walk_length, out, block):
    """out[j] = walk from starts[j]; walk number first_walk + j draws from its own stream.

    Threads take blocks of `block` walks and advance the block's walks in lockstep, one step each per
    pass: the walks' neighbour loads are independent, so the CPU overlaps their cache misses (measured
    ~4-5x faster than one walk at a time on the 30Music graph). Results do not depend on `block`.
    """
    n = starts.shape[0]
    for blk in prange((n + block - 1) // block):
        lo = blk * block
        m = min(lo + block, n) - lo
        state = np.empty(block, np.uint64)
        cur = np.empty(block, np.int64)
        for b in range(m):
            # the walk's own splitmix64 stream, keyed by (seed, walk number)
            state[b] = _splitmix64(seed ^ (np.uint64(first_walk + lo + b) * np.uint64(0xD1B54A32D192ED03)))
            cur[b] = starts[lo + b]
            out[lo + b, 0] = starts[lo + b]
        for t in range(1, walk_length):
            for b in range(m):
                c = cur[b]
                if c < 0:  # stopped walk: -1 padding
                    out[lo + b, t] = -1
                    continue
                s = indptr[c]
                deg = indptr[c + 1] - s
                if deg == 0:  # isolated node: the walk stops (phanein)
                    cur[b] = -1
                    out[lo + b, t] = -1
                    continue
                z = _splitmix64(state[b])  # next output of the walk's stream
                state[b] += np.uint64(0x9E3779B97F4A7C15)
                # Lemire's multiply-shift: uniform in [0, deg) from the top 32 bits
                k = ((z >> np.uint64(32)) * np.uint64(deg)) >> np.uint64(32)
                c = indices[s + np.int64(k)]
                cur[b] = c
                out[lo + b, t] = c


def walk_starts(n_nodes: int, walks_per_node: int, seed: int) -> np.ndarray:
    """Roots of all walks: R passes, each a seeded permutation of all nodes (int32, R*N)."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.permutation(n_nodes).astype(np.int32) for _ in range(walks_per_node)]) \
        if walks_per_node > 0 else np.zeros(0, np.int32)


def random_walks(csr: sparse.csr_matrix, walks_per_node: int = 20, walk_length: int = 40, seed: int = 0,
                 n_threads: int | None = None, chunk_size: int = 1 << 18, progress: bool = True,
                 block: int = 64) -> np.ndarray:
    """Uniform DeepWalk walks over `csr` as an int32 matrix (walks_per_node * n_nodes, walk_length).

    Row p*N + j is pass p's j-th walk; its root is the j-th node of pass p's seeded permutation. Repeatable
    for a seed on any number of threads (`n_threads`, default all numba threads) and any `block` (walks a
    thread advances in lockstep, see `_walk_kernel`). A progress bar (when `progress`; mediaml.progress hides it
    when stderr is not a terminal) advances per chunk of `chunk_size` walks.
    """
    if walk_length < 1:
        raise ValueError(f"walk_length={walk_length}: must be >= 1")
    n = csr.shape[0]
    indptr = np.ascontiguousarray(csr.indptr, dtype=np.int64)
    indices = np.ascontiguousarray(csr.indices, dtype=np.int32)
    starts = walk_starts(n, int(walks_per_node), seed)
    out = np.empty((len(starts), walk_length), dtype=np.int32)
    seed64 = np.uint64(_splitmix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF)))
    old = numba.get_num_threads()
    if n_threads:
        numba.set_num_threads(min(int(n_threads), numba.config.NUMBA_NUM_THREADS))
    try:
        bar = None
        if progress:
            from mediaml.progress import bar as progress_bar

            bar = progress_bar(total=len(starts), desc="random walks", unit="walk", unit_scale=True)
        for lo in range(0, len(starts), chunk_size):
            hi = min(lo + chunk_size, len(starts))
            _walk_kernel(indptr, indices, starts[lo:hi], lo, seed64, walk_length, out[lo:hi], int(block))
            if bar is not None:
                bar.update(hi - lo)
        if bar is not None:
            bar.close()
    finally:
        numba.set_num_threads(old)
    return out


# ---------------------------------------------------------------------------------------------
# gensim input

def walks_to_sentences(walks: np.ndarray) -> list[list[str]]:
    """Walks as gensim ``sentences``: lists of decimal node-id strings (-1 padding dropped)."""
    top = int(walks.max(initial=0))
    if top < 4 * walks.size + 1024:  # dense ids (node ids): one str per id, made once
        words = np.char.mod("%d", np.arange(top + 1)).tolist()
    else:  # sparse large ids: only the ones present
        words = {int(v): str(v) for v in np.unique(walks)}
    if (walks < 0).any():
        return [[words[v] for v in row if v >= 0] for row in walks.tolist()]
    return [[words[v] for v in row] for row in walks.tolist()]


def walks_to_text_naive(walks: np.ndarray) -> bytes:
    """Reference writer: one line per walk, ids joined by spaces (-1 dropped), '\\n'-terminated."""
    return "".join(" ".join(str(v) for v in row if v >= 0) + "\n" for row in walks.tolist()).encode()


@njit(cache=True, inline="always")
def _n_digits(v):
    d = 1
    while v >= 10:
        v //= 10
        d += 1
    return d


@njit(cache=True, parallel=True)
def _row_bytes(walks, out_len):
    for r in prange(walks.shape[0]):
        s = 0
        for c in range(walks.shape[1]):
            v = walks[r, c]
            if v >= 0:
                s += _n_digits(v) + 1  # digits + separator (space, or the newline for the last)
        out_len[r] = max(s, 1)  # an empty row still gets its newline


@njit(cache=True, parallel=True)
def _format_rows(walks, offsets, buf):
    for r in prange(walks.shape[0]):
        pos = offsets[r]
        first = True
        for c in range(walks.shape[1]):
            v = walks[r, c]
            if v < 0:
                continue
            if not first:
                buf[pos] = 32  # ' '
                pos += 1
            first = False
            d = _n_digits(v)
            for k in range(d - 1, -1, -1):
                buf[pos + k] = 48 + v % 10
                v //= 10
            pos += d
        buf[pos] = 10  # '\n'


def walks_to_text(walks: np.ndarray) -> bytes:
    """The bytes of `walks_to_text_naive`, formatted by a parallel numba kernel."""
    return _text_buffer(walks).tobytes()


def _text_buffer(walks: np.ndarray) -> np.ndarray:
    walks = np.ascontiguousarray(walks, dtype=np.int32)
    lens = np.empty(walks.shape[0], dtype=np.int64)
    _row_bytes(walks, lens)
    offsets = np.zeros(walks.shape[0] + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    buf = np.empty(int(offsets[-1]), dtype=np.uint8)
    _format_rows(walks, offsets, buf)
    return buf


def write_walks_text(walks: np.ndarray, path: str | os.PathLike, chunk_rows: int = 1 << 16) -> int:
    """Write `walks` to `path` in gensim's corpus_file format, chunk by chunk; returns the bytes written."""
    written = 0
    with open(path, "wb") as fh:
        for lo in range(0, walks.shape[0], chunk_rows):
            data = _text_buffer(walks[lo: lo + chunk_rows])
            fh.write(data)  # the uint8 buffer itself, no bytes copy
            written += len(data)
    return written
