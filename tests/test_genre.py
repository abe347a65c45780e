"""task=genre: planted structure is recovered, the real CS98X reproduces seed 004, bad input is named."""
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import require_real, user_dataset
from mediaml.tasks.genre.class_maps import map_labels
from mediaml.errors import DataError, DataNotFoundError
from mediaml.tasks.genre.synthetic import generate_genre_tables
from mediaml.run import run
from mediaml.tasks.genre.task import GenreTask
from mediaml.tracking.tracker import Tracker

REAL = "spotify_cs98x/CS98XClassificationTrain.csv"


def run_metrics(make_cfg, overrides, tmp_path):
    cfg = make_cfg(["logger=none", *overrides])
    return GenreTask(cfg).run(Tracker(tmp_path / "out"))


def test_synthetic_genres_are_recovered(make_cfg, tmp_path):
    m = run_metrics(make_cfg, [], tmp_path)
    # 6 planted genres, well separated: a random forest must find them.
    assert m["test/acc"] >= 0.9
    assert m["cv/acc_mean"] >= 0.9
    assert m["data/n_classes"] == 6
    assert m["data/unlabelled_rows"] == 12 and m["data/rare_class_rows"] == 4  # counted, not silently dropped


def test_synthetic_structure_is_planted_not_accidental(make_cfg, tmp_path):
    # With the genre centres drowned in noise the same model falls towards chance: the score above is structure.
    m = run_metrics(make_cfg, ["dataset.noise=20"], tmp_path)
    assert m["test/acc"] < 0.6


def test_same_seed_repeats_metrics_other_seed_differs(make_cfg, tmp_path):
    a = run_metrics(make_cfg, ["seed=3", "task.cv_folds=3", "dataset.noise=1.5"], tmp_path)
    b = run_metrics(make_cfg, ["seed=3", "task.cv_folds=3", "dataset.noise=1.5"], tmp_path)
    c = run_metrics(make_cfg, ["seed=4", "task.cv_folds=3", "dataset.noise=1.5"], tmp_path)
    keys = [k for k in a if not k.startswith("time/")]
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
    assert any(a[k] != c[k] for k in keys)


@pytest.mark.parametrize("scaler", ["standard", "minmax"])
def test_scaler_option_changes_svc(make_cfg, tmp_path, scaler):
    plain = run_metrics(make_cfg, ["model=svc", "task.cv_folds=2"], tmp_path)
    scaled = run_metrics(make_cfg, ["model=svc", f"task.scaler={scaler}", "task.cv_folds=2"], tmp_path)
    assert scaled["test/acc"] > plain["test/acc"]  # RBF SVC on raw features (dur ~ 100s, dB ~ -10) is weak


def test_real_cs98x_random_forest_reproduces_seed_004(make_cfg, tmp_path):
    require_real(REAL)
    m = run_metrics(make_cfg, ["experiment=genre_cs98x", "seed=0"], tmp_path)  # the seed's own split
    # Seed 004: 358 songs in 26 genres with >= 3 songs; its random forest scored 0.43-0.44 on the 80/20 split.
    assert m["data/rows_kept"] == 358 and m["data/n_classes"] == 26
    assert m["data/unlabelled_rows"] == 15
    # Measured here: 0.4167 at seed 0, 0.417-0.458 over seeds 0-9.
    assert 0.38 <= m["test/acc"] <= 0.48
    assert 0.33 <= m["cv/acc_mean"] <= 0.47


@pytest.mark.slow  # long: CI runs it with -m slow
def test_real_cs98x_seed_baselines_match_the_write_up(make_cfg, tmp_path):
    require_real(REAL)
    # The seed's logistic regression, SVC and gradient boosting scores, to the digit (same split, same settings).
    for model, expected in [("logistic_regression", 0.3472), ("svc", 0.1667), ("gradient_boosting", 0.25)]:
        m = run_metrics(make_cfg, ["dataset=spotify_cs98x", f"model={model}", "task.cv_folds=2",
                                   "task.split.stratify=false"], tmp_path)
        assert m["test/acc"] == pytest.approx(expected, abs=1e-3), model


def test_condensed_genres_map_all_real_genres_to_ten(tmp_path):
    d = require_real(REAL)
    genres = pd.read_csv(d / REAL)["top genre"].dropna().unique()
    broad = set(map_labels(genres, "condensed"))
    assert len(broad) == 10
    assert map_labels(["dance pop", "dance rock", "eurodance", "deep adult standards", "atl hip hop"],
                      "condensed") == ["pop", "rock", "dance", "adult standards", "hip hop"]


def test_submission_has_a_prediction_per_test_id(make_cfg, store, tmp_path):
    d = require_real(REAL)
    run(make_cfg(["dataset=spotify_cs98x", "task.cv_folds=2", "logger.log_model=false"]))
    sub = pd.read_csv(tmp_path / "outputs" / "run" / "artifacts" / "submission.csv")
    test = pd.read_csv(d / "spotify_cs98x/CS98XClassificationTest.csv")
    assert list(sub.columns) == ["Id", "top genre"]
    assert sub["Id"].tolist() == test["Id"].tolist()
    assert sub["top genre"].notna().all()


