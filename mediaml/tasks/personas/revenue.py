"""Seed 003's downstream use of personas: does a movie's cast of archetypes explain its box office?

Per movie, archetype indicators = 1 for every persona at least one of its characters has (seed
003's `dummy`). OLS (statsmodels) of log box-office revenue on the indicators, then again with
pairwise interactions. The seed interacted all 50 personas (1,225 pairs on 6,280 movies: R² 0.273
but adjusted R² 0.097 — it mostly fitted noise); with 100 personas all pairs (4,950) exceed the
number of movies. So interactions are taken among the `top_n` personas present in the most movies
(default 15 -> at most 105 pairs), and an interaction column is kept only when at least
`min_pair_movies` movies have both personas (a rarer pair is a handful of movies' residuals).
Main-effect columns present in no movie or in every movie are dropped (not estimable next to the
intercept).

Also fitted: the same main-effects OLS with the personas shuffled across characters (same persona
sizes, `n_random` times): the R² that archetype indicators of this size reach by chance, the
revenue counterpart of the same-size random VI.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


@dataclass
class RevenueResult:
    metrics: dict[str, float]
    summary: str               # statsmodels summary, main effects
    summary_interactions: str  # statsmodels summary, main effects + pairwise interactions
    coefficients: pd.DataFrame = field(default_factory=pd.DataFrame)  # term, coef, se, p (both models)


def archetype_indicators(wiki_ids, personas) -> pd.DataFrame:
    """Movies x personas, 1 where the movie has a character of that persona (columns persona_<p>)."""
    ind = pd.crosstab(pd.Series(np.asarray(wiki_ids).astype(str), name="wiki_id"),
                      pd.Series(np.asarray(personas), name="persona")).clip(upper=1)
    ind.columns = [f"persona_{p}" for p in ind.columns]
    return ind


def _interactions(X: pd.DataFrame, top_n: int, min_pair_movies: int) -> pd.DataFrame:
    top = X.sum().sort_values(ascending=False, kind="stable").index[:top_n]
    pairs = {f"{a}:{b}": X[a] * X[b] for a, b in combinations(top, 2)}
    inter = pd.DataFrame(pairs, index=X.index) if pairs else pd.DataFrame(index=X.index)
    return inter.loc[:, inter.sum() >= min_pair_movies]


def _ols(y: np.ndarray, X: pd.DataFrame):
    import statsmodels.api as sm

    return sm.OLS(y, sm.add_constant(X.astype(float), has_constant="add")).fit()


def _r2(y: np.ndarray, X: np.ndarray) -> float:
    """Plain least-squares R² (for the random baseline, where summaries are not needed)."""
    A = np.column_stack([np.ones(len(y)), X])
    beta, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ beta
    return float(1 - resid @ resid / ((y - y.mean()) @ (y - y.mean())))


def _adj(r2: float, n: int, k: int) -> float:
    return 1 - (1 - r2) * (n - 1) / (n - k - 1)


def select_movies(wiki_ids, n_words, revenue: pd.Series, min_words: int = 3, max_movies: int | None = None,
                  seed: int = 0) -> tuple[np.ndarray, dict[str, float]]:
    """Characters for the revenue OLS: those with >= `min_words` words in movies with revenue, at most
    `max_movies` movies (a seeded random sample). Returns (row indices, counts as `revenue/...` metrics).

    A character with no or few words gets an arbitrary persona (LDA: a flat mixture), so it is left
    out, as seed 003 clustered only `sort_meaningful(3)` characters; a movie left with no character
    is counted in `revenue/movies_without_characters`.
    """
    wiki_ids = np.asarray(wiki_ids).astype(str)
    ok = np.asarray(n_words) >= int(min_words)
    rev = pd.Series(revenue).copy()
    rev.index = rev.index.astype(str)
    with_rev = set(rev[rev.notna()].index)
    all_movies = pd.unique(wiki_ids)
    movies = pd.unique(wiki_ids[ok])
    has = np.array([m in with_rev for m in movies], dtype=bool)
    chosen = movies[has]
    if max_movies and len(chosen) > int(max_movies):
        chosen = np.random.default_rng(seed).choice(chosen, int(max_movies), replace=False)
    rows = np.flatnonzero(ok & np.isin(wiki_ids, chosen))
    counts = {"revenue/movies_in_data": float(len(all_movies)),
              "revenue/movies_without_revenue": float(sum(m not in with_rev for m in all_movies)),
              "revenue/movies_without_characters": float(sum(m in with_rev for m in set(all_movies) - set(movies))),
              "revenue/movies_sampled": float(len(chosen))}
    return rows, counts


def revenue_ols(wiki_ids, personas, revenue: pd.Series, top_n: int = 15, min_pair_movies: int = 10,
                n_random: int = 5, seed: int = 0) -> RevenueResult:
    """OLS of log revenue on archetype indicators of the movies of `wiki_ids` (one entry per character).

    `revenue`: wiki_id -> revenue (NaN / missing -> the movie is counted in `revenue/movies_without_revenue`
    and skipped). Raises ValueError when fewer movies than parameters are left.
    """
    wiki_ids = np.asarray(wiki_ids).astype(str)
    personas = np.asarray(personas)
    if wiki_ids.shape != personas.shape:
        raise ValueError(f"wiki_ids and personas differ in length: {wiki_ids.shape} vs {personas.shape}")
    rev = pd.to_numeric(pd.Series(revenue), errors="coerce")
    rev.index = rev.index.astype(str)
    rev = rev.where(rev > 0).groupby(level=0).first()
    movies = pd.unique(wiki_ids)
    has = rev.reindex(movies).notna().to_numpy()
    keep = np.isin(wiki_ids, movies[has])
    X = archetype_indicators(wiki_ids[keep], personas[keep])
    n_all = X.shape[1]
    X = X.loc[:, (X.sum() > 0) & (X.sum() < len(X))]
    y = np.log(rev.reindex(X.index).to_numpy(dtype=float))
    inter = _interactions(X, top_n, min_pair_movies)
    XI = pd.concat([X, inter], axis=1)
    if len(y) <= XI.shape[1] + 1:
        raise ValueError(f"revenue OLS: {len(y)} movies with revenue for {XI.shape[1] + 1} parameters; "
                         "use more movies (task.revenue_max_movies) or fewer personas / task.revenue_top_n")
    main, full = _ols(y, X), _ols(y, XI)

    rng = np.random.default_rng(seed)
    rand_r2, rand_adj = [], []
    for _ in range(int(n_random)):
        Xr = archetype_indicators(wiki_ids[keep], rng.permutation(personas[keep]))
        Xr = Xr.loc[:, (Xr.sum() > 0) & (Xr.sum() < len(Xr))]
        rand_r2.append(_r2(y, Xr.reindex(X.index).to_numpy(dtype=float)))
        rand_adj.append(_adj(rand_r2[-1], len(y), Xr.shape[1]))

    metrics = {
        "revenue/n_movies": float(len(y)),
        "revenue/movies_without_revenue": float((~has).sum()),
        "revenue/n_characters": float(keep.sum()),
        "revenue/n_main_terms": float(X.shape[1]),
        "revenue/n_dropped_constant_terms": float(n_all - X.shape[1]),
        "revenue/n_interaction_terms": float(inter.shape[1]),
        "revenue/r2": float(main.rsquared),
        "revenue/adj_r2": float(main.rsquared_adj),
        "revenue/f_pvalue": float(main.f_pvalue),
        "revenue/r2_interactions": float(full.rsquared),
        "revenue/adj_r2_interactions": float(full.rsquared_adj),
    }
    if rand_r2:
        metrics["revenue/r2_random"] = float(np.mean(rand_r2))
        metrics["revenue/r2_random_std"] = float(np.std(rand_r2))
        metrics["revenue/adj_r2_random"] = float(np.mean(rand_adj))
    coef = pd.concat([pd.DataFrame({"model": name, "term": res.params.index, "coef": res.params.to_numpy(),
                                    "se": res.bse.to_numpy(), "p": res.pvalues.to_numpy()})
                      for name, res in (("main", main), ("interactions", full))], ignore_index=True)
    coef["term"] = coef["term"].replace({"const": "intercept"})
    log.info("revenue OLS on %d movies: R² %.3f (adj %.3f); with %d interactions R² %.3f (adj %.3f); "
             "shuffled personas R² %.3f; %d movies without revenue skipped", len(y), main.rsquared,
             main.rsquared_adj, inter.shape[1], full.rsquared, full.rsquared_adj,
             metrics.get("revenue/r2_random", float("nan")), (~has).sum())
    return RevenueResult(metrics, main.summary().as_text(), full.summary().as_text(), coef)
