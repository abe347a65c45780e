"""task=personas: sentence-embedding personas (embedding_kmeans / embedding_agglomerative), their cache, and
the genre block they share with tfidf_kmeans."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mediaml.tasks.personas.task import PersonasTask
from mediaml.tracking.tracker import Tracker

REPO = Path(__file__).resolve().parents[1]
# Small synthetic set for the sentence encoder (synthetic words are long word-pieces: ~40 texts/s).
SMALL = ["dataset.n_characters=400", "dataset.n_gold=150"]


def run_metrics(make_cfg, overrides, tmp_path):
    cfg = make_cfg(["task=personas", "logger=none", f"paths.cache_dir={tmp_path / 'cache'}", *overrides])
    return PersonasTask(cfg).run(Tracker(tmp_path / "out"))


# -- embedding personas ------------------------------------------------------------------------------
@pytest.mark.slow  # long: CI runs it with -m slow
@pytest.mark.parametrize("model", ["embedding_kmeans", "embedding_agglomerative"])
def test_embedding_models_recover_planted_personas(make_cfg, tmp_path, model):
    extra = ["model.linkage=ward"] if model == "embedding_agglomerative" else []
    m = run_metrics(make_cfg, [f"model={model}", "model.n_personas=6", "task.revenue=false", *SMALL, *extra],
                    tmp_path)
    # bound: VI < 0.8 nats, AMI > 0.7 (6 personas; random same-size VI ~3.3; measured at this size,
    # seed 0: kmeans and ward both VI 0.057, AMI 0.983; at 1,500 characters kmeans 0.153, ward 0.130)
    assert m["val/vi"] < 0.8 and m["val/ami"] > 0.7
    assert m["val/vi_gain"] > 2.0
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


def test_personas_modules_import_neither_torch_nor_the_encoder():
    code = ("import sys, mediaml.tasks.personas.task, mediaml.tasks.personas.embedding, mediaml.tasks.personas.revenue; "
            "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


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
