"""task=catalog end to end: report, charts, metrics and text baseline tracked in MLflow; bad input stops clean."""
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import require_real
from mediaml.errors import DataError, DataNotFoundError
from mediaml.run import run
from mediaml.tasks.catalog.task import FIGURES, CatalogTask
from mediaml.tracking.tracker import Tracker

REAL = "netflix/netflix_titles.csv"
STEMS = list(FIGURES)


def runs_of(store):
    client = MlflowClient(store)
    exps = client.search_experiments()
    return client.search_runs([e.experiment_id for e in exps]) if exps else []


def artifacts(client, run_id, path=""):
    out = []
    for f in client.list_artifacts(run_id, path):
        out += artifacts(client, run_id, f.path) if f.is_dir else [f.path]
    return out


def run_task(make_cfg, overrides, tmp_path):
    cfg = make_cfg(["task=catalog", "logger=none", *overrides])
    tracker = Tracker(tmp_path / "out")
    return CatalogTask(cfg).run(tracker), tracker.artifact_dir


def test_synthetic_run_is_tracked_with_report_charts_and_metrics(make_cfg, store, tmp_path):
    value = run(make_cfg(["task=catalog", "logger.log_model=false"]))
    (r,) = runs_of(store)
    assert r.info.status == "FINISHED"
    m = r.data.metrics
    assert value == pytest.approx(m["val/f1_macro"])
    for key in ["report/titles_movie", "report/top_genre_share", "report/median_lag_years",
                "report/share_added_within_5y", "report/top_country_share", "data/rating_held_duration",
                "data/bad_date_added", "val/acc", "val/majority_acc", "report/top_collaboration_titles"]:
        assert key in m, key
    assert m["data/rating_held_duration"] == 2 and m["data/bad_date_added"] == 1  # the planted defects
    files = set(artifacts(MlflowClient(store), r.info.run_id))
    assert "catalog_report.html" in files and "report_summary.json" in files
    for stem in STEMS:
        assert {f"figures/{stem}.png", f"figures/{stem}.svg", f"figures/{stem}.csv"} <= files, stem
    assert {"val/confusion_matrix.png", "val/confusion_matrix.csv", "tables/top_collaborations.csv",
            "tables/genre_all_listed.csv", "tables/country_all_listed.csv"} <= files
    assert r.data.tags["report.top_country"] == "United States"


def test_report_is_offline_and_its_sentences_quote_the_numbers(make_cfg, tmp_path):
    m, out = run_task(make_cfg, [], tmp_path)
    html = (out / "catalog_report.html").read_text()
    # No CDN or any other fetched resource: scripts are inline, the only links are the run's own files.
    assert not re.search(r"<script[^>]+src=", html) and not re.search(r"<link[^>]+href=", html)
    assert not re.search(r"(src|href)=['\"]https?:", html)
    assert all(f"id='{stem}'" in html for stem in STEMS)
    summary = json.loads((out / "report_summary.json").read_text())
    for stem in STEMS:
        assert summary["sentences"][stem], stem
        for sentence in summary["sentences"][stem]:
            assert sentence.replace("&", "&amp;").replace("'", "&#x27;") in html
    top = pd.read_csv(out / "figures/fig2_top_genres.csv").iloc[0]
    assert summary["sentences"]["fig2_top_genres"][0].startswith(f"{top['genre']} ({top['count']:,} titles")
    assert f"{100 * m['report/share_added_within_5y']:.1f}%" in summary["sentences"]["fig7_lag"][0]


def test_charts_keep_the_seeds_interactivity_and_colours(make_cfg, tmp_path):
    _, out = run_task(make_cfg, ["task.export_static=false"], tmp_path)
    assert not list((out / "figures").glob("*.png"))  # export_static=false: CSVs only
    html = (out / "catalog_report.html").read_text()
    specs = json.loads(re.search(r"id='mediaml-specs'>(.*?)</script>", html, re.S).group(1).replace("<\\/", "</"))
    fig1, fig6, fig7 = specs["fig1_titles_by_year"], specs["fig6_country_hover"], specs["fig7_lag"]
    assert fig1["params"][0]["name"] == "Year" and fig1["params"][0]["bind"]["input"] == "range"
    assert {"filter": "datum.release_year <= Year"} in fig1["transform"]
    assert fig1["encoding"]["color"]["scale"]["range"] == ["#E50914", "#221F1F"]
    assert fig6["params"][0]["select"]["on"] == "mouseover" and fig6["params"][0]["select"]["clear"] == "mouseout"
    assert fig6["encoding"]["color"]["value"] == "#221F1F"
    assert fig6["encoding"]["color"]["condition"]["value"] == "#E50914"
    assert specs["fig2_top_genres"]["mark"]["color"] == "#E50914"
    assert specs["fig5_top_countries"]["mark"]["color"] == "#221F1F"
    assert specs["fig3_genre_rating"]["spec"]["encoding"]["color"]["scale"]["scheme"] == "reds"
    assert specs["fig4_genre_share"]["encoding"]["y"]["stack"] == "normalize"
    assert fig7["encoding"]["color"]["scale"]["range"] == ["#E50914", "#221F1F"]