# -- bad input --------------------------------------------------------------------------------------
def write_csvs(tmp_path, edit=None):
    train, test, _ = generate_genre_tables(seed=1)
    if edit:
        train = edit(train)
    root = tmp_path / "data" / "spotify_cs98x"
    root.mkdir(parents=True)
    train.to_csv(root / "CS98XClassificationTrain.csv", index=False)
    test.to_csv(root / "CS98XClassificationTest.csv", index=False)
    return tmp_path / "data"


def runs_of(store):
    client = MlflowClient(store)
    exps = client.search_experiments()
    return client.search_runs([e.experiment_id for e in exps]) if exps else []


def test_missing_file_names_path_config_and_source(make_cfg, store, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDIAML_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(DataNotFoundError) as err:
        run(make_cfg(["dataset=spotify_cs98x"]))
    msg = str(err.value)
    assert str(tmp_path / "empty" / "spotify_cs98x" / "CS98XClassificationTrain.csv") in msg
    assert "conf/dataset/spotify_cs98x.yaml" in msg and "Kaggle" in msg and "MEDIAML_DATA_DIR" in msg
    assert runs_of(store) == []  # stopped before any work: no run at all


def test_missing_columns_are_listed_with_the_file(make_cfg, store, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDIAML_DATA_DIR", str(write_csvs(tmp_path, lambda t: t.drop(columns=["bpm", "dnce"]))))
    with pytest.raises(DataError, match=r"CS98XClassificationTrain.csv: missing column\(s\) \['bpm', 'dnce'\]"):
        run(make_cfg(["dataset=spotify_cs98x"]))
    assert [r.info.status for r in runs_of(store)] == ["FAILED"]


def test_non_numeric_value_names_row_and_column(make_cfg, store, tmp_path, monkeypatch):
    def corrupt(t):
        t["nrgy"] = t["nrgy"].astype(object)
        t.loc[6, "nrgy"] = "loud"
        return t

    monkeypatch.setenv("MEDIAML_DATA_DIR", str(write_csvs(tmp_path, corrupt)))
    with pytest.raises(DataError, match=r"data row 7 \(Id=7\), column 'nrgy': expected a number, got 'loud'"):
        run(make_cfg(["dataset=spotify_cs98x"]))
    assert [r.info.status for r in runs_of(store)] == ["FAILED"]


def test_nothing_left_after_filtering_is_a_clear_error(make_cfg, store):
    with pytest.raises(DataError, match="no rows left after cleaning"):
        run(make_cfg(["dataset.min_class_count=100000"]))
    assert [r.info.status for r in runs_of(store)] == ["FAILED"]


def test_missing_feature_values_are_skipped_and_counted(make_cfg, tmp_path, monkeypatch):
    def holes(t):
        t.loc[[3, 8, 20], "val"] = None
        return t

    monkeypatch.setenv("MEDIAML_DATA_DIR", str(write_csvs(tmp_path, holes)))
    m = run_metrics(make_cfg, ["dataset=spotify_cs98x", "task.cv_folds=2"], tmp_path)
    labelled_holes = m["data/missing_feature_rows"]
    assert 1 <= labelled_holes <= 3
    assert m["data/rows_kept"] + labelled_holes + m["data/unlabelled_rows"] + m["data/rare_class_rows"] == m["data/rows_read"]


def test_another_table_is_a_new_dataset_config_not_new_code(make_cfg, tmp_path, monkeypatch):
    # A differently shaped table: other id, other label, other feature names, no test file.
    rng = __import__("numpy").random.default_rng(0)
    style = rng.choice(["a", "b", "c"], size=200)
    centre = {"a": 0.0, "b": 3.0, "c": 6.0}
    df = pd.DataFrame({"track_id": range(200), "notes": "x",
                       "tempo": [centre[s] + rng.normal() for s in style],
                       "energy": [centre[s] - rng.normal() for s in style], "style": style})
    df.to_csv(tmp_path / "other.csv", index=False)
    monkeypatch.setenv("MEDIAML_DATA_DIR", str(tmp_path))
    m = run_metrics(make_cfg, ["dataset=spotify_cs98x", "dataset.name=other", "dataset.train_file=other.csv",
                               "dataset.test_file=null", "dataset.id_column=track_id", "dataset.label=style",
                               "dataset.features=[tempo,energy]", "dataset.drop_columns=[notes]", "task.cv_folds=3"],
                    tmp_path)
    assert m["data/n_classes"] == 3 and m["data/rows_kept"] == 200
    assert m["test/acc"] > 0.8


def test_fold_by_fold_cv_equals_one_cross_validate_call(make_cfg, tmp_path):
    """The task scores CV one fold at a time (to report to a pruner); the numbers are sklearn's own."""
    from hydra.utils import instantiate
    from sklearn.model_selection import StratifiedKFold, cross_validate, train_test_split

    from mediaml.tasks.genre.task import build_pipeline

    cfg = make_cfg(["model=logistic_regression", "task.cv_folds=4", "task.scaler=standard", "logger=none"])
    m = GenreTask(cfg).run(Tracker(tmp_path / "out"))
    table = instantiate(cfg.dataset, _convert_="all").load()
    X_tr, _, y_tr, _ = train_test_split(table.X, table.y, test_size=0.2, random_state=0, stratify=table.y)
    model = instantiate({k: v for k, v in dict(cfg.model).items() if k != "tasks"}, _convert_="all")
    ref = cross_validate(build_pipeline("standard", model), X_tr, y_tr, scoring=["accuracy", "f1_macro"],
                         cv=StratifiedKFold(n_splits=4, shuffle=True, random_state=0))
    assert m["cv/acc_mean"] == pytest.approx(ref["test_accuracy"].mean(), abs=1e-12)
    assert m["cv/f1_macro_std"] == pytest.approx(ref["test_f1_macro"].std(), abs=1e-12)


def test_split_is_stratified_by_default_and_the_seeds_split_is_one_experiment_away(make_cfg):
    from hydra.utils import instantiate

    from mediaml.tasks.genre.task import holdout

    cfg = make_cfg([])
    table = instantiate(cfg.dataset, _convert_="all").load()
    _, _, y_tr, y_te, _ = holdout(table, 0.2, 0, bool(cfg.task.split.stratify))
    share = table.y.value_counts() * 0.2
    assert ((y_te.value_counts().reindex(share.index) - share).abs() <= 1).all()  # every class in its share
    assert make_cfg(["experiment=genre_cs98x"]).task.split.stratify is False


def test_a_group_column_keeps_one_song_on_one_side_by_yaml_alone(tmp_path, make_cfg):
    """Playlist rows (one song in 3 playlists, its label random): a dataset YAML in the user's config folder names
    `group_column: song`; no song is then on both sides of the hold-out split or of a CV fold, and a 1-nearest-
    neighbour model drops from memorising duplicates (split by row) to chance (split by song)."""
    import numpy as np

    rng = np.random.default_rng(0)
    n_songs, genres = 200, ["a", "b", "c", "d"]
    songs = pd.DataFrame({"song": [f"s{i}" for i in range(n_songs)], "genre": rng.choice(genres, n_songs),
                          **{f"f{j}": rng.normal(size=n_songs) for j in range(4)}})
    rows = songs.loc[np.repeat(np.arange(n_songs), 3)].reset_index(drop=True)
    rows.insert(0, "entry", np.arange(len(rows)))
    rows.to_csv(tmp_path / "playlists.csv", index=False)
    search = user_dataset(tmp_path / "myconf", "playlists", f"""
_target_: mediaml.tasks.genre.data.TabularClassificationDataset
name: playlists
tasks: [genre]
data_dir: {tmp_path}
train_file: playlists.csv
id_column: entry
label: genre
group_column: song
""")
    base = [search, "dataset=playlists", "model=knn",
            "model.n_neighbors=1", "task.cv_folds=3", "task.write_submission=false"]
    from hydra.utils import instantiate

    from mediaml.tasks.genre.task import holdout

    cfg = make_cfg(base)
    table = instantiate(cfg.dataset, _convert_="all").load()
    X_tr, X_te, _, _, g_tr = holdout(table, 0.2, 0, True)
    tr_songs, te_songs = set(table.groups[X_tr.index]), set(table.groups[X_te.index])
    assert not tr_songs & te_songs and len(tr_songs | te_songs) == n_songs
    assert 0.15 <= len(X_te) / len(table.X) <= 0.25
    grouped = run_metrics(make_cfg, base, tmp_path / "grouped")
    assert grouped["data/n_groups"] == n_songs and grouped["data/rows_without_group"] == 0
    by_row = run_metrics(make_cfg, [*base, "dataset.group_column=null", "+dataset.drop_columns=[song]"], tmp_path / "rows")
    assert by_row["test/acc"] > 0.7 and by_row["cv/acc_mean"] > 0.6   # duplicates on both sides: memorised
    assert grouped["test/acc"] < 0.45 and grouped["cv/acc_mean"] < 0.4  # by song: chance (4 genres)



@pytest.mark.parametrize("name", ["forest", "extra_trees", "stumps_that_never_split", "one_tree", "naive_bayes"])
def test_impurity_importances_are_sklearns_own(name):
    import numpy as np
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.naive_bayes import GaussianNB
    from sklearn.tree import DecisionTreeClassifier

    from mediaml.tasks.genre.task import impurity_importances

    model = {"forest": RandomForestClassifier(60, max_depth=4, random_state=0),
             "extra_trees": ExtraTreesClassifier(30, random_state=1),
             "stumps_that_never_split": RandomForestClassifier(5, min_samples_split=10_000, random_state=0),
             "one_tree": DecisionTreeClassifier(random_state=0),
             "naive_bayes": GaussianNB()}[name]
    train = generate_genre_tables(n_songs=200, n_genres=4, seed=3)[0].dropna(subset=["top genre"])
    model.fit(train[["bpm", "nrgy", "dnce", "val"]], train["top genre"])
    expected = getattr(model, "feature_importances_", None)
    got = impurity_importances(model)
    if expected is None:
        assert got is None
    else:
        np.testing.assert_array_equal(got, expected)
        assert got.shape == (4,)
