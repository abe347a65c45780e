"""The persona pipeline's LDA step: scikit-learn against gensim LdaMulticore, on the real matrix.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MEDIAML_DATA_DIR=../shared/data \\
        nice -n 10 .venv/bin/python benchmarks/bench_personas_lda.py [--topics 100] [--personas 100] [--seed 0] [--iters 10]

The matrix is exactly the pipeline's (`task=personas dataset=cmu_personas model=lda_topics`,
default fit set: a seeded 20,000 of the characters with >= 3 words + the 389 gold characters):
vocabulary -> Word2Vec -> agglomerative word topics -> characters x (3 x n_topics) counts. Then, on
that same matrix, LDA with n_components = n_personas:
  sklearn   LatentDirichletAllocation(learning_method="batch", max_iter=iters, n_jobs=1)  (the pipeline's)
  gensim    LdaMulticore(workers=2) and (workers=1), passes=iters, chunksize 2000, iterations 50
Both with symmetric priors 1/n_personas (sklearn's defaults; gensim alpha="symmetric", eta=None).
"Comparable iterations": sklearn batch EM makes `iters` full passes over the data; gensim makes
`passes=iters` passes of online variational Bayes. Each fitted model assigns every gold character
its most probable component, scored by VI against TV Tropes (443 items) next to same-size random.
Prints one row per implementation and the time / VI ratios against sklearn.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(topics: int, personas: int, seed: int, iters: int):
    from hydra import compose, initialize_config_dir

    import mediaml  # noqa: F401  (resolvers)
    from mediaml.tasks.personas.models import PersonaLDA
    from mediaml.tasks.personas.task import PersonasTask
    from mediaml.tracking.tracker import Tracker

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["task=personas", "dataset=cmu_personas", "logger=none",
                                                      f"seed={seed}"])
    task = PersonasTask(cfg)
    data = task.dataset.load()
    with tempfile.TemporaryDirectory() as tmp:
        rows = task._fit_rows(data, Tracker(tmp))
    fit = data.chars.iloc[rows].reset_index(drop=True)
    model = PersonaLDA(n_personas=personas, n_topics=topics, lda_max_iter=iters, random_state=seed)
    t0 = time.perf_counter()
    model.vocab_ = model._vocab(fit)
    model.word_topic_ = model._word_topics(fit)
    model.column_ = dict(zip(model.vocab_, model.word_topic_))
    model.n_columns_ = int(model.word_topic_.max()) + 1
    X = model.transform_counts(fit)
    G = model.transform_counts(data.chars.iloc[data.gold["row"].to_numpy()].reset_index(drop=True))
    print(f"matrix: {X.shape[0]} characters x {X.shape[1]} columns, {int(X.sum())} counts "
          f"(vocab {len(model.vocab_)}, word topics in {time.perf_counter() - t0:.1f} s)")
    return X, G, data.gold


def score(pred, gold, seed):
    from mediaml.tasks.personas.clustering import score as vi_score

    return vi_score(pred, gold["trope"].to_numpy(), groups=gold["char_id"].to_numpy(), n_random=20, seed=seed)


def run_sklearn(X, G, personas, iters, seed):
    from sklearn.decomposition import LatentDirichletAllocation

    t0 = time.perf_counter()
    lda = LatentDirichletAllocation(n_components=personas, max_iter=iters, learning_method="batch",
                                    random_state=seed, n_jobs=1).fit(X)
    fit_s = time.perf_counter() - t0
    return fit_s, lda.transform(G).argmax(axis=1)


def run_gensim(X, G, personas, iters, seed, workers):
    from gensim.matutils import Sparse2Corpus
    from gensim.models import LdaMulticore

    logging.getLogger("gensim").setLevel(logging.WARNING)
    corpus = list(Sparse2Corpus(X.astype(np.float64), documents_columns=False))
    id2word = {j: str(j) for j in range(X.shape[1])}
    t0 = time.perf_counter()
    lda = LdaMulticore(corpus, num_topics=personas, id2word=id2word, workers=workers, passes=iters,
                       chunksize=2000, iterations=50, random_state=seed, alpha="symmetric", eta=None)
    fit_s = time.perf_counter() - t0
    theta = np.zeros((G.shape[0], personas))
    for i, doc in enumerate(Sparse2Corpus(G.astype(np.float64), documents_columns=False)):
        for k, p in lda.get_document_topics(doc, minimum_probability=0.0):
            theta[i, k] = p
    return fit_s, theta.argmax(axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--topics", type=int, default=100)
    ap.add_argument("--personas", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iters", type=int, default=10)
    a = ap.parse_args()
    X, G, gold = build(a.topics, a.personas, a.seed, a.iters)
    rows = []
    for name, fn in (("sklearn batch, n_jobs=1", lambda: run_sklearn(X, G, a.personas, a.iters, a.seed)),
                     ("gensim LdaMulticore workers=2", lambda: run_gensim(X, G, a.personas, a.iters, a.seed, 2)),
                     ("gensim LdaMulticore workers=1", lambda: run_gensim(X, G, a.personas, a.iters, a.seed, 1))):
        fit_s, pred = fn()
        m = score(pred, gold, a.seed)
        rows.append((name, fit_s, m))
        print(f"{name:32s} fit {fit_s:7.1f} s  VI {m['val/vi']:.3f} nats (random {m['val/vi_random']:.3f} ± "
              f"{m['val/vi_random_std']:.3f}, {int(m['data/eval_pred_clusters'])} clusters)  AMI {m['val/ami']:.3f}",
              flush=True)
    base_s, base = rows[0][1], rows[0][2]
    print("\nagainst sklearn:")
    for name, fit_s, m in rows[1:]:
        print(f"  {name:32s} time x{fit_s / base_s:.2f}  VI {m['val/vi'] - base['val/vi']:+.3f} nats  "
              f"vi_gain {m['val/vi_random'] - m['val/vi']:+.3f} vs {base['val/vi_random'] - base['val/vi']:+.3f}")


if __name__ == "__main__":
    main()