def test_text_baseline_learns_planted_words_not_noise(make_cfg, tmp_path):
    signal, _ = run_task(make_cfg, ["task.export_static=false"], tmp_path)
    genre_only, _ = run_task(make_cfg, ["task.export_static=false", "dataset.signal=0"], tmp_path)
    # Descriptions carry a rating-group word 60 % of the time: the model must use it.
    assert signal["val/f1_macro"] > signal["val/majority_acc"] + 0.2
    assert signal["val/f1_macro"] > genre_only["val/f1_macro"] + 0.15
    assert signal["data/n_train"] + signal["data/n_val"] == signal["data/rows_kept"] - signal["data/missing_rating"]


@pytest.mark.parametrize("model", ["tfidf_linear_svc", "tfidf_complement_nb"])
def test_other_text_models(make_cfg, tmp_path, model):
    m, out = run_task(make_cfg, ["task.export_static=false", f"model={model}"], tmp_path)
    assert m["val/f1_macro"] > m["val/majority_acc"]
    assert (out / "val/confusion_matrix.csv").exists()


def test_missing_file_stops_before_a_run(make_cfg, store, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDIAML_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(DataNotFoundError) as err:
        run(make_cfg(["task=catalog", "dataset=netflix"]))
    assert str(tmp_path / "empty" / "netflix" / "netflix_titles.csv") in str(err.value)
    assert "conf/dataset/netflix.yaml" in str(err.value)
    assert runs_of(store) == []


def test_missing_column_fails_the_run_with_the_file_named(make_cfg, store, tmp_path, monkeypatch):
    from mediaml.tasks.catalog.data import generate_catalog

    (tmp_path / "d" / "netflix").mkdir(parents=True)
    generate_catalog(50).drop(columns=["date_added"]).to_csv(tmp_path / "d" / REAL, index=False)
    monkeypatch.setenv("MEDIAML_DATA_DIR", str(tmp_path / "d"))
    with pytest.raises(DataError, match=r"netflix_titles.csv: missing column\(s\) \['date_added'\]"):
        run(make_cfg(["task=catalog", "dataset=netflix"]))
    assert [r.info.status for r in runs_of(store)] == ["FAILED"]


def test_real_catalogue_headline_numbers(make_cfg, tmp_path):
    require_real(REAL)
    m, out = run_task(make_cfg, ["dataset=netflix"], tmp_path)
    raw = pd.read_csv(Path(make_cfg(["task=catalog", "dataset=netflix"]).paths.data_dir) / REAL)
    assert m["report/titles"] == 8807
    assert m["report/titles_movie"] == (raw["type"] == "Movie").sum() == 6131
    assert m["report/titles_tv_show"] == 2676
    assert m["report/top_genre_share"] == pytest.approx(1600 / 8807)
    assert m["report/top_country_share"] == pytest.approx(3211 / (8807 - 831))
    assert m["report/median_lag_years"] == 1
    assert m["data/n_val"] == round(0.2 * (8807 - 7))
    # The text baseline beats always answering "Mature" (measured: acc 0.60, macro-F1 0.61 at seed 0).
    assert m["val/acc"] > m["val/majority_acc"] + 0.1 and m["val/f1_macro"] > 0.5
    top = pd.read_csv(out / "tables/top_collaborations.csv")
    assert top.iloc[0]["titles"] >= 10


def test_real_seed_subset_matches_the_seeds_findings(make_cfg, tmp_path):
    require_real(REAL)
    m, out = run_task(make_cfg, ["dataset=netflix", "dataset.sample_size=3000", "seed=42",
                                 "task.export_static=false"], tmp_path)
    summary = json.loads((out / "report_summary.json").read_text())["names"]
    assert m["data/rows_sampled"] == 3000 and m["data/rows_read"] == 8807
    assert (summary["top_genre"], summary["second_genre"]) == ("Dramas", "Comedies")
    assert (summary["top_country"], summary["second_country"]) == ("United States", "India")
    assert m["report/share_added_within_5y"] > 0.5 and m["report/share_added_within_10y"] > 0.8
    assert m["report/mature_share"] + m["report/teen_share"] > 0.7  # "ratings are mostly Teen or Mature"
