"""task=personas: planted personas are recovered, gold matching works on a real excerpt, bad input is named."""
import json

import pandas as pd
import pytest

from conftest import require_real
from mediaml.errors import DataError, DataNotFoundError
from mediaml.tasks.personas.data import (CharacterFeaturesDataset, match_gold, parse_list, read_gold,
                                   tokens)
from mediaml.run import run
from mediaml.tasks.personas.task import PersonasTask
from mediaml.tracking.tracker import Tracker

FEATURES = "personas_extra/utopiansky2022_plot_nlp_char_features/char_features_realigned_all.tsv.gz"
SAMPLE = "personas_derived/character_attributes_sample_300.csv"


def run_metrics(make_cfg, overrides, tmp_path):
    cfg = make_cfg(["task=personas", "logger=none", *overrides])
    return PersonasTask(cfg).run(Tracker(tmp_path / "out"))


# -- synthetic ---------------------------------------------------------------------------------------
def test_planted_personas_are_recovered(make_cfg, tmp_path):
    # 6 planted personas over 12 word topics per role, 300 gold characters; random 6-way VI is ~3.3 nats.
    m = run_metrics(make_cfg, ["model.n_topics=12", "model.n_personas=6"], tmp_path)
    assert m["val/vi"] < 0.6  # bound; measured 0.295 at seed 0
    assert m["val/ami"] > 0.8 and m["val/purity"] > 0.8
    assert m["val/vi_random"] - m["val/vi"] > 3 * m["val/vi_random_std"]
    assert m["val/vi_bits"] == pytest.approx(m["val/vi"] / 0.6931471805599453)
    for name in ("persona_topics.csv", "gold_predictions.csv", "figures/vi_vs_random.png"):
        assert (tmp_path / "out" / "artifacts" / name).exists()


def test_lda_words_recovers_too(make_cfg, tmp_path):
    m = run_metrics(make_cfg, ["model=lda_words", "model.n_personas=6"], tmp_path)
    assert m["val/vi"] < 0.6 and m["val/ami"] > 0.8


def test_structure_is_planted_not_accidental(make_cfg, tmp_path):
    # Words drawn from any topic: no persona signal left, the same model falls to chance.
    m = run_metrics(make_cfg, ["model.n_topics=12", "model.n_personas=6", "dataset.noise=1.0"], tmp_path)
    assert m["val/ami"] < 0.1 and m["val/vi"] > 2.5


def test_run_logs_objective_through_mlflow(make_cfg, store, tmp_path):
    cfg = make_cfg(["task=personas", "model.n_topics=12", "model.n_personas=6", "task.n_random=5"])
    value = run(cfg)
    assert 0 <= value < 0.6


# -- parsing and bad input ---------------------------------------------------------------------------
def test_list_strings_as_the_files_write_them():
    assert parse_list("['warns']", "f") == ["warns"]
    assert parse_list("0.0", "f") == [] and parse_list("[]", "f") == [] and parse_list("", "f") == []
    # the features TSV double-quotes cells that contain a quote, twice
    assert parse_list('"""[\'takes\', """"visit\'s"""", \'gave\']"""', "f") == ["takes", "visit's", "gave"]
    assert tokens(["Gamemaker", "visit's", "old"]) == ["gamemaker", "old"]


def test_malformed_list_string_names_file_row_and_field():
    with pytest.raises(DataError, match=r"chars.tsv row 7 field agent_verbs"):
        parse_list("warns, runs", "chars.tsv row 7 field agent_verbs")


def test_bad_gold_line_names_file_and_line(tmp_path):
    f = tmp_path / "gold.txt"
    f.write_text('hero\t{"char": "A", "movie": "M", "id": "/m/1"}\nvillain\t{not json}\n')
    with pytest.raises(DataError, match=r"gold.txt:2: the JSON"):
        read_gold(f)
    f.write_text('hero {"char": "A"}\n')
    with pytest.raises(DataError, match=r"gold.txt:1: expected 'trope<TAB>json'"):
        read_gold(f)


