"""Sweeps of the real `train.py` on synthetic genre data: the optuna sweeper (serial, parallel,
interrupted then resumed, refused rerun) and a plain grid multirun. Each writes only to its tmp dir
(Hydra outputs via paths.output_root, MLflow via MLFLOW_TRACKING_URI)."""
from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parents[1]
OPTUNA = ("-m", "hparams_search=genre_optuna", "logger.log_model=false", "task.cv_folds=3")
STUDY = "genre_optuna_synthetic_genre"
SWEEP_ID = f"genre/sweeps/{STUDY}"  # sweep dir relative to paths.output_root, fixed per study
optuna.logging.set_verbosity(optuna.logging.WARNING)


def command(out: Path, *args: str) -> list[str]:
    return [sys.executable, "train.py", *args, f"paths.output_root={out}"]  # -m must come first


def env(out: Path) -> dict[str, str]:
    return dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{out}/mlflow.db")


def train(out: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(command(out, *args), cwd=REPO, env=env(out), capture_output=True, text=True,
                          timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"train.py {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    assert "database is locked" not in proc.stdout + proc.stderr
    return proc


def all_runs(out: Path) -> list:
    client = MlflowClient(f"sqlite:///{out}/mlflow.db")
    return client.search_runs([client.get_experiment_by_name("genre").experiment_id], max_results=1000)


def runs(out: Path) -> list:
    """The job runs (the sweep's children), not its parent."""
    return [r for r in all_runs(out) if r.data.tags.get("mediaml.role") != "sweep"]


def parents(out: Path) -> list:
    return [r for r in all_runs(out) if r.data.tags.get("mediaml.role") == "sweep"]


def parent_artifacts(out: Path, run_id: str) -> dict[str, Path]:
    import mlflow.artifacts

    local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="sweep", dst_path=str(out / "dl"),
                                                     tracking_uri=f"sqlite:///{out}/mlflow.db"))
    return {str(f.relative_to(local)): f for f in local.rglob("*") if f.is_file()}


def assert_only_the_best_logged_a_model(out: Path, kids: list, best) -> None:
    """logger.log_model=best (a sweep's default): one logged model, the best trial's, loadable and predicting;
    every trial kept its fitted model in its job folder, the others still say so in their tag."""
    import joblib
    import mlflow.sklearn

    client = MlflowClient(f"sqlite:///{out}/mlflow.db")
    (model,) = client.search_logged_models(experiment_ids=[best.info.experiment_id])
    assert model.source_run_id == best.info.run_id
    pending = {r.info.run_id for r in client.search_runs([best.info.experiment_id])
               if "mediaml.model_pending" in r.data.tags}
    assert pending == {r.info.run_id for r in kids} - {best.info.run_id}
    assert client.get_run(best.info.run_id).data.tags["mediaml.model_logged_by"] == "the sweep: best trial"
    for r in kids:
        assert (Path(r.data.tags["hydra.output_dir"]) / "artifacts" / "model.joblib").is_file()
    local = joblib.load(Path(best.data.tags["hydra.output_dir"]) / "artifacts" / "model.joblib")
    uri = f"models:/{model.model_id}"
    mlflow.set_tracking_uri(f"sqlite:///{out}/mlflow.db")
    try:
        info = mlflow.models.get_model_info(uri)
        example = mlflow.models.Model.load(uri).load_input_example()
        logged = mlflow.sklearn.load_model(uri)
    finally:
        mlflow.set_tracking_uri(None)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    assert info.signature is not None and len(example) == 5  # signature and example from the trial's data
    assert (logged.predict(example) == local.predict(example)).all()  # the best trial's fitted pipeline
    assert_only_the_best_logged_figures(client, kids, best)


def assert_only_the_best_logged_figures(client, kids: list, best) -> None:
    """logger.figures=best (a sweep's default): every trial logs its tables (the confusion matrix as CSV), only the
    best trial its PNGs, saved at the sweep's end from what the trial kept; nothing kept is left behind."""
    from PIL import Image

    for r in kids:
        files = {a.path for d in ("test", "figures") for a in client.list_artifacts(r.info.run_id, d)}
        assert "test/confusion_matrix.csv" in files, r.info.run_name
        pngs = {f for f in files if f.endswith(".png")}
        tags = client.get_run(r.info.run_id).data.tags
        assert "mediaml.figures_pending" not in tags
        assert not (Path(r.data.tags["hydra.output_dir"]) / ".mediaml" / "pending_figures").exists()
        if r.info.run_id != best.info.run_id:
            assert not pngs, r.info.run_name
            continue
        # a forest's feature importances too (gaussian_nb has none)
        assert pngs == {f.replace(".csv", ".png") for f in files if f.endswith(("confusion_matrix.csv", "importance.csv"))}
        assert "test/confusion_matrix.png" in pngs
        assert tags["mediaml.figures_logged_by"] == "the sweep: best trial"
        cm = Image.open(client.download_artifacts(r.info.run_id, "test/confusion_matrix.png"))
        assert min(cm.size) > 300  # a drawn matrix, not an empty canvas


