"""Scale-out of the real `train.py` on synthetic genre data: two workers of one Optuna study (sqlite and journal
storage) started at the same moment, and a sweep through Hydra's submitit launcher (`submitit_local`: each
batch of trials is a submitit job array of local processes). Every run writes only to its tmp dir."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from hydra_plugins.mediaml_optuna_sweeper.storage import open_storage
from test_sweeps import OPTUNA, REPO, STUDY, SWEEP_ID, command, env

pytestmark = pytest.mark.slow  # subprocess sweeps: CI runs them with -m slow
optuna.logging.set_verbosity(optuna.logging.WARNING)
FAST_BEAT = ("hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=60")


def genre_runs(out: Path) -> tuple[list, list]:
    client = MlflowClient(f"sqlite:///{out}/mlflow.db")
    every = client.search_runs([client.get_experiment_by_name("genre").experiment_id], max_results=1000)
    parents = [r for r in every if r.data.tags.get("mediaml.role") == "sweep"]
    return parents, [r for r in every if r.data.tags.get("mediaml.role") != "sweep"]


def study(storage: str) -> optuna.Study:
    open_storage.cache_clear()
    return optuna.load_study(study_name=STUDY, storage=open_storage(storage))


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_workers_of_one_study_nest_six_runs_under_one_parent(tmp_path, kind):
    storage = {"sqlite": f"sqlite:///{tmp_path}/shared/optuna.db",
               "journal": f"journal:///{tmp_path}/shared/study.log"}[kind]
    args = (*OPTUNA, "hydra.sweeper.n_trials=6", f"hydra.sweeper.storage={storage}", *FAST_BEAT)
    workers = [subprocess.Popen(command(tmp_path, *args), cwd=REPO, env=env(tmp_path), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    logs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [log[-3000:] for log in logs]
    assert not any("database is locked" in log for log in logs)

    trials = [t for t in study(storage).trials if not t.user_attrs.get("mediaml.surplus")]
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6
    assert len({t.user_attrs["mediaml.worker"] for t in trials}) == 2  # both workers ran trials
    parents, kids = genre_runs(tmp_path)
    assert len(parents) == 1, [p.info.run_id for p in parents]  # one parent run of the study ...
    (parent,) = parents
    assert len(kids) == 6 and {r.data.tags["mlflow.parentRunId"] for r in kids} == {parent.info.run_id}
    assert [r.info.status for r in kids] == ["FINISHED"] * 6
    # ... each child the job of one trial, numbered by it, holding the trial's value.
    value = {str(t.number): t.value for t in trials}
    assert {r.data.tags["sweep.job_num"]: r.data.metrics["cv/acc_mean"] for r in kids} == pytest.approx(value)
    assert parent.info.status == "FINISHED" and parent.data.metrics["sweep/n_complete"] == 6
    assert parent.data.metrics["cv/acc_mean"] == pytest.approx(max(value.values()))
    assert sorted(p.name for p in (tmp_path / SWEEP_ID).iterdir() if p.name.isdigit()) == sorted(value)


def test_submitit_local_runs_a_three_trial_sweep_as_child_runs(tmp_path):
    args = (*OPTUNA, "hydra.sweeper.n_trials=3", "hydra.sweeper.n_jobs=3", "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10")
    proc = subprocess.run(command(tmp_path, *args), cwd=REPO, env=env(tmp_path), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    trials = study(f"sqlite:///{tmp_path}/{SWEEP_ID}/optuna.db").trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    (parent,), kids = genre_runs(tmp_path)
    assert sorted(r.data.tags["sweep.job_num"] for r in kids) == ["0", "1", "2"]
    assert {r.data.tags["mlflow.parentRunId"] for r in kids} == {parent.info.run_id}
    assert [r.info.status for r in kids] == ["FINISHED"] * 3
    # Three jobs of one submitit array, each in its own process (not the sweep's).
    pids = {r.data.tags["mediaml.pid"] for r in kids}
    assert len(pids) == 3 and parent.data.tags["mediaml.pid"] not in pids
    logs = list((tmp_path / SWEEP_ID / ".submitit").rglob("*_log.out"))
    assert len(logs) == 3
    assert parent.info.status == "FINISHED" and parent.data.metrics["sweep/n_complete"] == 3