def test_missing_file_says_which_and_where(make_cfg, tmp_path):
    cfg = make_cfg(["task=personas", "dataset=cmu_personas", f"paths.data_dir={tmp_path}"])
    with pytest.raises(DataNotFoundError, match="char_features_realigned_all"):
        PersonasTask(cfg).check_inputs()


def test_matching_rules_on_a_hand_made_excerpt():
    chars = pd.DataFrame({"wiki_id": ["1", "1", "1", "2"], "character": ["Philip", "Brainard", "Sarah", "Lieutenant"],
                          "adj": [["odd"], [], [], []], "active": [["invents", "flies"], ["forgets"], [], []],
                          "patient": [[], [], [], []]})
    movies = pd.DataFrame({"wiki_id": ["1", "2"], "title": ["Flubber", "Platoon"]})
    gold = pd.DataFrame({"gidx": [0, 1, 2], "trope": ["prof", "officer", "x"],
                         "gold_name": ["Professor Philip Brainard", "The Lieutenant", "Nobody"],
                         "movie": ["Flubber", "Platoon", "Flubber"], "char_id": ["a", "b", "c"]})
    matched, res = match_gold(chars, gold, movies)
    # two candidates (first name, surname) -> the row with most words; "The Lieutenant" only with titles kept
    assert matched["row"].tolist() == [0, 3]
    assert res.loc[0, "n_candidates"] == 2 and res.loc[1, "how"] == "name tokens incl. titles"
    assert res.loc[2, "row"] == -1


# -- real data -----------------------------------------------------------------------------------------
@pytest.mark.slow  # long: CI runs it with -m slow
def test_gold_matching_on_real_data():
    d = require_real(FEATURES)
    ds = CharacterFeaturesDataset(name="cmu_personas", data_dir=str(d), features_file=FEATURES,
                                  gold_file="cmu_movie_summary/tvtropes.clusters.txt",
                                  metadata_file="cmu_movie_summary/movie.metadata.tsv.gz")
    data = ds.load()
    c = data.counts
    assert c["data/characters"] == 150624 and c["data/movies"] == 35429
    # 443 of 501 lines (anchors: 443; gold501_coverage.csv: 441, all included), 389 characters, 71 tropes
    assert c["data/gold_lines"] == 501 and c["data/gold_matched"] == 443
    assert c["data/gold_matched_characters"] == 389 and c["data/gold_matched_tropes"] == 71
    assert c["data/gold_rows_shared_by_two_characters"] == 0
    cov = pd.read_csv(d / "personas_extra/gold501_coverage.csv", keep_default_na=False)
    theirs = set(cov.loc[cov["utopiansky_realigned"] != "", "gidx"])
    assert theirs <= set(data.gold["gidx"])
    flubber = data.gold[data.gold["gold_name"] == "Professor Philip Brainard"]
    assert flubber["matched_name"].tolist() == ["Philip"]


def test_personas_sample_reads_the_seed_format():
    d = require_real(SAMPLE)
    from mediaml.tasks.personas.data import PersonasSampleDataset

    data = PersonasSampleDataset(name="personas_sample", data_dir=str(d), features_file=SAMPLE,
                                 gold_file="cmu_movie_summary/tvtropes.clusters.txt",
                                 metadata_file="cmu_movie_summary/movie.metadata.tsv.gz").load()
    katniss = data.chars[data.chars["character"] == "Katniss"].iloc[0]
    assert katniss["active"][:3] == ["taken", "survives", "drops"] and katniss["adj"] == []
    assert data.chars.loc[0, "genres"]  # the movie's genres ride along (The Hunger Games)
    assert data.counts["data/characters_without_words"] > 0  # counted, kept out of fitting by task.min_words