def statuses(out: Path) -> list[str]:
    return sorted(r.info.status for r in runs(out))


def trials(out: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=STUDY, storage=f"sqlite:///{out}/{SWEEP_ID}/optuna.db").trials


def n_complete(db: Path) -> int:
    """COMPLETE trials in the sqlite file of a running sweep, read-only (opening it through Optuna
    would create tables, racing the sweep's own); 0 until the study exists."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            return con.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.fixture(scope="module")
def sweep4(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep4")
    # logger.log_model left at its default (auto: best in a sweep)
    proc = train(out, *[a for a in OPTUNA if not a.startswith("logger.log_model")], "hydra.sweeper.n_trials=4")
    (out / "stdout.txt").write_text(proc.stdout)
    return out


def test_a_sweep_ends_with_its_best_trial_and_parent_run(sweep4):
    (parent,) = parents(sweep4)
    best = next(r for r in runs(sweep4) if r.data.tags.get("best") == "true")
    block = (sweep4 / "stdout.txt").read_text().split(f"== sweep {STUDY} | 4/4 trials complete ==")[1]
    num, value = best.data.tags["sweep.job_num"], best.data.metrics["cv/acc_mean"]
    assert f"best       trial #{num}: cv/acc_mean = {value:.4g} (maximize)" in block
    assert f"its files: {best.data.tags['hydra.output_dir']}" in block
    assert f"parent run {parent.info.run_id}" in block
    exp = parent.info.experiment_id
    assert f"mlflow ui --backend-store-uri sqlite:///{sweep4}/mlflow.db" in block
    assert f"http://127.0.0.1:5000/#/experiments/{exp}/runs/{parent.info.run_id}" in block
    assert f"best run   http://127.0.0.1:5000/#/experiments/{exp}/runs/{best.info.run_id}" in block


def test_optuna_sweep_tracks_every_trial_in_one_sweep(sweep4):
    tracked = runs(sweep4)
    assert [r.info.status for r in tracked] == ["FINISHED"] * 4
    assert {r.data.tags["sweep.id"] for r in tracked} == {SWEEP_ID}
    assert sorted(r.data.tags["sweep.job_num"] for r in tracked) == ["0", "1", "2", "3"]
    assert {r.data.tags["mediaml.hparams_search"] for r in tracked} == {"genre_optuna"}

    done = trials(sweep4)
    assert [t.state.name for t in done] == ["COMPLETE"] * 4
    results = yaml.safe_load((sweep4 / SWEEP_ID / "optimization_results.yaml").read_text())
    assert results["direction"] == "maximize" and results["n_complete_trials"] == 4
    assert results["best_value"] == max(t.value for t in done)
    # Job folder and MLflow job_num are the trial number: the best trial's run holds the best value.
    best_run = next(r for r in tracked if r.data.tags["sweep.job_num"] == str(results["best_trial"]))
    assert best_run.data.metrics["cv/acc_mean"] == pytest.approx(results["best_value"])
    assert (sweep4 / SWEEP_ID / str(results["best_trial"]) / ".hydra").is_dir()


def test_a_sweep_is_one_parent_run_with_its_trials_nested(sweep4):
    (parent,) = parents(sweep4)
    kids = runs(sweep4)
    assert parent.info.status == "FINISHED" and parent.info.run_name == f"sweep {STUDY}"
    assert {r.data.tags["mlflow.parentRunId"] for r in kids} == {parent.info.run_id}
    assert sorted(r.info.run_name for r in kids) == ["#00 random_forest", "#01 random_forest", "#02 random_forest",
                                                    "#03 random_forest"]
    # siblings log the same keys, and nothing that depends on the machine
    (keys,) = {frozenset(r.data.params) for r in kids}
    assert not [k for k in keys if k.startswith(("trainer.", "paths.", "callbacks.")) or k == "logger.tracking_uri"]
    assert {"model.n_estimators", "model.max_depth", "seed"} <= keys
    assert {r.data.tags["config.paths.output_root"] for r in kids} == {str(sweep4)}  # machine values: tags
    # parent: search space, sampler, fixed overrides; best value under the objective's name; counts; tags
    p, m, t = parent.data.params, parent.data.metrics, parent.data.tags
    assert p["search.model.n_estimators"] == "int(interval(50, 300))" and p["sampler.seed"] == "0"
    assert p["fixed.task.cv_folds"] == "3" and p["sampler._target_"] == "optuna.samplers.TPESampler"
    done = trials(sweep4)
    best = max(done, key=lambda tr: tr.value)
    assert m["cv/acc_mean"] == pytest.approx(best.value) and m["sweep/n_complete"] == 4 and m["sweep/n_failed"] == 0
    assert t["optuna.study_name"] == STUDY and t["optuna.direction"] == "maximize"
    assert t["optuna.storage"] == f"sqlite:///{sweep4}/{SWEEP_ID}/optuna.db"
    best_kids = [r for r in kids if r.data.tags.get("best") == "true"]
    assert len(best_kids) == 1 and best_kids[0].data.tags["sweep.job_num"] == t["optuna.best_trial"]
    assert best_kids[0].data.metrics["cv/acc_mean"] == pytest.approx(best.value)
    assert_only_the_best_logged_a_model(sweep4, kids, best_kids[0])
    # artifacts: the trials table and Optuna's four figures, PNG by default (logger.sweep_figures; HTML: below)
    files = parent_artifacts(sweep4, parent.info.run_id)
    import pandas as pd

    table = pd.read_csv(files["trials.csv"])
    assert table["number"].tolist() == [0, 1, 2, 3] and set(table["state"]) == {"COMPLETE"}
    assert set(table["run_id"]) == {r.info.run_id for r in kids}
    assert {"value", "duration_s", "params.model.n_estimators"} <= set(table.columns)
    for name in ("optimization_history", "param_importances", "parallel_coordinate", "slice"):
        assert files[f"figures/{name}.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [f for f in files if f.endswith(".html")]


def _small_study():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: -(t.suggest_float("x", -2, 2) - 1) ** 2 + 0.1 * t.suggest_int("n", 1, 5), n_trials=8)
    return study


@pytest.mark.parametrize("kinds, suffixes", [("png", {".png"}), ("html", {".html"}), ("both", {".png", ".html"}),
                                             ("none", set())])
def test_sweep_figures_are_written_in_the_formats_asked_for(tmp_path, kinds, suffixes):
    from mediaml.tracking.sweep import optuna_figures

    written = optuna_figures(_small_study(), tmp_path, kinds)
    names = ("optimization_history", "param_importances", "parallel_coordinate", "slice")
    assert sorted(p.name for p in written) == sorted(n + s for n in names for s in suffixes)
    for p in written:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        else:  # interactive, offline: plotly.js inlined, no CDN
            html = p.read_text()
            assert "Plotly.newPlot" in html and 'src="http' not in html and len(html) > 1_000_000, p.name


def test_an_unknown_sweep_figures_value_is_a_config_error(tmp_path):
    from mediaml.errors import ConfigError
    from mediaml.tracking.sweep import optuna_figures

    with pytest.raises(ConfigError, match="logger.sweep_figures='svg': expected one of png, html, both, none"):
        optuna_figures(_small_study(), tmp_path, "svg")


@pytest.mark.slow  # long: CI runs it with -m slow
def test_sweeps_show_prints_the_table_best_trial_and_parent_url(sweep4):
    (parent,) = parents(sweep4)
    for target in (str(sweep4 / SWEEP_ID), STUDY):
        proc = subprocess.run([sys.executable, "-m", "mediaml.sweeps", "show", target], cwd=REPO, env=env(sweep4),
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        lines = proc.stdout.splitlines()
        assert lines[0].split()[:3] == ["number", "state", "value"] and len(lines) >= 5
        assert [ln.split()[0] for ln in lines[1:5]] == ["0", "1", "2", "3"]
        best = parent.data.tags["optuna.best_trial"]
        assert f"best trial: #{best}  cv/acc_mean = " in proc.stdout
        assert f"/#/experiments/{parent.info.experiment_id}/runs/{parent.info.run_id}" in proc.stdout
    # while a sweep runs (no trials.csv yet), the table comes from its study
    from mediaml.sweeps import study_table

    live = study_table(sweep4 / SWEEP_ID)
    assert live["number"].tolist() == [0, 1, 2, 3] and set(live["state"]) == {"COMPLETE"}
    assert live["value"].tolist() == [t.value for t in trials(sweep4)]
    proc = subprocess.run([sys.executable, "-m", "mediaml.sweeps", "show", "no_such_study"], cwd=REPO,
                          env=env(sweep4), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "no sweep found" in proc.stderr and "Traceback" not in proc.stderr


def test_rerun_with_another_fixed_override_is_refused(sweep4):
    proc = train(sweep4, *OPTUNA[:-1], "task.cv_folds=4", "hydra.sweeper.n_trials=6", check=False)
    assert proc.returncode != 0
    assert "other fixed overrides" in proc.stderr and "hydra.sweeper.study_name=<new name>" in proc.stderr
    assert len(trials(sweep4)) == 4 and len(runs(sweep4)) == 4
    assert [r.info.status for r in parents(sweep4)] == ["FINISHED"]  # a refused rerun leaves the parent as it was


@pytest.mark.slow  # long: CI runs it with -m slow
def test_interrupted_sweep_resumes_without_redoing_trials(tmp_path):
    args = (*OPTUNA, "hydra.sweeper.n_trials=3")
    proc = subprocess.Popen(command(tmp_path, *args), cwd=REPO, env=env(tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while n_complete(tmp_path / SWEEP_ID / "optuna.db") < 1:
        assert proc.poll() is None and time.monotonic() < deadline, "no trial completed"
        time.sleep(0.1)
    # Ctrl-C once the next trial is inside its MLflow run, so the interrupt lands in a job.
    while "RUNNING" not in statuses(tmp_path):
        assert proc.poll() is None and time.monotonic() < deadline, "the next trial never started"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0, stderr[-3000:]
    assert statuses(tmp_path) == ["FINISHED", "KILLED"]
    (parent,) = parents(tmp_path)
    assert parent.info.status == "KILLED"  # Ctrl-C ends the sweep's parent run KILLED too
    first = trials(tmp_path)
    assert [t.state.name for t in first] == ["COMPLETE", "FAIL", "WAITING"]  # FAIL's params queued

    rerun = train(tmp_path, *args)
    assert "1/3 trials complete, 0 running elsewhere; running up to 2 here" in rerun.stderr + rerun.stdout
    done = trials(tmp_path)
    assert sum(t.state.name == "COMPLETE" for t in done) == 3
    assert done[2].params == first[1].params  # the interrupted trial ran first
    assert statuses(tmp_path) == ["FINISHED"] * 3 + ["KILLED"]
    assert {r.data.tags["sweep.id"] for r in runs(tmp_path)} == {SWEEP_ID}
    (again,) = parents(tmp_path)  # the resumed sweep reuses its parent, which now ends FINISHED
    assert again.info.run_id == parent.info.run_id and again.info.status == "FINISHED"
    assert {r.data.tags["mlflow.parentRunId"] for r in runs(tmp_path)} == {parent.info.run_id}
    assert again.data.metrics["sweep/n_complete"] == 3


def test_the_same_sweep_on_a_new_study_runs_its_trials_and_does_not_take_the_old_runs_for_them(tmp_path):
    args = (*OPTUNA, "hydra.sweeper.n_trials=1")
    train(tmp_path, *args)
    new_study = f"sqlite:///{tmp_path}/new_study.db"  # the same sweep folder and MLflow store, another study
    proc = train(tmp_path, *args, f"hydra.sweeper.storage={new_study}")
    assert "had finished" not in proc.stderr + proc.stdout  # its running trial is not the old run's
    assert statuses(tmp_path) == ["FINISHED", "FINISHED"]
    (trial,) = optuna.load_study(study_name=STUDY, storage=new_study).trials
    assert trial.state.name == "COMPLETE"
    assert trial.intermediate_values == {}  # no pruner: its folds' scores are not written to the study


@pytest.mark.slow  # long: CI runs it with -m slow
def test_parallel_sweep_with_joblib(tmp_path):
    train(tmp_path, *OPTUNA, "hydra.sweeper.n_trials=4", "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2")
    tracked = runs(tmp_path)
    assert [r.info.status for r in tracked] == ["FINISHED"] * 4
    assert {r.data.tags["sweep.id"] for r in tracked} == {SWEEP_ID}
    assert sorted(r.data.tags["sweep.job_num"] for r in tracked) == ["0", "1", "2", "3"]
    done = trials(tmp_path)
    assert [t.state.name for t in done] == ["COMPLETE"] * 4
    assert done[0].params != done[1].params and done[2].params != done[3].params  # asked together
    (parent,) = parents(tmp_path)  # joblib workers (other processes) nest under the same parent
    assert {r.data.tags["mlflow.parentRunId"] for r in tracked} == {parent.info.run_id}


@pytest.mark.slow  # long: CI runs it with -m slow
def test_grid_multirun_with_the_basic_sweeper(tmp_path):
    proc = train(tmp_path, "-m", "model=random_forest,gaussian_nb", "task.cv_folds=3")  # log_model: auto (best)
    tracked = runs(tmp_path)
    assert [r.info.status for r in tracked] == ["FINISHED"] * 2
    assert {r.data.tags["mediaml.model"] for r in tracked} == {"random_forest", "gaussian_nb"}
    (sweep_id,) = {r.data.tags["sweep.id"] for r in tracked}
    assert sweep_id.startswith("genre/multiruns/")
    (parent,) = parents(tmp_path)  # a plain grid is one parent run too, its jobs named by what they vary
    assert parent.info.run_name == "sweep model=random_forest,gaussian_nb" and parent.info.status == "FINISHED"
    assert parent.data.params["grid.model"] == "random_forest,gaussian_nb"
    assert sorted(r.info.run_name for r in tracked) == ["gaussian_nb", "random_forest"]
    assert {r.data.tags["mlflow.parentRunId"] for r in tracked} == {parent.info.run_id}
    best = max(tracked, key=lambda r: r.data.metrics["cv/acc_mean"])
    assert parent.data.metrics["cv/acc_mean"] == pytest.approx(best.data.metrics["cv/acc_mean"])
    assert best.data.tags["best"] == "true" and parent.data.metrics["sweep/n_complete"] == 2
    assert "== sweep model=random_forest,gaussian_nb | 2/2 jobs complete ==" in proc.stdout
    assert f"best       job #{best.data.tags['sweep.job_num']}: cv/acc_mean" in proc.stdout
    assert_only_the_best_logged_a_model(tmp_path, tracked, best)


def test_genre_optuna_config_resolves_when_the_sweeper_is_built(tmp_path):
    """Storage, study name, direction and sampler seed interpolate from the composed config."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    import mediaml  # noqa: F401  (the ${mediaml.*} resolvers)
    from hydra_plugins.mediaml_optuna_sweeper._core import make_sampler

    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["hparams_search=genre_optuna", f"paths.output_root={tmp_path}", "seed=7"],
                      return_hydra_config=True)
    sweeper = instantiate(cfg.hydra.sweeper)
    assert sweeper.storage == f"sqlite:///{tmp_path}/{SWEEP_ID}/optuna.db"
    assert (sweeper.study_name, sweeper.direction, sweeper.n_jobs) == (STUDY, "maximize", 1)
    sampler = make_sampler(sweeper.sampler)
    assert isinstance(sampler.inner, optuna.samplers.TPESampler) and sweeper.sampler["seed"] == 7
    assert set(sweeper.params) >= {"model.n_estimators", "++model.max_depth"}


