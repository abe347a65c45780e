"""The two retrieval experiments of paper seed 001, §6, as exact top-k search in batches.

For every evaluated test session a query is chosen, the model scores all items for it
(:meth:`~mediaml.tasks.listening.recommenders.Recommender.score`), the k best items are retrieved and compared with
the session's relevant songs:

* ``exp1`` (similar songs, §6.1): query = the session's FIRST song in time order (kind "item"); relevant =
  the session's other distinct songs; the query song itself is never retrieved. Sessions with no other
  song are skipped (``data/eval_exp1_skipped_no_relevant``).
* ``exp2_user`` (recommendation, §6.2a): query = the session's user; relevant = the session's distinct songs.
* ``exp2_session`` (§6.2b): query = a reference TRAINING session of the same user: the most recent one
  on the same device when the split has a device field (none on that device: the most recent one,
  counted in ``data/eval_exp2_session_device_fallback``), otherwise the most recent one.

recall@k = |relevant ∩ top-k| / |relevant|, precision@k = |relevant ∩ top-k| / k (k = the number retrieved,
i.e. min(k, number of candidate items), the paper's |S_r|), both averaged over the evaluated sessions.
With ``n_eval_sessions`` a seeded sample of test sessions is drawn once (before any skip) so that every
model evaluated with the same split and seed is measured on the same sessions.

Search is exact and vectorised per batch: a partition for the top max(k), ties broken by the lower
item index (deterministic whatever the batch size), sorted once so all k come from one nested list; hits
are looked up in the batch's sparse relevance rows. No Python loop per query.
"""
from __future__ import annotations

import logging
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import sparse

log = logging.getLogger(__name__)

DEFAULT_KS = tuple(range(10, 55, 5))
EXPERIMENTS = ("exp1", "exp2_user", "exp2_session")
KIND = {"exp1": "item", "exp2_user": "user", "exp2_session": "session"}
_TIE_CHUNK = 128  # rows fixed at once when ties cross the top-k boundary (bounds memory to chunk x n_items)


