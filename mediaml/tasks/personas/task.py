"""task=personas: film-character personas (seed 003, after Bamman et al. 2013), scored against TV Tropes.

    python train.py task=personas dataset=cmu_personas model=lda_topics model.n_topics=100 model.n_personas=100

Fit set: characters with at least `task.min_words` words (the seed's `sort_meaningful`; the others
are counted in data/fit_dropped_few_words), optionally a random `task.fit_sample` of them, always
plus every matched gold character (`task.fit_on=gold`: the gold characters only, the seed
notebook's actual setting). Every gold character is predicted whatever its word count.
Scores over the gold items (one per gold line; see mediaml.tasks.personas.clustering): VI in nats and
bits, VI of random same-size assignment (mean/std over `task.n_random` seeds), purity, AMI, and
`val/vi_gain` = random VI - VI (the sweep objective).
`task.revenue`: seed 003's downstream OLS of log box-office revenue on each movie's archetype
indicators (mediaml.tasks.personas.revenue), on up to `task.revenue_max_movies` movies with revenue.
"""
from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from mediaml.errors import ConfigError
from mediaml.tasks.personas.clustering import multi_trope_floor, random_vis, score
from mediaml.tasks.base import DatasetTask
from mediaml.tracking.tracker import Tracker

log = logging.getLogger(__name__)
ROLES = ("adj", "active", "patient")


