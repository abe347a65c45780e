"""task=catalog: the Netflix catalogue analysis of seed 000 as a tracked run.

    python train.py task=catalog dataset=netflix [dataset.sample_size=3000 seed=42] [model=tfidf_logreg]

Cleans the catalogue as the seed does (counting every repair), computes the data of the seed's
seven figures, draws them in Altair with the seed's interactivity and colours, writes one offline
HTML report with sentences computed from the numbers, exports each chart as PNG and SVG, and logs
the headline numbers as `report/...` metrics. Beyond the seed (its "future improvements"): a
TF-IDF text baseline predicting the rating group from the description and genres (the sweep
objective, `val/f1_macro`) and a table of the most frequent director-cast collaborations.
"""
from __future__ import annotations

import logging
import time
import warnings

import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from mediaml.tasks.catalog.data import Catalog, collaborations
from mediaml.tasks.base import DatasetTask
from mediaml.tracking.tracker import Tracker

log = logging.getLogger(__name__)

# Figure titles and what each shows (the seed's captions); the interpretation is computed.
FIGURES = {
    "fig1_titles_by_year": ("Titles by release year (Movies vs TV Shows)",
                            "Titles per release year from {min_year} on, by type. The slider sets the last "
                            "release year shown; years before {min_year} hold very few titles."),
    "fig2_top_genres": ("Top {n_genres} main genres",
                        "The most common main genres (the first genre listed for each title)."),
    "fig3_genre_rating": ("Genre × rating category",
                          "Titles per main genre (top {n_genres}) and rating category, one panel per type; "
                          "darker cells hold more titles. Ratings are grouped as Mature (TV-MA, R, NC-17), "
                          "Teen (TV-14, PG-13) and Family/Kids (all others, including NR and UR)."),
    "fig4_genre_share": ("Relative genre share over time",
                         "Share of each top genre among the top-genre titles released each year from "
                         "{min_year} on, normalised to 100 % per year: the mix, not the volume."),
    "fig5_top_countries": ("Top {n_countries} producing countries",
                           "Titles per primary country (the first country listed), so co-productions "
                           "count once."),
    "fig6_country_hover": ("Interactive country comparison",
                           "The same countries; hover a bar to highlight it in red, the tooltip also gives the "
                           "titles that list the country anywhere."),
    "fig7_lag": ("Lag between release year and year added",
                 "Years between a title's release and its addition to Netflix, in one-year bins, by type "
                 "(titles without a date added are left out)."),
}


