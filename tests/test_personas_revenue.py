"""task=personas: seed 003's downstream revenue OLS on persona indicators."""

import numpy as np
import pandas as pd
import pytest

from mediaml.tasks.personas.revenue import archetype_indicators, revenue_ols, select_movies
from mediaml.tasks.personas.data import SyntheticPersonasDataset, revenue_by_movie
from mediaml.tasks.personas.task import PersonasTask
from mediaml.tracking.tracker import Tracker



def run_metrics(make_cfg, overrides, tmp_path):
    cfg = make_cfg(["task=personas", "logger=none", f"paths.cache_dir={tmp_path / 'cache'}", *overrides])
    return PersonasTask(cfg).run(Tracker(tmp_path / "out"))


# -- revenue OLS -------------------------------------------------------------------------------------
def test_revenue_ols_recovers_planted_effects():
    # the planted persona of every character (gold for all): effects evenly in [-1, 1] on log revenue
    ds = SyntheticPersonasDataset(n_characters=3000, n_personas=6, n_gold=3000)
    data = ds.load()
    persona = data.gold.sort_values("row")["trope"].str.replace("persona", "").astype(int).to_numpy()
    res = revenue_ols(data.chars["wiki_id"], persona, data.revenue, n_random=3)
    m = res.metrics
    assert m["revenue/n_movies"] == data.revenue.notna().sum() and m["revenue/movies_without_revenue"] > 0
    assert m["revenue/r2"] > 0.3 and m["revenue/adj_r2"] > 0.3 and m["revenue/r2_random"] < 0.05
    coef = res.coefficients[res.coefficients["model"] == "main"].set_index("term")["coef"]
    assert coef["persona_5"] > 0.5 and coef["persona_0"] < -0.5  # the right signs
    assert coef["persona_5"] - coef["persona_0"] == pytest.approx(2.0, abs=0.4)  # planted difference
    assert m["revenue/r2_interactions"] >= m["revenue/r2"]
    assert "OLS Regression Results" in res.summary and "persona_" in res.summary_interactions
    # no planted effect: no R² beyond chance
    flat = SyntheticPersonasDataset(n_characters=3000, n_personas=6, n_gold=3000, revenue_effect=0.0).load()
    assert revenue_ols(flat.chars["wiki_id"], persona, flat.revenue, n_random=0).metrics["revenue/adj_r2"] < 0.02


def test_revenue_bad_input_is_counted_and_skipped():
    wiki = ["1", "1", "2", "3", "4", "5", "6"] * 20
    pers = np.tile([0, 1, 0, 1, 0, 1, 2], 20)
    rng = np.random.default_rng(0)
    # movie 3: no revenue, 4: not a number, 5: zero, 6: not in the metadata at all
    rev = pd.Series({"1": 1e6, "2": 2e6, "3": np.nan, "4": "n/a", "5": 0.0, "7": 5e6})
    with pytest.raises(ValueError, match="2 movies with revenue"):
        revenue_ols(wiki, pers, rev)
    wiki = [str(i) for i in range(60) for _ in range(3)]
    pers = rng.integers(0, 3, len(wiki))
    rev = pd.Series({str(i): (np.nan if i % 4 == 0 else "bad" if i % 4 == 1 else 1e6 * (1 + i)) for i in range(59)})
    m = revenue_ols(wiki, pers, rev, top_n=3, min_pair_movies=1).metrics
    assert m["revenue/n_movies"] == 29 and m["revenue/movies_without_revenue"] == 31  # 15 NaN + 15 bad + movie 59
    # the task's selection: movies without revenue or without a character of >= min_words words
    rows, counts = select_movies(["a", "a", "b", "c"], [5, 0, 1, 4], pd.Series({"a": 1.0, "b": 2.0, "c": np.nan}))
    assert rows.tolist() == [0] and counts["revenue/movies_without_revenue"] == 1
    assert counts["revenue/movies_without_characters"] == 1 and counts["revenue/movies_sampled"] == 1
    # metadata strings -> revenue: empty, non-numeric, <= 0 are missing
    meta = pd.DataFrame({"wiki_id": ["1", "2", "3", "4"], "revenue": ["12.5", "", "abc", "-3"]})
    assert revenue_by_movie(meta).notna().tolist() == [True, False, False, False]


def test_archetype_indicators_are_binary_per_movie():
    ind = archetype_indicators(["m1", "m1", "m1", "m2"], [3, 3, 1, 1])
    assert ind.loc["m1"].tolist() == [1, 1] and ind.loc["m2"].tolist() == [1, 0]
    assert list(ind.columns) == ["persona_1", "persona_3"]


def test_task_logs_revenue_on_synthetic(make_cfg, tmp_path):
    m = run_metrics(make_cfg, ["model.n_topics=12", "model.n_personas=6"], tmp_path)
    assert m["revenue/skipped"] == 0 and m["revenue/r2"] > 0.2 and m["revenue/r2"] > m["revenue/r2_random"] + 0.1
    assert m["revenue/adj_r2"] > m["revenue/adj_r2_random"]
    for k in ("revenue/adj_r2", "revenue/r2_interactions", "revenue/adj_r2_interactions", "revenue/n_movies"):
        assert k in m
    art = tmp_path / "out" / "artifacts" / "revenue"
    assert "R-squared" in (art / "ols_summary.txt").read_text()
    assert (art / "ols_interactions_summary.txt").exists() and (art / "coefficients.csv").exists()


def test_task_without_revenue_skips_with_a_count(make_cfg, tmp_path):
    m = run_metrics(make_cfg, ["model.n_topics=12", "model.n_personas=6", "dataset.revenue_missing=1.0"], tmp_path)
    assert m["revenue/skipped"] == 1 and "revenue/r2" not in m and m["val/vi"] < 0.6