@pytest.mark.slow  # long: CI runs it with -m slow
def test_pruner_prunes_bad_trials_after_a_fold_and_they_count_toward_n_trials(tmp_path):
    """ThresholdPruner(lower=0.3) on the real CS98X table: a trial whose running CV accuracy is below 0.3
    after a fold stops there (PRUNED in Optuna, its MLflow run KILLED with optuna.state=PRUNED); the others
    complete. Seeded TPE: trials 0 and 4 of this study score ~0.12 (measured), the rest ~0.38-0.41."""
    from conftest import require_real

    data = require_real("spotify_cs98x")
    e = dict(env(tmp_path), MEDIAML_DATA_DIR=str(data))
    args = ["-m", "hparams_search=genre_optuna", "dataset=spotify_cs98x", "hydra.sweeper.n_trials=5",
            "logger.log_model=false", "++hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner",
            "++hydra.sweeper.pruner.lower=0.3"]
    proc = subprocess.run(command(tmp_path, *args), cwd=REPO, env=e, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = optuna.load_study(study_name="genre_optuna_spotify_cs98x",
                              storage=f"sqlite:///{tmp_path}/genre/sweeps/genre_optuna_spotify_cs98x/optuna.db")
    states = [t.state.name for t in study.trials]
    assert len(states) == 5 and "PRUNED" in states and "COMPLETE" in states  # pruned ones count toward 5
    for t in study.trials:
        last = t.intermediate_values[max(t.intermediate_values)]
        assert (t.state.name == "PRUNED") == (last < 0.3), (t.number, t.intermediate_values)
        if t.state.name == "PRUNED":
            assert len(t.intermediate_values) < 5  # stopped before the last fold
    assert study.best_trial.state.name == "COMPLETE" and study.best_value >= 0.3
    kids = {r.data.tags["sweep.job_num"]: r for r in runs(tmp_path)}
    for t in study.trials:
        r = kids[str(t.number)]
        if t.state.name == "PRUNED":
            assert r.info.status == "KILLED" and r.data.tags["optuna.state"] == "PRUNED"
        else:
            assert r.info.status == "FINISHED" and "optuna.state" not in r.data.tags
    (parent,) = parents(tmp_path)
    assert parent.data.metrics["sweep/n_pruned"] == states.count("PRUNED")
    assert parent.data.metrics["cv/acc_mean"] == pytest.approx(study.best_value)
    assert parent.data.params["pruner._target_"] == "optuna.pruners.ThresholdPruner"


@pytest.mark.slow
# SIGKILL only: the workers die without a word (SIGINT in a serial sweep: test_interrupted_sweep_resumes_...)
@pytest.mark.parametrize("sig", [signal.SIGKILL])
def test_interrupted_joblib_sweep_loses_no_finished_trial_and_repeats_none(tmp_path, sig):
    """Kill a 2-at-a-time joblib sweep once its first trial has finished, rerun it: exactly n_trials COMPLETE
    trials and as many FINISHED child runs, one per trial (jobs tell their own result as they end)."""
    args = (*OPTUNA, "hydra.sweeper.n_trials=4", "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2")
    proc = subprocess.Popen(command(tmp_path, *args), cwd=REPO, env=env(tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 180
    while n_complete(tmp_path / SWEEP_ID / "optuna.db") < 1:
        assert proc.poll() is None and time.monotonic() < deadline, "no trial completed"
        time.sleep(0.05)
    os.killpg(proc.pid, sig)
    proc.wait(timeout=60)
    before = {t.number for t in trials(tmp_path) if t.state.name == "COMPLETE"}
    assert before  # the finished trial kept its result
    train(tmp_path, *args)
    done = trials(tmp_path)
    complete = sorted(t.number for t in done if t.state.name == "COMPLETE")
    assert len(complete) == 4 and before <= set(complete)
    finished = sorted(int(r.data.tags["sweep.job_num"]) for r in runs(tmp_path) if r.info.status == "FINISHED")
    assert finished == complete  # one FINISHED run per COMPLETE trial, none repeated
    assert "RUNNING" not in statuses(tmp_path)
    (parent,) = parents(tmp_path)
    assert parent.info.status == "FINISHED" and parent.data.metrics["sweep/n_complete"] == 4


@pytest.mark.slow  # long: CI runs it with -m slow
def test_a_sweep_whose_trials_all_fail_ends_its_parent_failed(tmp_path):
    proc = train(tmp_path, *OPTUNA, "hydra.sweeper.n_trials=2", "task.scaler=nonsense", check=False)
    assert proc.returncode != 0 and "all 2 trials of this sweep failed" in proc.stderr
    assert statuses(tmp_path) == ["FAILED", "FAILED"]
    (parent,) = parents(tmp_path)
    assert parent.info.status == "FAILED"


@pytest.mark.slow
def test_pruning_reaches_trials_in_joblib_workers(tmp_path):
    """The same pruning as in-process, with the trials in loky worker processes."""
    args = (*OPTUNA, "hydra.sweeper.n_trials=2", "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2",
            "++hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner", "++hydra.sweeper.pruner.lower=1.5")
    train(tmp_path, *args)
    done = trials(tmp_path)
    assert [t.state.name for t in done] == ["PRUNED", "PRUNED"]  # CV accuracy < 1.5 after the first fold
    assert all(list(t.intermediate_values) == [0] for t in done)
    assert sorted(r.info.status for r in runs(tmp_path)) == ["KILLED", "KILLED"]
    assert {r.data.tags["optuna.state"] for r in runs(tmp_path)} == {"PRUNED"}
