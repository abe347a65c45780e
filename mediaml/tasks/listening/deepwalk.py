"""DeepWalk on a listening graph (seed 001, §3-§4.2): uniform random walks + skip-gram with hierarchical softmax.

``DeepWalk(graph="uss")`` is the paper's method (user-session-song graph), ``graph="us"`` its U-S baseline
(user-song graph). ``fit(split)``:
1. graph: `mediaml.tasks.listening.walks.build_graph` (node ids: users, then sessions (uss), then songs);
2. walks: `walks_per_node` R uniform walks of `walk_length` L nodes from every node (numba, seeded, repeatable);
3. embedding: gensim ``Word2Vec(sg=1, hs=1, negative=0, window=w, vector_size=d, min_count=0)`` over the
   walks, tokens are decimal node ids; vectors are mapped back by id into ``item_vectors_``,
   ``user_vectors_`` and ``session_vectors_`` (None for graph=us: session queries then use the mean of the
   session's song vectors, see `EmbeddingRecommender`). Scored by -squared Euclidean distance, as the paper.

How the walks reach gensim (``input``): ``"corpus_file"`` writes them with the numba text writer to a temp
file and trains from it (gensim's Cython file reader, no GIL); ``"sentences"`` hands gensim lists of str.
Measured by ``benchmarks/bench_w2v_input.py`` on the 30Music USS walks (2 workers, d=128, w=6, load 3-5 on
2 cores), time sentences / corpus_file (prep + Word2Vec): 1.04 (1.04, 1.04) on 1.6 M words (~95-100 k
words/s both), 1.35 (1.58, 1.12) on 0.8 M words. And preparing the input for the paper's R=20 corpus (57.5 M
words): text writer ~2-3 s vs lists of str ~23 s (``benchmarks/bench_walks.py``). So corpus_file is the
default: never slower, a few % faster in Word2Vec, and ~20 s cheaper to prepare at the paper's size.

Reproducibility: walks are repeatable for a seed on any thread count. gensim with ``workers > 1`` is not
bit-reproducible (threads race on the shared weights; with corpus_file each worker reads its own part of
the file); with ``workers=1`` and a seed, the vectors are identical between fits in one process
(``tests/test_deepwalk.py`` checks this for both inputs).

Nodes missing from the vocabulary (only possible with ``min_count > 1``) get zero vectors.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time

import numpy as np

from mediaml.errors import ConfigError
from mediaml.tasks.listening.recommenders import EmbeddingRecommender
from mediaml.tasks.listening.walks import (GRAPH_KINDS, GraphLayout, build_graph, random_walks, walks_to_sentences,
                                  write_walks_text)

log = logging.getLogger(__name__)
INPUTS = ("corpus_file", "sentences")


class DeepWalk(EmbeddingRecommender):
    metric = "euclidean"

    def __init__(self, graph: str = "uss", dimensions: int = 128, walk_length: int = 40, walks_per_node: int = 20,
                 window: int = 6, workers: int = 2, epochs: int = 1, seed: int = 0, input: str = "corpus_file",
                 min_count: int = 0, sample: float = 1e-3, alpha: float = 0.025, progress: bool = True,
                 name: str = "deepwalk"):
        self.graph = graph
        self.dimensions = dimensions
        self.walk_length = walk_length
        self.walks_per_node = walks_per_node
        self.window = window
        self.workers = workers
        self.epochs = epochs
        self.seed = seed
        self.input = input
        self.min_count = min_count
        self.sample = sample
        self.alpha = alpha
        self.progress = progress
        self.name = name

    def _check_params(self) -> None:
        if self.graph not in GRAPH_KINDS:
            raise ConfigError(f"model.graph={self.graph!r}: expected one of {GRAPH_KINDS}")
        if self.input not in INPUTS:
            raise ConfigError(f"model.input={self.input!r}: expected one of {INPUTS}")
        for p in ("dimensions", "walk_length", "walks_per_node", "window", "workers", "epochs"):
            if int(getattr(self, p)) < 1:
                raise ConfigError(f"model.{p}={getattr(self, p)!r}: must be >= 1")

    def _word2vec(self, walks: np.ndarray, timings: dict):
        from gensim.models import Word2Vec

        logging.getLogger("gensim").setLevel(logging.WARNING)  # per-chunk INFO lines drown the run log
        kw = dict(sg=1, hs=1, negative=0, window=int(self.window), vector_size=int(self.dimensions),
                  min_count=int(self.min_count), sample=float(self.sample), alpha=float(self.alpha),
                  workers=int(self.workers), epochs=int(self.epochs), seed=int(self.seed))
        from mediaml.progress import Word2VecProgress

        # A bar over the skip-gram epochs, fed by gensim's own progress lines (only when self.progress).
        bar = Word2VecProgress(int(self.epochs), desc=f"skip-gram d={int(self.dimensions)}") if self.progress \
            else contextlib.nullcontext()
        if self.input == "sentences":
            t0 = time.perf_counter()
            sentences = walks_to_sentences(walks)
            timings["write_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            with bar:
                model = Word2Vec(sentences, **kw)
            timings["w2v_s"] = time.perf_counter() - t0
            return model
        with tempfile.TemporaryDirectory(prefix="deepwalk_") as tmp:
            path = os.path.join(tmp, "walks.txt")
            t0 = time.perf_counter()
            write_walks_text(walks, path)
            timings["write_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            with bar:
                model = Word2Vec(corpus_file=path, **kw)
            timings["w2v_s"] = time.perf_counter() - t0
        return model

    def fit(self, split) -> "DeepWalk":
        self._check_params()
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        layout = GraphLayout.of(split, self.graph)
        adj = build_graph(split, self.graph)
        timings["graph_s"] = time.perf_counter() - t0
        log.info("%s d=%d: %s graph, %d nodes, %d edges", self.name, int(self.dimensions), self.graph, adj.shape[0],
                 adj.nnz // 2)

        t0 = time.perf_counter()
        walks = random_walks(adj, int(self.walks_per_node), int(self.walk_length), seed=int(self.seed),
                             n_threads=int(self.workers), progress=bool(self.progress))
        timings["walks_s"] = time.perf_counter() - t0
        self.walks_shape_ = tuple(walks.shape)

        w2v = self._word2vec(walks, timings)
        del walks
        vectors = np.zeros((layout.n_nodes, int(self.dimensions)), dtype=np.float32)
        keys = np.asarray(w2v.wv.index_to_key, dtype=np.int64)
        vectors[keys] = w2v.wv.vectors
        self.n_words_ = int(w2v.corpus_total_words)
        self.w2v_words_per_s_ = self.n_words_ * int(self.epochs) / max(timings["w2v_s"], 1e-9)
        log.info("%s d=%d: %d walks x %d nodes, word2vec %.0f words/s; %s", self.name, int(self.dimensions),
                 *self.walks_shape_,
                 self.w2v_words_per_s_, ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))

        self.layout_ = layout
        self.user_vectors_, self.session_vectors_, self.item_vectors_ = layout.split_rows(vectors)
        self.timings_ = timings
        self._keep_sessions(split)
        return self
