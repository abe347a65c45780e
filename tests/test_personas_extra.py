"""task=personas, issue 5 items 3/5/6: embedding personas, the revenue OLS, the personas_optuna sweep."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mediaml.tasks.personas.revenue import archetype_indicators, revenue_ols, select_movies
from mediaml.tasks.personas.data import SyntheticPersonasDataset, revenue_by_movie
from mediaml.tasks.personas.task import PersonasTask
from mediaml.tracking.tracker import Tracker

REPO = Path(__file__).resolve().parents[1]
# Small synthetic set for the sentence encoder (synthetic words are long word-pieces: ~40 texts/s).
SMALL = ["dataset.n_characters=400", "dataset.n_gold=150"]


def run_metrics(make_cfg, overrides, tmp_path):
    cfg = make_cfg(["task=personas", "logger=none", f"paths.cache_dir={tmp_path / 'cache'}", *overrides])
    return PersonasTask(cfg).run(Tracker(tmp_path / "out"))


# -- embedding personas ------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["embedding_kmeans", "embedding_agglomerative"])
def test_embedding_models_recover_planted_personas(make_cfg, tmp_path, model):
    extra = ["model.linkage=ward"] if model == "embedding_agglomerative" else []
    m = run_metrics(make_cfg, [f"model={model}", "model.n_personas=6", "task.revenue=false", *SMALL, *extra],
                    tmp_path)
    # bound: VI < 0.8 nats, AMI > 0.7 (6 personas; random same-size VI ~3.3; measured at this size,
    # seed 0: kmeans and ward both VI 0.057, AMI 0.983; at 1,500 characters kmeans 0.153, ward 0.130)
    assert m["test/vi"] < 0.8 and m["test/ami"] > 0.7
    assert m["test/vi_gain"] > 2.0
    table = pd.read_csv(tmp_path / "out" / "artifacts" / "persona_topics.csv")
    assert set(table["role"]) == {"adj", "active", "patient"} and table["persona"].nunique() == 6
    # a persona's top adjective has a high share among its members (planted: 2 topics of 8 words)
    assert table.loc[(table["role"] == "adj") & (table["rank"] == 0), "lift"].min() > 1.5


def test_embedding_cache_is_reused(tmp_path):
    from mediaml.tasks.personas.embedding import EmbeddingEncoder, character_texts

    chars = pd.DataFrame({"adj": [["brave"], []], "active": [["fights", "saves"], []], "patient": [[], ["kidnapped"]]})
    texts = character_texts(chars)
    assert texts == ["adjectives: brave; does: fights, saves", "is done to: kidnapped"]
    enc = EmbeddingEncoder(cache_dir=str(tmp_path))
    a = enc(texts)
    assert a.shape == (2, 384) and np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-4)
    again = EmbeddingEncoder(cache_dir=str(tmp_path))
    assert np.array_equal(again(texts), a) and again.encoded == 0 and again.cached == 2
    assert enc.key(texts) != enc.key(texts[::-1])


def test_genre_task_never_imports_torch():
    code = ("import sys, mediaml.tasks.personas.task, mediaml.tasks.personas.embedding, mediaml.tasks.personas.revenue; "
            "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


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
    assert m["revenue/skipped"] == 1 and "revenue/r2" not in m and m["test/vi"] < 0.6


# -- personas_optuna ---------------------------------------------------------------------------------
def test_personas_optuna_composes(make_cfg):
    cfg = make_cfg(["task=personas", "dataset=cmu_personas", "hparams_search=personas_optuna"])
    assert cfg.task.objective.metric == "test/vi_gain" and cfg.hydra.sweeper.direction == "maximize"
    assert cfg.model._target_.endswith("PersonaLDA") and cfg.task.revenue is False
    assert cfg.hydra.sweeper.study_name == "personas_optuna_cmu_personas"
    assert {"model.n_topics", "model.n_personas", "model.min_freq", "model.max_freq",
            "model.vector_size", "model.window"} <= set(cfg.hydra.sweeper.params)


def test_personas_optuna_two_trials_on_synthetic(tmp_path):
    import optuna

    # max_freq fixed on the command line (it replaces the config's dimension): the synthetic words
    # are uniformly frequent, so a low cap would empty the vocabulary.
    args = ["-m", "task=personas", "hparams_search=personas_optuna", "hydra.sweeper.n_trials=2", "logger=none",
            "model.max_freq=0.9", "model.n_topics=int(interval(8,16))", "model.n_personas=int(interval(4,8))",
            f"paths.output_root={tmp_path}"]
    proc = subprocess.run([sys.executable, "train.py", *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    db = tmp_path / "personas/sweeps/personas_optuna_synthetic_personas/optuna.db"
    study = optuna.load_study(study_name="personas_optuna_synthetic_personas", storage=f"sqlite:///{db}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2 and study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert all(t.value > 1.0 for t in done)  # vi_gain in nats: planted personas, far above random
    assert 8 <= done[0].params["model.n_topics"] <= 16


# -- embedding + genres ("do the words add to the genres?") --------------------------------------------
def _genre_chars(n_per: int = 20, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """3 genre groups x 2 planted 'word' groups, crossed: genre and word partitions are independent."""
    rng = np.random.default_rng(seed)
    genres = [["western"], ["horror", "thriller"], ["comedy", "romance"]]
    rows, g_lab, w_lab = [], [], []
    for g in range(3):
        for w in range(2):
            for _ in range(n_per):
                rows.append({"adj": ["x"], "active": [], "patient": [], "genres": genres[g],
                             "emb": np.eye(4, dtype=np.float32)[w] + 0.01 * rng.standard_normal(4).astype(np.float32)})
                g_lab.append(g)
                w_lab.append(w)
    return pd.DataFrame(rows), np.array(g_lab), np.array(w_lab)


def _fake_embed(chars: pd.DataFrame) -> np.ndarray:  # stands in for the sentence encoder (no torch)
    e = np.stack(chars["emb"])
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_embedding_genre_block_is_used():
    from sklearn.metrics import adjusted_rand_score

    from mediaml.tasks.personas.models import PersonaKMeans
    from mediaml.tasks.personas.embedding import PersonaEmbedding

    chars, g_lab, w_lab = _genre_chars()
    # genres only (word_weight=0): nothing is encoded, the 3 clusters are the 3 genre groups
    m = PersonaEmbedding(n_personas=3, word_weight=0, genre_weight=1, max_fit=None)
    m.embed = lambda c: pytest.fail("word_weight=0 must not encode")
    m.fit(chars)
    assert adjusted_rand_score(g_lab, m.labels_) == 1.0
    assert adjusted_rand_score(g_lab, m.predict(chars)) == 1.0
    # the genre block is tfidf_kmeans' own (same vectoriser, same l2-normalisation)
    km = PersonaKMeans(n_personas=3, min_df=1, word_weight=0, genre_weight=1).fit(chars)
    assert np.allclose(m.features(chars), km._matrix(chars).toarray(), atol=1e-6)
    assert set(m.persona_table()["role"]) == {"adj", "genre"}
    # words only: the clusters follow the (fake) embedding, 2 groups; words + genres at 6 clusters: both
    words = PersonaEmbedding(n_personas=2, max_fit=None)
    words.embed = _fake_embed
    assert adjusted_rand_score(w_lab, words.fit(chars).labels_) == 1.0
    both = PersonaEmbedding(n_personas=6, genre_weight=1, max_fit=None)
    both.embed = _fake_embed
    assert adjusted_rand_score(g_lab * 2 + w_lab, both.fit(chars).labels_) == 1.0
    assert both.features(chars).shape[1] == 4 + len(both.genres_.vocabulary_)
    with pytest.raises(ValueError, match="both 0"):
        PersonaEmbedding(word_weight=0, genre_weight=0)
