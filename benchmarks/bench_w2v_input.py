"""How DeepWalk's walks reach gensim: `corpus_file` (numba text writer) vs lists of str (`sentences`).

    MEDIAML_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_w2v_input.py [--walks 40000] [--rounds 2]

Same 30Music USS graph as benchmarks/bench_walks.py (all 5 slices, given SessionId, 71,823 nodes).
Walks: R=1, L=40 (seed 0), the first `--walks` of them (a moderate slice: a full R=20 corpus takes many
minutes per fit). Both modes train the same `Word2Vec(sg=1, hs=1, negative=0, window=6, vector_size=128,
min_count=0, workers=2, epochs=1, seed=0)`, alternating in one process, order swapped each round; the time
of a mode = preparing its input (write the text file / build the str lists) + Word2Vec (vocab + train).
Prints per-round seconds, words/s and the ratio sentences/corpus_file (> 1: corpus_file faster).
Timings depend on the machine's load (printed): compare the ratios.

Measured 2026-11-23 (load1 3-5 on 2 cores, other jobs running), sentences/corpus_file total time:
  --walks 40000 (1.6 M words): 1.04 (1.04, 1.04); Word2Vec ~98 k (file) vs ~94 k (str) words/s
  --walks 20000 (0.8 M words): 1.35 (1.58, 1.12); ~148 k vs ~117 k words/s
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_walks import load1, load_30music_split  # noqa: E402

from mediaml.tasks.listening.walks import build_graph, random_walks, walks_to_sentences, write_walks_text  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--walks", type=int, default=40000)
    ap.add_argument("--walk-length", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from gensim.models import Word2Vec

    logging.getLogger("gensim").setLevel(logging.WARNING)
    data_dir = Path(os.environ.get("MEDIAML_DATA_DIR", HERE.parents[1] / "shared" / "data"))
    adj = build_graph(load_30music_split(data_dir), "uss")
    walks = random_walks(adj, 1, args.walk_length, seed=0, progress=False)[: args.walks]
    n_words = walks.size
    print(f"{len(walks):,} walks x {args.walk_length} = {n_words:,} words over {adj.shape[0]:,} nodes; "
          f"workers={args.workers}; load1 {load1():.2f}", flush=True)
    kw = dict(sg=1, hs=1, negative=0, window=6, vector_size=128, min_count=0, workers=args.workers, epochs=1,
              seed=0)

    def corpus_file():
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            write_walks_text(walks, Path(tmp) / "w.txt")
            prep = time.perf_counter() - t
            t = time.perf_counter()
            Word2Vec(corpus_file=str(Path(tmp) / "w.txt"), **kw)
            return prep, time.perf_counter() - t

    def sentences():
        t = time.perf_counter()
        s = walks_to_sentences(walks)
        prep = time.perf_counter() - t
        t = time.perf_counter()
        Word2Vec(s, **kw)
        return prep, time.perf_counter() - t

    modes = {"corpus_file": corpus_file, "sentences": sentences}
    res = {k: [] for k in modes}
    for rnd in range(args.rounds):
        order = list(modes) if rnd % 2 == 0 else list(modes)[::-1]
        for k in order:
            res[k].append(modes[k]())
            prep, w2v = res[k][-1]
            print(f"round {rnd + 1} {k:11s}: prep {prep:6.2f} s + word2vec {w2v:6.2f} s = {prep + w2v:6.2f} s "
                  f"({n_words / w2v:,.0f} words/s; load1 {load1():.2f})", flush=True)
    tot = {k: [p + w for p, w in v] for k, v in res.items()}
    ratio = [s / c for s, c in zip(tot["sentences"], tot["corpus_file"])]
    ratio_w2v = [s[1] / c[1] for s, c in zip(res["sentences"], res["corpus_file"])]
    for k in modes:
        print(f"{k:11s} median total {np.median(tot[k]):.2f} s, word2vec "
              f"{np.median([n_words / w for _, w in res[k]]):,.0f} words/s")
    print(f"sentences/corpus_file time: total {np.median(ratio):.2f} (" + ", ".join(f"{r:.2f}" for r in ratio)
          + f"), word2vec alone {np.median(ratio_w2v):.2f} (" + ", ".join(f"{r:.2f}" for r in ratio_w2v) + ")")


if __name__ == "__main__":
    main()