class CatalogTask(DatasetTask):
    def run(self, tracker: Tracker) -> dict[str, float]:
        start = time.perf_counter()
        catalog = self.dataset.load()
        load_s = time.perf_counter() - start
        tracker.log_metrics(catalog.counts)
        tracker.log_table(catalog.titles, "tables/titles_clean.csv")
        report_s = self.report(tracker, catalog)
        self.log_collaborations(tracker, catalog)
        baseline_s = self.text_baseline(tracker, catalog)
        tracker.log_metrics({"time/load_s": load_s, "time/report_s": report_s, "time/baseline_s": baseline_s,
                             "time/total_s": time.perf_counter() - start})
        return dict(tracker.metrics)

    # -- the seed's seven figures as a report ----------------------------------------------------
    def report(self, tracker: Tracker, catalog: Catalog) -> float:
        from mediaml.tasks.catalog.charts import build_charts
        from mediaml.tasks.catalog.figures import figure_data
        from mediaml.tasks.catalog.story import headline, pct, plural, sentences
        from mediaml.tasks.catalog.report import Section, export_chart, render_report

        t = self.cfg.task
        start = time.perf_counter()
        figs = figure_data(catalog.titles, catalog.genres, catalog.countries, min_year=int(t.min_year),
                           n_genres=int(t.n_genres), n_countries=int(t.n_countries))
        metrics, names = headline(catalog.titles, figs)
        tracker.log_metrics(metrics)
        tracker.set_tags({f"report.{k}": v for k, v in names.items()})
        text = sentences(catalog.titles, figs, metrics, names)
        charts = build_charts(figs)
        fmt = dict(min_year=t.min_year, n_genres=t.n_genres, n_countries=t.n_countries)
        sections, files = [], {}
        for stem, (title, description) in FIGURES.items():
            tracker.log_table(figs[stem], f"figures/{stem}.csv")
            if t.export_static:
                png, svg = export_chart(charts[stem], tracker.path(f"figures/{stem}"))
                for p in (png, svg):
                    tracker.log_artifact(p, "figures")
                files[stem] = [f"figures/{png.name}", f"figures/{svg.name}", f"figures/{stem}.csv"]
            sections.append(Section(stem, title.format(**fmt), description.format(**fmt), charts[stem],
                                    text.get(stem, [])))
        # The exploded (all-genre, all-country) views as tables, beside the first-item ones in the charts.
        for view, col in ((catalog.genres, "genre"), (catalog.countries, "country")):
            table = (view.groupby(col).agg(titles=("show_id", "nunique"),
                                           movies=("type", lambda s: int((s == "Movie").sum())))
                     .sort_values("titles", ascending=False).reset_index())
            table["tv_shows"] = table["titles"] - table["movies"]
            tracker.log_table(table, f"tables/{col}_all_listed.csv")
        tracker.log_metrics({"report/distinct_genres": catalog.genres["genre"].nunique(),
                             "report/distinct_countries": catalog.countries["country"].nunique()})

        c = catalog.counts
        sampled = c["data/rows_sampled"] < c["data/rows_read"]
        how = f" (random sample, random_state={self.dataset.random_state})" if sampled else ""
        repairs = {k.removeprefix("data/").replace("_", " "): v for k, v in c.items()
                   if k not in {"data/rows_read", "data/rows_sampled", "data/rows_kept"}}
        intro = [f"Source: {catalog.source}. {c['data/rows_read']:,} rows read, {c['data/rows_sampled']:,} "
                 f"analysed{how}, {c['data/rows_kept']:,} kept after cleaning.",
                 "Cleaning (every repair counted): " + ", ".join(f"{k} {v:,}" for k, v in repairs.items()) + "."]
        summary = {
            "Titles (Movies / TV Shows)": f"{metrics['report/titles']:,} ({metrics['report/titles_movie']:,} / "
                                          f"{metrics['report/titles_tv_show']:,})",
            "Top main genres": f"{names['top_genre']} {pct(metrics['report/top_genre_share'])}, "
                               f"{names['second_genre']} "
                               f"{pct(metrics['report/top2_genre_share'] - metrics['report/top_genre_share'])}",
            "Top primary countries": f"{names['top_country']} {pct(metrics['report/top_country_share'])}, "
                                     f"{names['second_country']} "
                                     f"{pct(metrics['report/top2_country_share'] - metrics['report/top_country_share'])}",
            "Median lag release → added": f"{plural(metrics['report/median_lag_years'], 'year')}; "
                                          f"{pct(metrics['report/share_added_within_5y'])} within 0-5 years",
            "Rating groups (Mature / Teen / Family-Kids)": f"{pct(metrics['report/mature_share'])} / "
                                                          f"{pct(metrics['report/teen_share'])} / "
                                                          f"{pct(metrics['report/family_kids_share'])}",
        }
        html = render_report(f"Netflix catalogue analysis ({self.dataset.name})", intro, summary, sections, files)
        path = tracker.log_text(html, "catalog_report.html")
        tracker.log_dict({"names": names, "metrics": metrics, "sentences": text}, "report_summary.json")
        log.info("report: %s (%.0f kB)", path, path.stat().st_size / 1024)
        return time.perf_counter() - start

    def log_collaborations(self, tracker: Tracker, catalog: Catalog) -> None:
        top = collaborations(catalog.titles, top=int(self.cfg.task.collaborations.top),
                             min_titles=int(self.cfg.task.collaborations.min_titles))
        tracker.log_table(top, "tables/top_collaborations.csv")
        tracker.log_metrics({"report/top_collaboration_titles": int(top["titles"].iloc[0]) if len(top) else 0,
                             "report/collaborations_listed": len(top)})

    # -- beyond the seed: predict the rating group from description + genres ---------------------
    def text_baseline(self, tracker: Tracker, catalog: Catalog) -> float:
        t = self.cfg.task
        start = time.perf_counter()
        data = catalog.titles[catalog.titles["rating_group"].notna()]
        X = data[["description", "listed_in"]].fillna("")
        y = data["rating_group"].astype(str)
        stratify = y if t.split.stratify else None
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=t.split.test_size,
                                                  random_state=int(t.split.random_state), stratify=stratify)
        pipe = self.instantiate_model()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # stop-word / tokenizer notices from sklearn
            pipe.fit(X_tr, y_tr)
        pred = pipe.predict(X_te)
        labels = sorted(y.unique())
        majority = y_tr.value_counts().idxmax()
        metrics = {
            "train/acc": accuracy_score(y_tr, pipe.predict(X_tr)),
            "val/acc": accuracy_score(y_te, pred),
            "val/balanced_acc": balanced_accuracy_score(y_te, pred),
            "val/f1_macro": f1_score(y_te, pred, average="macro", labels=labels, zero_division=0),
            # What always answering the most common training group would score: the floor to beat.
            "val/majority_acc": float((y_te == majority).mean()),
            "data/n_train": len(y_tr),
            "data/n_val": len(y_te),
        }
        tracker.log_metrics(metrics)
        tracker.log_classification_report(y_te, pred, labels=labels, prefix="val")
        tracker.log_confusion_matrix(y_te, pred, labels=labels, prefix="val")
        tracker.log_table(pd.DataFrame({"show_id": data.loc[X_te.index, "show_id"].to_numpy(),
                                        "true": y_te.to_numpy(), "pred": pred}), "val/predictions.csv")
        terms = top_terms(pipe)
        if terms is not None:
            tracker.log_table(terms, "val/top_terms.csv")
        tracker.log_model(pipe, name="model", input_example=X_tr.head(5))  # by logger.log_model
        log.info("text baseline: val/acc=%.4f val/f1_macro=%.4f (majority %.4f)", metrics["val/acc"],
                 metrics["val/f1_macro"], metrics["val/majority_acc"])
        return time.perf_counter() - start


def top_terms(pipe, n: int = 15) -> pd.DataFrame | None:
    """The n terms with the largest weight per class, for linear models (None otherwise)."""
    model = pipe.named_steps["model"]
    coef = getattr(model, "coef_", None)
    if coef is None or coef.shape[0] != len(model.classes_):
        return None
    names = pipe.named_steps["features"].get_feature_names_out()
    rows = []
    for k, cls in enumerate(model.classes_):
        for rank, j in enumerate(coef[k].argsort()[::-1][:n], 1):
            rows.append({"class": cls, "rank": rank, "term": names[j], "weight": float(coef[k, j])})
    return pd.DataFrame(rows)
