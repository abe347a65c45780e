"""A sweep's tracking process (mediaml/tracking/agent.py, logger.agent): the runs it logs are the runs the sweep's
own process logs, the sweep's process never imports MLflow, an error there fails only that job and names what
failed, and a tracking process that dies is named, not waited for. Real sweeps of `train.py` on synthetic genre
data, real processes and signals."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from mediaml.errors import ConfigError
from mediaml.tracking import agent

REPO = Path(__file__).resolve().parents[1]
OPTUNA = ("-m", "hparams_search=genre_optuna", "task.cv_folds=2", "hydra.sweeper.n_trials=3")


def train(out: Path, *args: str, python: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{out}/mlflow.db", "PYTHONPATH": str(REPO / "tests")}
    return subprocess.run([sys.executable, *python, "train.py", *args, f"paths.output_root={out}"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)


def store(out: Path):
    client = MlflowClient(f"sqlite:///{out}/mlflow.db")
    exp = client.get_experiment_by_name("genre")
    return client, client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


def files(client, run_id: str, path: str = "") -> list[str]:
    found = []
    for a in client.list_artifacts(run_id, path or None):
        found += files(client, run_id, a.path) if a.is_dir else [a.path]
    return sorted(found)


def imported(stderr: str) -> set[str]:
    """Top-level packages this process imported, from `python -X importtime` (this process only)."""
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def sweep_record(out: Path) -> dict:
    """What a sweep left in the store, without ids, times and machine paths: per run, its name, status, params,
    metrics, tag keys and artifacts (the parent under 'parent')."""
    client, runs = store(out)
    record = {}
    for r in runs:
        key = "parent" if r.data.tags.get("mediaml.role") == "sweep" else r.info.run_name
        record[key] = {
            "status": r.info.status,
            "params": {k: v for k, v in r.data.params.items() if k != "logger.agent"},
            "metrics": {k: round(v, 12) for k, v in r.data.metrics.items() if not k.startswith("time/")},
            "tags": sorted(k for k in r.data.tags if k not in ("mlflow.log-model.history",)),
            "artifacts": files(client, r.info.run_id),
            "parent_is_the_sweep": r.data.tags.get("mlflow.parentRunId") == next(
                p.info.run_id for p in runs if p.data.tags.get("mediaml.role") == "sweep"),
        }
    return record


@pytest.mark.slow  # two sweeps: CI runs it with -m slow
def test_a_sweep_logs_the_same_runs_through_its_tracking_process_and_never_imports_mlflow(tmp_path):
    ours, theirs = tmp_path / "agent", tmp_path / "in_process"
    with_agent = train(ours, *OPTUNA, python=("-X", "importtime"))
    without = train(theirs, *OPTUNA, "logger.agent=false", python=("-X", "importtime"))
    assert with_agent.returncode == 0, with_agent.stderr[-3000:]
    assert without.returncode == 0, without.stderr[-3000:]
    # MLflow (and its SQLAlchemy store) was imported by the tracking process only; logging in-process imports it
    assert "mlflow" not in imported(with_agent.stderr) and "matplotlib" not in imported(with_agent.stderr)
    assert "mlflow" in imported(without.stderr)
    # ...and the tracking process's own log lines reached the sweep's output
    assert "ended FINISHED" in with_agent.stdout + with_agent.stderr
    got, want = sweep_record(ours), sweep_record(theirs)
    assert set(got) == {"parent", "#00 random_forest", "#01 random_forest", "#02 random_forest"}
    assert got == want
    assert got["parent"]["status"] == "FINISHED" and all(r["parent_is_the_sweep"] for k, r in got.items()
                                                           if k != "parent")
    assert {f"sweep/figures/{n}.png" for n in ("optimization_history", "param_importances", "parallel_coordinate",
                                               "slice")} <= set(got["parent"]["artifacts"])
    client, runs = store(ours)
    best = [r for r in runs if r.data.tags.get("best") == "true"]
    assert len(best) == 1 and "test/confusion_matrix.png" in files(client, best[0].info.run_id)
    (model,) = client.search_logged_models(experiment_ids=[best[0].info.experiment_id])
    assert model.source_run_id == best[0].info.run_id
    # the figures drawn ahead for trials that were not the best were dropped with what those trials kept
    for r in runs:
        if r.data.tags.get("mediaml.role") != "sweep":
            assert not (Path(r.data.tags["hydra.output_dir"]) / ".mediaml" / "pending_figures").exists()


@pytest.mark.slow  # long: CI runs it with -m slow
@pytest.mark.parametrize("where", ["auto", "false"])  # in the tracking process, and in the sweep's own
def test_an_error_of_a_call_not_waited_for_fails_that_job_and_names_the_file(tmp_path, where):
    proc = train(tmp_path, "-m", "seed=0,1", "task._target_=fake_tasks.LogsMissingFileTask", "logger.log_model=false",
                 f"logger.agent={where}")
    client, runs = store(tmp_path)
    kids = {r.data.params["seed"]: r for r in runs if r.data.tags.get("mediaml.role") != "sweep"}
    assert kids["0"].info.status == "FAILED", proc.stderr[-3000:]
    assert "never_written.txt" in kids["0"].data.tags["mediaml.error"]  # why, in the run table
    tb = client.download_artifacts(kids["0"].info.run_id, "error/traceback.txt", str(tmp_path))
    assert "no such file or folder" in Path(tb).read_text()
    assert kids["1"].info.status == "FINISHED"  # the tracking process went on with the next job
    assert kids["1"].data.metrics["objective"] == 0.5
    # Hydra's basic sweeper raises a failed job's error once its batch is done: the grid's parent ends FAILED
    (parent,) = [r for r in runs if r.data.tags.get("mediaml.role") == "sweep"]
    assert parent.info.status == "FAILED" and proc.returncode != 0
    assert "cannot log" in proc.stderr and "never_written.txt" in proc.stderr


@pytest.mark.slow  # long: CI runs it with -m slow
@pytest.mark.parametrize("where", ["auto", "false"])
def test_a_run_that_cannot_open_fails_its_job_naming_the_store_and_nothing_after_it(tmp_path, where):
    """The first job leaves the store unopenable; the second job's run cannot open: through the tracking process
    its job starts anyway (its run opens meanwhile) and fails with the store's error (at its first tracking call
    after the opening failed, at the latest at its end), as it fails before its work without one. Nothing of it is
    logged, nothing is left RUNNING, and no error of a call that needed its run is reported besides."""
    proc = train(tmp_path, "-m", "seed=0,1", "task._target_=fake_tasks.BreaksTheStoreTask", "logger.log_model=false",
                 f"logger.agent={where}")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"tracking store sqlite:///{tmp_path}/mlflow.db" in output and "mlflow.db.lock" in output, output[-3000:]
    assert "could not" not in output and "earlier call that failed" not in output  # one error, not a cascade
    (tmp_path / "mlflow.db.lock").rmdir()
    client, runs = store(tmp_path)
    jobs = [r for r in runs if r.data.tags.get("mediaml.role") != "sweep"]
    assert [(r.data.tags["sweep.job_num"], r.info.status) for r in jobs] == [("0", "FINISHED")]
    assert "seed" in jobs[0].data.params


@pytest.mark.slow  # long: CI runs it with -m slow
def test_a_tracking_process_that_dies_is_named_and_the_sweep_does_not_hang(tmp_path):
    proc = train(tmp_path, "-m", "seed=0", "task._target_=fake_tasks.KillsTrackingProcessTask",
                 "logger.log_model=false")
    output = proc.stdout + proc.stderr
    assert "mediaml's tracking process (pid" in output and "exited with code -9" in output
    assert "logger.agent=false" in output  # what to do about it
    # what was logged before it died is in the store; the job's run is left RUNNING, as after any SIGKILL, and
    # the next run of the experiment closes it (its process is gone)
    client, runs = store(tmp_path)
    assert [r.info.status for r in runs if r.data.tags.get("mediaml.role") != "sweep"] == ["RUNNING"]
    again = train(tmp_path, "logger.log_model=false", "task.cv_folds=2")
    assert again.returncode == 0, again.stderr[-3000:]
    client, runs = store(tmp_path)
    assert "RUNNING" not in {r.info.status for r in runs}


def settings(launcher: str = agent.BASIC_LAUNCHER, **logger) -> OmegaConf:
    return OmegaConf.create({"logger": {"enabled": True, **logger}, "hydra": {"launcher": {"_target_": launcher}}})


def test_the_tracking_process_is_for_tracked_sweeps_on_the_basic_launcher():
    assert agent.wanted(settings())
    assert agent.wanted(settings(agent=True))
    assert not agent.wanted(settings(agent=False))
    assert not agent.wanted(settings(enabled=False))
    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert not agent.wanted(settings(joblib))  # its jobs run in worker processes, each tracks itself
    assert not agent.wanted(settings(joblib, agent=True))
    with pytest.raises(ConfigError, match="logger.agent='sometimes': expected auto, true or false"):
        agent.wanted(settings(agent="sometimes"))


def test_started_ahead_only_for_a_command_line_that_will_use_it(monkeypatch):
    with monkeypatch.context() as m:
        m.setenv("LOCAL_RANK", "1")  # a distributed rank other than 0 tracks nothing
        agent.start_ahead(["train.py", "-m", "hparams_search=genre_optuna"])
        assert agent._ahead is None
    for argv in (["train.py"], ["train.py", "-m", "logger=none"], ["train.py", "-m", "logger.agent=false"],
                 ["train.py", "-m", "hydra/launcher=joblib"], ["train.py", "seed=1"]):
        agent.start_ahead(argv)
        assert agent._ahead is None, argv
    agent.start_ahead(["train.py", "hparams_search=genre_optuna"])  # a multirun without -m (its file says so)
    started = agent._ahead
    try:
        assert started is not None and started.proc.poll() is None
        assert agent.current() is None  # not yet taken by a sweep
    finally:
        agent.drop_ahead()
    assert agent._ahead is None and started.proc.returncode is not None  # killed: it had nothing to finish


def test_calls_run_here_without_a_tracking_process():
    assert agent.current() is None
    assert agent.call(None, divmod, 7, 2) == (3, 1)
    seen = []
    agent.send(None, seen.append, "sent")
    agent.do_ahead(None, seen.append, "ahead")  # work ahead needs a tracking process: nothing here
    assert seen == ["sent"]


def test_a_result_not_waited_for_fills_the_calls_that_follow_and_its_error_is_raised_where_it_is_read(tmp_path,
                                                                                                      caplog):
    """How a job's run opens in a sweep's tracking process: the job goes on with a Later for the run's id; the
    calls sent with it get the id there; an opening that failed is raised where its Later is read, and the calls
    that needed it are not run (nor reported again: the next job's calls go on)."""
    agent.start()
    try:
        later = agent.call_later(None, divmod, 7, 2)
        assert isinstance(later, agent.Later)
        agent.send(None, os.mkdir, str(tmp_path / "sent"))
        assert agent.call(None, pow, later[0], 2) == 9  # filled in there
        assert agent.resolve(later) == (3, 1) and agent.resolve(later[1]) == 1 and not agent.failed(later)
        bad = agent.call_later(None, int, "not a number")
        agent.send(None, os.mkdir, str(tmp_path / "needs the failed one"), bad[0])
        with pytest.raises(agent.AgentError, match=r"pow: it needs the result of an earlier call that failed"):
            agent.call(None, pow, bad, 2)
        assert agent.failed(bad)  # its answer came before the call's
        with pytest.raises(ValueError, match="invalid literal for int"):
            agent.resolve(bad)
        assert agent.call(None, divmod, 9, 4) == (2, 1)  # nothing left over from the failed one
        assert (tmp_path / "sent").is_dir() and not (tmp_path / "needs the failed one").exists()
        assert not [r for r in caplog.records if r.levelname == "ERROR"]  # the skipped call: no error of its own
    finally:
        agent.stop()
    assert agent.current() is None and agent.call_later(None, divmod, 5, 5) == (1, 0)  # no process: run here


def test_a_bad_logger_agent_value_stops_the_job_before_its_run_opens(tmp_path):
    proc = train(tmp_path, "logger.agent=sometimes", "task.cv_folds=2")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "error: logger.agent='sometimes': expected auto, true or false" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlflow.db").exists() or not store(tmp_path)[1]
