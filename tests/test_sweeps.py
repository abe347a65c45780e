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


def runs(out: Path) -> list:
    client = MlflowClient(f"sqlite:///{out}/mlflow.db")
    return client.search_runs([client.get_experiment_by_name("genre").experiment_id], max_results=1000)


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
    train(out, *OPTUNA, "hydra.sweeper.n_trials=4")
    return out


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


def test_rerun_with_another_fixed_override_is_refused(sweep4):
    proc = train(sweep4, *OPTUNA[:-1], "task.cv_folds=4", "hydra.sweeper.n_trials=6", check=False)
    assert proc.returncode != 0
    assert "other fixed overrides" in proc.stderr and "hydra.sweeper.study_name=<new name>" in proc.stderr
    assert len(trials(sweep4)) == 4 and len(runs(sweep4)) == 4


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
    first = trials(tmp_path)
    assert [t.state.name for t in first] == ["COMPLETE", "FAIL", "WAITING"]  # FAIL's params queued

    rerun = train(tmp_path, *args)
    assert "1/3 trials complete, running 2" in rerun.stderr + rerun.stdout
    done = trials(tmp_path)
    assert sum(t.state.name == "COMPLETE" for t in done) == 3
    assert done[2].params == first[1].params  # the interrupted trial ran first
    assert statuses(tmp_path) == ["FINISHED"] * 3 + ["KILLED"]
    assert {r.data.tags["sweep.id"] for r in runs(tmp_path)} == {SWEEP_ID}


def test_parallel_sweep_with_joblib(tmp_path):
    train(tmp_path, *OPTUNA, "hydra.sweeper.n_trials=4", "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2")
    tracked = runs(tmp_path)
    assert [r.info.status for r in tracked] == ["FINISHED"] * 4
    assert {r.data.tags["sweep.id"] for r in tracked} == {SWEEP_ID}
    assert sorted(r.data.tags["sweep.job_num"] for r in tracked) == ["0", "1", "2", "3"]
    done = trials(tmp_path)
    assert [t.state.name for t in done] == ["COMPLETE"] * 4
    assert done[0].params != done[1].params and done[2].params != done[3].params  # asked together


def test_grid_multirun_with_the_basic_sweeper(tmp_path):
    train(tmp_path, "-m", "model=random_forest,gaussian_nb", "logger.log_model=false", "task.cv_folds=3")
    tracked = runs(tmp_path)
    assert [r.info.status for r in tracked] == ["FINISHED"] * 2
    assert {r.data.tags["mediaml.model"] for r in tracked} == {"random_forest", "gaussian_nb"}
    (sweep_id,) = {r.data.tags["sweep.id"] for r in tracked}
    assert sweep_id.startswith("genre/multiruns/")


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
    sampler = make_sampler(sweeper.sampler, n_previous=0)
    assert isinstance(sampler, optuna.samplers.TPESampler) and sweeper.sampler["seed"] == 7
    assert set(sweeper.params) >= {"model.n_estimators", "++model.max_depth"}