def test_tfidf_kmeans_recovers_planted_personas(make_cfg, tmp_path):
    m = run_metrics(make_cfg, ["model=tfidf_kmeans", "model.n_personas=6"], tmp_path)
    assert m["val/vi"] < 0.6 and m["val/ami"] > 0.8


def test_genre_weight_without_genres_is_a_clear_error(make_cfg, tmp_path):
    with pytest.raises(ValueError, match="no movie genres"):
        run_metrics(make_cfg, ["model=tfidf_kmeans", "model.genre_weight=1"], tmp_path)


def test_bad_genre_json_names_file_row_and_column(tmp_path):
    from mediaml.tasks.personas.data import read_movie_titles

    f = tmp_path / "movie.metadata.tsv"
    f.write_text('1\t/m/1\tFlubber\t1997\t\t93\t{}\t{}\t{"/m/01": "Comedy"}\n'
                 '2\t/m/2\tPlatoon\t1986\t\t120\t{}\t{}\t{Drama\n')
    with pytest.raises(DataError, match=r"movie.metadata.tsv row 2 column 9"):
        read_movie_titles(f)
    f.write_text('1\t/m/1\tFlubber\t1997\t\t93\t{}\t{}\t{"/m/01": "Family Film"}\n')
    assert read_movie_titles(f)["genres"].tolist() == [["familyfilm"]]


@pytest.mark.slow
def test_real_genre_kmeans_beats_random(make_cfg, tmp_path):
    require_real(FEATURES)
    # experiment=personas_genre_kmeans: measured VI 3.904 vs random 4.558 ± 0.052, AMI 0.140 at seed 0
    m = run_metrics(make_cfg, ["experiment=personas_genre_kmeans", "seed=0"], tmp_path)
    assert m["data/gold_matched"] == 443
    assert m["val/vi_random"] - m["val/vi"] > 3 * m["val/vi_random_std"]
    assert m["val/ami"] >= 0.10


def test_lda_genre_columns_need_genres(make_cfg, tmp_path):
    with pytest.raises(ValueError, match="no movie genres"):
        run_metrics(make_cfg, ["model.n_topics=12", "model.n_personas=6", "model.genre_weight=1"], tmp_path)


def test_missing_column_names_file_and_column(tmp_path):
    from mediaml.tasks.personas.data import PersonasSampleDataset

    (tmp_path / "chars.csv").write_text(",wiki_id,character,adj,active\n0,1,Rue,[],['draws']\n")
    (tmp_path / "gold.txt").write_text('hero\t{"char": "Rue", "movie": "M", "id": "/m/1"}\n')
    (tmp_path / "meta.tsv").write_text("1\t/m/1\tM\t\t\t\t{}\t{}\t{}\n")
    ds = PersonasSampleDataset(name="personas_sample", data_dir=str(tmp_path), features_file="chars.csv",
                               gold_file="gold.txt", metadata_file="meta.tsv")
    with pytest.raises(DataError, match=r"chars.csv: missing column\(s\) \['patient'\]"):
        ds.load()


def test_grid_experiment_composes(make_cfg):
    cfg = make_cfg(["experiment=personas_seed003_grid"])
    assert cfg.task.name == "personas" and cfg.dataset.name == "cmu_personas"
    assert cfg.hydra.sweeper.params["model.n_topics"] == "25,50,100"


@pytest.mark.slow
def test_real_seed003_pipeline_is_at_chance(make_cfg, tmp_path):
    require_real(FEATURES)
    # The command (fit on 20k sample + gold): measured VI 3.932 vs random 3.939 ± 0.038, AMI 0.006.
    m = run_metrics(make_cfg, ["dataset=cmu_personas", "model=lda_topics", "model.n_topics=100",
                               "model.n_personas=100", "seed=0"], tmp_path)
    assert m["data/gold_matched"] == 443 and m["data/n_fit"] > 20000
    assert 3.5 < m["val/vi"] < 4.3 and m["val/ami"] < 0.06
    assert m["val/vi_floor_multi_trope"] == pytest.approx(0.697, abs=1e-3)
