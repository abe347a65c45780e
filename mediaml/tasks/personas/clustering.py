"""Clustering scores against gold clusters: variation of information, purity, AMI, random baseline.

VI(A, B) = H(A|B) + H(B|A) = H(A) + H(B) - 2 I(A; B) (Meila 2003), from the contingency table of two
labellings of the same items. Natural log gives nats; seed 003's `variation_of_information` used
log base 2, so its "4.9" is in bits (bits = nats / ln 2).

Items, not characters: a gold character listed under several tropes is one item per (character,
trope) line, as in Bamman et al. 2013 and seed 003; the caller repeats the character's predicted
label for each of its lines. Such a character cannot be right for all its tropes, so VI = 0 is
out of reach whenever a character is in two tropes (see `multi_trope_floor`).

VI falls as the number of predicted clusters grows whatever their quality (singletons beat any
coarse partition), so a VI is only meaningful next to `random_vi`: the same cluster sizes, randomly
assigned.
"""
from __future__ import annotations

import math
from typing import Hashable, Sequence

import numpy as np
from sklearn.metrics import adjusted_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix


def _contingency(pred: Sequence[Hashable], gold: Sequence[Hashable]) -> np.ndarray:
    pred, gold = np.asarray(pred, dtype=object), np.asarray(gold, dtype=object)
    if pred.shape != gold.shape or pred.ndim != 1:
        raise ValueError(f"pred and gold must be 1-d and the same length, got {pred.shape} and {gold.shape}")
    if len(pred) == 0:
        raise ValueError("no items to score: pred and gold are empty")
    # Labels may be mixed types (ints for personas, strings for tropes): compare them as strings.
    return contingency_matrix(gold.astype(str), pred.astype(str)).astype(float)


def variation_of_information(pred, gold, base: float = math.e) -> float:
    """VI between two labellings of the same items; nats by default, `base=2` for bits."""
    c = _contingency(pred, gold)
    n = c.sum()
    p = c / n
    pg, pp = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
    nz = p > 0
    # -sum p_ij [log(p_ij / p_i) + log(p_ij / p_j)]
    vi = -np.sum(p[nz] * (np.log(p[nz] / np.broadcast_to(pg, p.shape)[nz])
                          + np.log(p[nz] / np.broadcast_to(pp, p.shape)[nz])))
    return float(max(vi, 0.0) / math.log(base))


def purity(pred, gold) -> float:
    """Share of items whose predicted cluster's majority gold label is their own gold label."""
    c = _contingency(pred, gold)
    return float(c.max(axis=0).sum() / c.sum())


def ami(pred, gold) -> float:
    """Adjusted mutual information (sklearn, arithmetic normalisation): 0 = chance, 1 = identical."""
    return float(adjusted_mutual_info_score(np.asarray(gold).astype(str), np.asarray(pred).astype(str)))


def random_vi(pred, gold, n_seeds: int = 20, groups: Sequence[Hashable] | None = None,
              seed: int = 0) -> tuple[float, float]:
    """Mean and std VI (nats) of random assignments with the same cluster sizes as `pred`."""
    vis = random_vis(pred, gold, n_seeds, groups, seed)
    return float(np.mean(vis)), float(np.std(vis))


def random_vis(pred, gold, n_seeds: int = 20, groups: Sequence[Hashable] | None = None,
               seed: int = 0) -> list[float]:
    """VI (nats) of `n_seeds` random assignments with the same cluster sizes as `pred`.

    `groups` (e.g. a character id per item): items of one group share a label, as a model's
    prediction for a multi-trope character does; the group labels are shuffled instead of items.
    """
    pred = np.asarray(pred, dtype=object).astype(str)
    rng = np.random.default_rng(seed)
    if groups is None:
        draws = [rng.permutation(pred) for _ in range(n_seeds)]
    else:
        groups = np.asarray(groups, dtype=object).astype(str)
        keys, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
        per_group = pred[first]
        draws = [rng.permutation(per_group)[inverse] for _ in range(n_seeds)]
    return [variation_of_information(d, gold) for d in draws]


def multi_trope_floor(groups, gold) -> float:
    """Lowest VI (nats) any per-character labelling can reach: each character -> its first trope."""
    groups = np.asarray(groups, dtype=object).astype(str)
    gold = np.asarray(gold, dtype=object).astype(str)
    first = {}
    for g, t in zip(groups, gold):
        first.setdefault(g, t)
    return variation_of_information([first[g] for g in groups], gold)


def score(pred, gold, groups=None, n_random: int = 20, seed: int = 0) -> dict[str, float]:
    """All the `val/...` clustering metrics for one labelling."""
    vi = variation_of_information(pred, gold)
    vr, vr_std = random_vi(pred, gold, n_seeds=n_random, groups=groups, seed=seed)
    return {
        "val/vi": vi,
        "val/vi_bits": vi / math.log(2),
        "val/vi_random": vr,
        "val/vi_random_std": vr_std,
        "val/vi_random_bits": vr / math.log(2),
        "val/vi_margin_sd": (vr - vi) / vr_std if vr_std > 0 else 0.0,
        "val/purity": purity(pred, gold),
        "val/ami": ami(pred, gold),
        "data/eval_items": float(len(gold)),
        "data/eval_gold_clusters": float(len(set(map(str, gold)))),
        "data/eval_pred_clusters": float(len(set(map(str, pred)))),
    }
