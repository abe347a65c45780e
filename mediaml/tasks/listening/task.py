"""task=listening: a latent space of users, sessions and songs (seed 001, Chung et al. ISMIR 2016).

    python train.py task=listening dataset=30music model=deepwalk model.graph=uss
    python train.py -m task=listening dataset=30music model=random,popularity,als,deepwalk_us,deepwalk

One job = one method on one split: load the events, cut sessions and the real-life split (§4.1,
Table 1 logged as `data/*` and `table1_data_stats.csv`), fit the method on the training events,
then the two retrieval experiments of §6 (`exp1/*` similar songs, `exp2_user/*` and
`exp2_session/*` recommendation; recall/precision at k = 10..50, the curves as PNG, the table as
CSV). For DeepWalk models the 2-D maps of §5 are drawn from a second fit with `dimensions=2`, as
the paper does (it learns a separate 2-D space for the pictures; the 128-D one is evaluated).
"""
from __future__ import annotations

import logging
import time


from mediaml.tasks.base import DatasetTask
from mediaml.tracking.tracker import Tracker

log = logging.getLogger(__name__)


class ListeningTask(DatasetTask):
    def run(self, tracker: Tracker) -> dict[str, float]:
        from mediaml.tasks.listening.retrieval import evaluate, plot_curves

        t, seed = self.cfg.task, int(self.cfg.seed)
        t0 = time.perf_counter()
        split = self.dataset.load()
        tracker.log_metrics({**split.stats, **split.skipped, "time/load_s": time.perf_counter() - t0})
        tracker.log_table(split.table1(), "table1_data_stats.csv", index=True)
        log.info("split: %s", ", ".join(f"{k.split('/')[-1]}={v:,.0f}" for k, v in split.stats.items()))

        model = self.instantiate_model()
        t0 = time.perf_counter()
        model.fit(split)
        fit_s = time.perf_counter() - t0
        timings = {f"time/{k}": v for k, v in (getattr(model, "timings_", None) or {}).items()}
        tracker.log_metrics({"time/fit_s": fit_s, **timings})

        t0 = time.perf_counter()
        metrics, table = evaluate(model, split, ks=list(t.ks), n_eval_sessions=t.n_eval_sessions, seed=seed,
                                  batch_size=int(t.batch_size))
        metrics["time/eval_s"] = time.perf_counter() - t0
        tracker.log_metrics(metrics)
        name = str(self.cfg.model.get("name", type(model).__name__))
        tracker.log_table(table.assign(method=name), "retrieval.csv")
        for fig_name, fig in plot_curves({name: table}).items():
            tracker.log_figure(fig, f"figures/{fig_name}.png")
        k0 = min(t.ks)
        log.info("%s: exp1 recall@%d %.4f  exp2 user %.4f  exp2 session %.4f", name, k0,
                 metrics.get(f"exp1/recall_at_{k0}", float("nan")),
                 metrics.get(f"exp2_user/recall_at_{k0}", float("nan")),
                 metrics.get(f"exp2_session/recall_at_{k0}", float("nan")))

        if t.maps.enabled and hasattr(model, "item_vectors_") and "dimensions" in self.cfg.model:
            self._log_maps(split, tracker)
        return dict(tracker.metrics)

    def _log_maps(self, split, tracker: Tracker) -> None:
        """§5: a second fit of the same method in 2-D, and the pictures drawn from it."""
        from mediaml.tasks.listening.maps import popularity_map, group_map, user_maps

        m = self.cfg.task.maps
        t0 = time.perf_counter()
        log.info("maps (§5): a second fit of the same method in 2-D, for the pictures only")
        model2d = self.instantiate_model(dimensions=2).fit(split)
        tracker.log_metrics({"time/maps_fit_s": time.perf_counter() - t0})
        tracker.log_figure(popularity_map(model2d, split), "maps/songs_by_popularity.png")
        fig = group_map(model2d, split, top=int(m.top_groups))
        if fig is not None:
            tracker.log_figure(fig, "maps/songs_by_group.png")
        tracker.log_figure(user_maps(model2d, split, n_users=int(m.n_users), seed=int(self.cfg.seed)),
                           "maps/users_sessions_songs.png")