# --------------------------------------------------------------------------------------------------- top-k
def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indexes of the k best items per row, best first; ties broken by the lower item index.

    ``scores`` (rows x n_items) is used as is (NaN must already be replaced). Exact: the k-th best value t
    of each row comes from ``np.partition`` (values only: ``argpartition`` is several times slower on rows
    full of ties, like popularity's play counts); a row keeps every item > t and the lowest-indexed items
    equal to t, which makes the result independent of the batch it is computed in.
    """
    b, n = scores.shape
    k = int(min(k, n))
    if k <= 0 or b == 0:
        return np.empty((b, max(k, 0)), dtype=np.int64)
    thresh = np.partition(scores, n - k, axis=1)[:, n - k][:, None]
    keep = scores >= thresh
    tied = np.flatnonzero(np.count_nonzero(keep, axis=1) > k)  # ties cross the boundary in these rows
    for start in range(0, len(tied), _TIE_CHUNK):  # in chunks: the cumsum is chunk x n_items int32
        rows = tied[start:start + _TIE_CHUNK]
        s, t = scores[rows], thresh[rows]
        greater, equal = s > t, s == t
        need = k - np.count_nonzero(greater, axis=1)
        keep[rows] = greater | (equal & (np.cumsum(equal, axis=1, dtype=np.int32) <= need[:, None]))
    top = np.nonzero(keep)[1].reshape(b, k)  # exactly k per row, ascending item index within a row
    vals = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")  # score descending; equal scores keep index order
    return np.take_along_axis(top, order, axis=1).astype(np.int64, copy=False)


def _hits(top: np.ndarray, relevant: sparse.csr_matrix) -> np.ndarray:
    """Boolean (rows x k): is top[r, j] among the relevant items of row r."""
    rel = relevant.tocsr()
    rel.sort_indices()
    n = rel.shape[1]
    rows = np.repeat(np.arange(rel.shape[0], dtype=np.int64), np.diff(rel.indptr))
    keys = rows * n + rel.indices.astype(np.int64)  # sorted: rows ascending, indices sorted per row
    query = np.arange(top.shape[0], dtype=np.int64)[:, None] * n + top
    if len(keys) == 0:
        return np.zeros(top.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return keys[pos] == query


def retrieve_hits(model, kind: str, query_ids: np.ndarray, relevant: sparse.csr_matrix, k: int,
                  exclude: np.ndarray | None = None, batch_size: int = 1024) -> np.ndarray:
    """Cumulative hit counts (n_queries x k'): column j = |relevant ∩ top-(j+1)|, k' = min(k, candidates).

    ``exclude`` (one item per query, or None): that item is never retrieved (experiment 1's query song).
    """
    query_ids = np.asarray(query_ids, dtype=np.int64)
    n_items = relevant.shape[1]
    k = int(min(k, n_items - (1 if exclude is not None else 0)))
    out = np.zeros((len(query_ids), max(k, 0)), dtype=np.int32)
    for start in range(0, len(query_ids), int(batch_size)):
        sl = slice(start, start + int(batch_size))
        scores = np.asarray(model.score(kind, query_ids[sl]), dtype=np.float32)
        if scores.shape != (len(query_ids[sl]), n_items):
            raise ValueError(f"{type(model).__name__}.score({kind!r}) returned shape {scores.shape}, "
                             f"expected {(len(query_ids[sl]), n_items)}")
        nan = np.isnan(scores)
        if nan.any() or exclude is not None:
            scores = scores.copy()  # never write into what the model returned
            scores[nan] = -np.inf
        if exclude is not None:
            scores[np.arange(scores.shape[0]), exclude[sl]] = -np.inf
        top = top_k(scores, k)
        out[sl] = np.cumsum(_hits(top, relevant[sl]), axis=1, dtype=np.int32)
    return out


# ------------------------------------------------------------------------------------------ test sessions
def _test_sessions(split) -> pd.DataFrame:
    """One row per test session with at least one event: user, device (opt), start, first item."""
    test = split.test
    ordered = test.sort_values(["session", "timestamp"], kind="stable")
    first = ordered.groupby("session", sort=True).head(1).set_index("session")
    info = pd.DataFrame({"user": first["user"].to_numpy(np.int64), "first_item": first["item"].to_numpy(np.int64),
                         "start": first["timestamp"].to_numpy(np.int64)}, index=first.index.to_numpy(np.int64))
    if getattr(split, "has_device", False):
        sess = getattr(split, "test_sessions", None)
        if sess is not None and "device" in sess.columns:
            info["device"] = sess["device"].reindex(info.index).to_numpy()
        else:
            info["device"] = first["device"].to_numpy()
    return info


def _relevance(split, session_ids: np.ndarray) -> sparse.csr_matrix:
    """Binary (len(session_ids) x n_items): the distinct songs of each test session."""
    test = split.test
    sess = test["session"].to_numpy(np.int64)
    row_of = pd.Series(np.arange(len(session_ids)), index=session_ids)
    keep = np.isin(sess, session_ids)
    rows = row_of.loc[sess[keep]].to_numpy()
    m = sparse.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, test["item"].to_numpy(np.int64)[keep])),
                          shape=(len(session_ids), int(split.n_items)))
    m.sum_duplicates()
    m.data[:] = 1
    return m


def reference_sessions(split, tests: pd.DataFrame) -> tuple[np.ndarray, int]:
    """Reference training session per test session (-1: the user has none) and the device-fallback count.

    Most recent training session (by start, then by id) of the same user; when the split has a device
    field, the most recent one on the test session's device, else (counted) the most recent one.
    """
    train = split.train_sessions
    order = train.assign(_sid=train.index.to_numpy(np.int64)).sort_values(["user", "start", "_sid"], kind="stable")
    latest = order.groupby("user").tail(1).set_index("user")["_sid"]
    ref = latest.reindex(tests["user"].to_numpy()).to_numpy(dtype=float)
    fallback = 0
    if getattr(split, "has_device", False) and "device" in tests.columns and "device" in train.columns:
        by_dev = order.groupby(["user", "device"]).tail(1).set_index(["user", "device"])["_sid"]
        idx = pd.MultiIndex.from_arrays([tests["user"].to_numpy(), tests["device"].to_numpy()])
        dev_ref = by_dev.reindex(idx).to_numpy(dtype=float)
        has_dev = ~np.isnan(dev_ref)
        fallback = int((~has_dev & ~np.isnan(ref)).sum())
        ref = np.where(has_dev, dev_ref, ref)
    return np.where(np.isnan(ref), -1, ref).astype(np.int64), fallback


def sample_sessions(split, n_eval_sessions: int | None, seed: int = 0) -> pd.DataFrame:
    """The evaluated test sessions: all, or a seeded sample of ``n_eval_sessions`` (sorted by id)."""
    tests = _test_sessions(split)
    if n_eval_sessions is not None and int(n_eval_sessions) < len(tests):
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(tests), size=int(n_eval_sessions), replace=False))
        tests = tests.iloc[pick]
    return tests


# ------------------------------------------------------------------------------------------------- evaluate
def _summarise(exp: str, cum_hits: np.ndarray, n_rel: np.ndarray, ks: Sequence[int]) -> list[dict]:
    rows = []
    for k in ks:
        kk = min(k, cum_hits.shape[1])
        hits = cum_hits[:, kk - 1] if kk > 0 else np.zeros(len(cum_hits))
        n = len(cum_hits)
        rows.append({"experiment": exp, "k": int(k),
                     "recall": float(np.mean(hits / n_rel)) if n else float("nan"),
                     "precision": float(np.mean(hits / kk)) if n and kk else float("nan"),
                     "n_sessions": int(n)})
    return rows


def evaluate(model, split, ks: Iterable[int] = DEFAULT_KS, n_eval_sessions: int | None = None, seed: int = 0,
             batch_size: int = 1024, experiments: Sequence[str] = EXPERIMENTS) -> tuple[dict, pd.DataFrame]:
    """Run §6's experiments on a fitted model; returns (metrics dict, long table).

    metrics: ``{exp}/recall_at_{k}``, ``{exp}/precision_at_{k}`` for every k, ``data/eval_{exp}_sessions`` (sessions
    evaluated), ``data/eval_exp1_skipped_no_relevant``, ``data/eval_exp2_session_device_fallback``,
    ``data/eval_exp2_session_no_reference``, ``data/eval_sampled_sessions``. An experiment whose query kind the model
    does not support is left out (``data/eval_{exp}_sessions`` = 0). table: experiment, k, recall, precision,
    n_sessions.
    """
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    unknown = set(experiments) - set(EXPERIMENTS)
    if unknown:
        raise ValueError(f"unknown experiments {sorted(unknown)}; expected some of {EXPERIMENTS}")
    tests = sample_sessions(split, n_eval_sessions, seed)
    relevant = _relevance(split, tests.index.to_numpy(np.int64))
    metrics: dict[str, float] = {"data/eval_sampled_sessions": len(tests)}
    rows: list[dict] = []
    for exp in experiments:
        kind = KIND[exp]
        if not model.supports(kind):
            log.info("%s: %s does not support %r queries; skipped", exp, type(model).__name__, kind)
            metrics[f"data/eval_{exp}_sessions"] = 0
            continue
        exclude = None
        rel = relevant
        keep = np.ones(len(tests), dtype=bool)
        if exp == "exp1":
            queries = tests["first_item"].to_numpy(np.int64)
            rel = relevant.copy()
            entry_row = np.repeat(np.arange(len(tests)), np.diff(rel.indptr))
            rel.data[rel.indices == queries[entry_row]] = 0  # the query song is not relevant to itself
            rel.eliminate_zeros()
            keep = np.diff(rel.indptr) > 0
            metrics["data/eval_exp1_skipped_no_relevant"] = int((~keep).sum())
            exclude = queries[keep]
        elif exp == "exp2_user":
            queries = tests["user"].to_numpy(np.int64)
        else:
            queries, fallback = reference_sessions(split, tests)
            keep = queries >= 0
            metrics["data/eval_exp2_session_device_fallback"] = fallback
            metrics["data/eval_exp2_session_no_reference"] = int((~keep).sum())
        rel = rel[np.flatnonzero(keep)]
        cum = retrieve_hits(model, kind, queries[keep], rel, max(ks), exclude=exclude, batch_size=batch_size)
        rows += _summarise(exp, cum, np.diff(rel.indptr).astype(np.float64), ks)
        metrics[f"data/eval_{exp}_sessions"] = int(keep.sum())
    table = pd.DataFrame(rows, columns=["experiment", "k", "recall", "precision", "n_sessions"])
    for r in rows:
        metrics[f"{r['experiment']}/recall_at_{r['k']}"] = r["recall"]
        metrics[f"{r['experiment']}/precision_at_{r['k']}"] = r["precision"]
    return metrics, table


# ---------------------------------------------------------------------------------------------------- plots
def plot_curves(tables: Mapping[str, pd.DataFrame]) -> dict:
    """The paper's Fig. 7 (exp1) and Fig. 8 (exp2) as matplotlib Figures: recall@k and precision@k vs k,
    one line per method (Fig. 8: solid = user query, dashed = session query). Keys "fig7_exp1",
    "fig8_exp2" (a figure only when some table has its experiments)."""
    from matplotlib.figure import Figure

    panels = {"fig7_exp1": (("exp1", "-", ""),),
              "fig8_exp2": (("exp2_user", "-", " (user)"), ("exp2_session", "--", " (session)"))}
    titles = {"fig7_exp1": "Retrieval of similar songs (exp1)", "fig8_exp2": "Music recommendation (exp2)"}
    figures = {}
    for name, series in panels.items():
        lines = [(method, table[table["experiment"] == exp].sort_values("k"), style, suffix)
                 for method, table in tables.items() for exp, style, suffix in series]
        lines = [line for line in lines if len(line[1])]
        if not lines:
            continue
        fig = Figure(figsize=(10, 4), layout="constrained")
        axes = fig.subplots(1, 2)
        colors = {m: f"C{i}" for i, m in enumerate(tables)}
        for method, t, style, suffix in lines:
            for ax, col in zip(axes, ("recall", "precision")):
                ax.plot(t["k"], t[col], style, marker="o", ms=3, color=colors[method], label=f"{method}{suffix}")
        for ax, col in zip(axes, ("recall", "precision")):
            ax.set_xlabel("k (retrieved songs)")
            ax.set_ylabel(col)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle(titles[name])
        figures[name] = fig
    return figures