class PersonasTask(DatasetTask):
    def run(self, tracker: Tracker) -> dict[str, float]:
        t = self.cfg.task
        t0 = time.perf_counter()
        data = self.dataset.load()
        tracker.log_metrics({**data.counts, "time/load_s": time.perf_counter() - t0})
        tracker.log_text(data.report, "gold_matching_report.txt")
        if data.resolutions is not None:
            tracker.log_table(data.resolutions, "gold_matching.csv")
        if len(data.gold) == 0:
            raise ValueError(f"dataset={self.cfg.dataset.name}: no gold character matched, nothing to score")

        fit_rows = self._fit_rows(data, tracker)
        model = self.instantiate_model()
        t0 = time.perf_counter()
        model.fit(data.chars.iloc[fit_rows].reset_index(drop=True))
        fit_s = time.perf_counter() - t0

        gold = data.gold
        pred_chars = model.predict(data.chars.iloc[gold["row"].to_numpy()].reset_index(drop=True))
        metrics = score(pred_chars, gold["trope"].to_numpy(), groups=gold["char_id"].to_numpy(),
                        n_random=int(t.n_random), seed=int(self.cfg.seed))
        metrics.update({"val/vi_floor_multi_trope": multi_trope_floor(gold["char_id"], gold["trope"]),
                        "data/n_fit": len(fit_rows), "data/vocab": len(model.vocab_), "time/fit_s": fit_s,
                        **{f"time/{k}": v for k, v in model.timings_.items()}})
        # VI falls with the number of clusters whatever their quality; the gain over same-size random
        # assignment does not, so it is the sweep objective (hparams_search=personas_optuna).
        metrics["val/vi_gain"] = metrics["val/vi_random"] - metrics["val/vi"]
        tracker.log_metrics(metrics)
        log.info("VI %.3f nats (%.3f bits) vs random %.3f ± %.3f; AMI %.3f; purity %.3f on %d gold items",
                 metrics["val/vi"], metrics["val/vi_bits"], metrics["val/vi_random"],
                 metrics["val/vi_random_std"], metrics["val/ami"], metrics["val/purity"], len(gold))

        shown = ["trope", "char_id", *(c for c in ("gold_name", "movie", "matched_name") if c in gold), "persona"]
        tracker.log_table(gold.assign(persona=pred_chars)[shown], "gold_predictions.csv")
        tracker.log_table(model.persona_table(top=int(t.top_topics)), "persona_topics.csv")
        tracker.log_dict({str(k): v for k, v in model.topic_words().items()} if model.n_topics else {},
                         "word_topics.json")
        tracker.log_table(pd.crosstab(gold["trope"], pred_chars), "trope_by_persona.csv", index=True)
        self._log_vi_figure(tracker, metrics, random_vis(pred_chars, gold["trope"].to_numpy(),
                                                         int(t.n_random), gold["char_id"].to_numpy(),
                                                         int(self.cfg.seed)))
        if t.get("revenue", False):
            self._revenue(data, model, tracker)
        return dict(tracker.metrics)

    def _revenue(self, data, model, tracker: Tracker) -> None:
        """Item 6 downstream: OLS of log box-office revenue on each movie's archetype indicators."""
        from mediaml.tasks.personas.revenue import revenue_ols, select_movies

        t = self.cfg.task
        if data.revenue is None or not data.revenue.notna().any():
            log.info("task.revenue: dataset=%s has no box-office revenue; revenue OLS skipped", self.cfg.dataset.name)
            tracker.log_metrics({"revenue/skipped": 1})
            return
        t0 = time.perf_counter()
        rows, counts = select_movies(data.chars["wiki_id"], _n_words(data.chars), data.revenue, int(t.min_words),
                                     t.revenue_max_movies, int(self.cfg.seed))
        chars = data.chars.iloc[rows].reset_index(drop=True)
        try:
            res = revenue_ols(chars["wiki_id"], model.predict(chars), data.revenue, top_n=int(t.revenue_top_n),
                              min_pair_movies=int(t.revenue_min_pair_movies), n_random=int(t.revenue_n_random),
                              seed=int(self.cfg.seed))
        except ValueError as e:  # too few movies for the parameters: a counted skip, the personas stand
            log.warning("task.revenue: %s; revenue OLS skipped", e)
            tracker.log_metrics({**counts, "revenue/skipped": 1})
            return
        tracker.log_metrics({**res.metrics, **counts, "revenue/skipped": 0,
                             "time/revenue_s": time.perf_counter() - t0})
        tracker.log_text(res.summary, "revenue/ols_summary.txt")
        tracker.log_text(res.summary_interactions, "revenue/ols_interactions_summary.txt")
        tracker.log_table(res.coefficients, "revenue/coefficients.csv")

    @staticmethod
    def _log_vi_figure(tracker: Tracker, metrics: dict, random: list[float]) -> None:
        """The model's VI against the random same-size VIs: the one picture that says signal or not."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3))
        ax.hist(random, bins=10, color="0.7", label="random, same cluster sizes")
        ax.axvline(metrics["val/vi"], color="C3", label=f"model {metrics['val/vi']:.3f}")
        ax.axvline(metrics["val/vi_floor_multi_trope"], color="C0", ls="--", label="best reachable")
        ax.set_xlabel("VI vs TV Tropes (nats, lower is better)")
        ax.set_title(f"AMI {metrics['val/ami']:.3f}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        tracker.log_figure(fig, "figures/vi_vs_random.png")
        plt.close(fig)

    def _fit_rows(self, data, tracker: Tracker) -> np.ndarray:
        t = self.cfg.task
        gold_rows = np.unique(data.gold["row"].to_numpy())
        if t.fit_on == "gold":
            return gold_rows
        if t.fit_on != "all":
            raise ConfigError(f"task.fit_on={t.fit_on!r}: expected 'all' or 'gold'")
        n_words = _n_words(data.chars)
        keep = np.flatnonzero(n_words >= int(t.min_words))
        tracker.log_metrics({"data/fit_dropped_few_words": int(len(n_words) - len(keep))})
        if t.fit_sample and len(keep) > int(t.fit_sample):
            keep = np.random.default_rng(int(self.cfg.seed)).choice(keep, int(t.fit_sample), replace=False)
        return np.union1d(keep, gold_rows)


def _n_words(chars: pd.DataFrame) -> np.ndarray:
    """Words per character over the three roles."""
    return np.array([sum(map(len, bags)) for bags in zip(*(chars[r] for r in ROLES))])
