"""The MLflow store after a run: status, params, tags, metrics and artifacts, queried with MlflowClient."""
import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from conftest import PROJECT_ROOT
from mediaml.run import run
from mediaml.tracking.run import RunInterrupted


def only_run(store):
    client = MlflowClient(store)
    exp = client.get_experiment_by_name("genre")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def artifacts(client, run_id, path=None):
    out = []
    for a in client.list_artifacts(run_id, path):
        out += artifacts(client, run_id, a.path) if a.is_dir else [a.path]
    return out


def test_finished_run_has_params_tags_metrics_and_artifacts(make_cfg, store):
    value = run(make_cfg(["model=random_forest", "task.cv_folds=3"]))
    client, r = only_run(store)
    assert r.info.status == "FINISHED"
    assert value == pytest.approx(r.data.metrics["cv/acc_mean"])
    # every resolved config value, as flattened dotted keys
    p = r.data.params
    assert p["model.n_estimators"] == "100" and p["model.min_samples_split"] == "6"
    assert p["task.name"] == "genre" and p["dataset.name"] == "synthetic_genre" and p["seed"] == "0"
    assert p["task.split.test_size"] == "0.2"
    # a genre run composes no Lightning groups, so it logs none of their keys
    assert not [k for k in p if k.startswith(("trainer.", "callbacks."))]
    t = r.data.tags
    assert t["mediaml.task"] == "genre" and t["mediaml.model"] == "random_forest"
    assert t["mediaml.dataset"] == "synthetic_genre"
    assert len(t["git.commit"]) == 40 and t["git.dirty"] in ("True", "False")
    assert t["command"].startswith("python train.py") and "model=random_forest" in t["command"]
    assert t["hydra.output_dir"]
    for k in ["test/acc", "test/balanced_acc", "test/f1_macro", "cv/acc_mean", "cv/acc_std", "data/rows_kept"]:
        assert k in r.data.metrics
    files = artifacts(client, r.info.run_id)
    for f in ["config/config.yaml", "test/confusion_matrix.png", "test/confusion_matrix.csv",
              "test/classification_report.csv", "submission.csv", "figures/feature_importance.png"]:
        assert f in files
    models = client.search_logged_models(experiment_ids=[r.info.experiment_id])
    assert [m.source_run_id for m in models] == [r.info.run_id]
    # the objective under a stable name, and the data set in the Datasets column (synthetic: its generator)
    assert r.data.metrics["objective"] == pytest.approx(value)
    (ds,) = [d.dataset for d in r.inputs.dataset_inputs]
    assert ds.name == "synthetic_genre" and ds.source_type == "code" and "SyntheticGenreDataset" in ds.source
    assert len(ds.digest) == 16
    # the experiment says what it is: a model-training experiment, described by its study and objective
    exp = client.get_experiment(r.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    note = exp.tags["mlflow.note.content"]
    assert note.startswith("task=genre: Spotify genre classification") and "seed 004" in note
    assert "Objective: cv/acc_mean (maximize)" in note


def test_logged_model_loads_and_predicts(make_cfg, store):
    import mlflow.pyfunc
    from mediaml.tasks.genre.synthetic import generate_genre_tables

    run(make_cfg(["task.cv_folds=2"]))
    client, r = only_run(store)
    (model,) = client.search_logged_models(experiment_ids=[r.info.experiment_id])
    loaded = mlflow.pyfunc.load_model(model.model_uri)
    _, test, _ = generate_genre_tables(seed=0)
    features = [c for c in test.columns if c not in ("Id", "title", "artist")]
    pred = loaded.predict(test[features].astype(float))
    assert len(pred) == len(test)
    assert loaded.metadata.get_input_schema().input_names() == features


def test_forced_failure_ends_failed_with_traceback(make_cfg, store):
    with pytest.raises(RuntimeError, match="forced failure"):
        run(make_cfg(["task._target_=fake_tasks.FailingTask"]))
    client, r = only_run(store)
    assert r.info.status == "FAILED"
    assert "error/traceback.txt" in artifacts(client, r.info.run_id)
    text = open(client.download_artifacts(r.info.run_id, "error/traceback.txt")).read()
    assert "forced failure for the test" in text


def test_a_job_without_its_objective_ends_failed(make_cfg, store):
    with pytest.raises(KeyError, match="did not report its objective metric 'cv/acc_mean'"):
        run(make_cfg(["task._target_=fake_tasks.SilentTask"]))
    client, r = only_run(store)
    assert r.info.status == "FAILED" and r.data.metrics["train/loss"] == 1.0


def test_ctrl_c_ends_killed(make_cfg, store):
    with pytest.raises(KeyboardInterrupt):
        run(make_cfg(["task._target_=fake_tasks.InterruptedTask"]))
    assert only_run(store)[1].info.status == "KILLED"


def test_sigterm_ends_killed(make_cfg, store):
    with pytest.raises(RunInterrupted):
        run(make_cfg(["task._target_=fake_tasks.TerminatedTask"]))
    assert only_run(store)[1].info.status == "KILLED"


@pytest.mark.slow  # long: CI runs it with -m slow
def test_train_py_end_to_end_logs_hydra_folder(tmp_path, store):
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    out = subprocess.run([sys.executable, "train.py", f"paths.output_root={tmp_path}", "task.cv_folds=2",
                          "logger.log_model=false"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    client, r = only_run(store)
    files = artifacts(client, r.info.run_id)
    assert {"config/hydra/config.yaml", "config/hydra/overrides.yaml", "config/hydra/hydra.yaml"} <= set(files)


def test_logger_none_still_writes_artifacts(make_cfg, store, tmp_path):
    run(make_cfg(["logger=none", "task.cv_folds=2"]))
    out = tmp_path / "outputs" / "run" / "artifacts"
    assert (out / "test" / "confusion_matrix.csv").is_file() and (out / "submission.csv").is_file()
    assert MlflowClient(store).search_experiments(filter_string="name = 'genre'") == []


@pytest.mark.slow  # long: CI runs it with -m slow
def test_genre_task_does_not_import_torch(tmp_path, store):
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['train.py', 'paths.output_root={tmp_path}', 'task.cv_folds=2']\n"
        "try:\n    runpy.run_path('train.py', run_name='__main__')\nexcept SystemExit as e:\n    assert not e.code, e\n"
        "heavy = sorted(m for m in ('torch', 'lightning', 'torchvision', 'pytorchvideo') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "MLFLOW_TRACKING_URI": store})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "HEAVY []" in out.stdout
    assert only_run(store)[1].info.status == "FINISHED"  # the model was logged too (logger.log_model=true)


def test_runs_left_running_by_dead_processes_are_closed_killed(make_cfg, store):
    import socket

    from mediaml.tracking.store import ensure_experiment

    exp = ensure_experiment(store, "unused", "genre")
    client = MlflowClient(store)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs (what SIGKILL leaves behind)
    host = socket.gethostname()
    stale = client.create_run(exp, tags={"mediaml.host": host, "mediaml.pid": str(dead.pid)})
    alive = client.create_run(exp, tags={"mediaml.host": host, "mediaml.pid": str(os.getpid())})
    elsewhere = client.create_run(exp, tags={"mediaml.host": host + "-other", "mediaml.pid": str(dead.pid)})
    run(make_cfg(["task.cv_folds=2", "logger.log_model=false"]))
    status = {rid: client.get_run(rid).info.status for rid in
              (stale.info.run_id, alive.info.run_id, elsewhere.info.run_id)}
    assert status == {stale.info.run_id: "KILLED", alive.info.run_id: "RUNNING", elsewhere.info.run_id: "RUNNING"}


def test_in_process_jobs_compose_the_same_config_as_the_first(make_cfg, tmp_path, monkeypatch):
    """mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI; a run restores it, so the next in-process job
    (a sweep trial) composes logger.tracking_uri as the first did. Machine values are tags, not params."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = tmp_path / "store"
    cfgs = []
    for _ in range(2):
        cfg = make_cfg(["task.cv_folds=2", "logger.log_model=false", f"logger.store_dir={store}"])
        cfgs.append(cfg.logger.tracking_uri)
        run(cfg)
    assert cfgs == [None, None] and "MLFLOW_TRACKING_URI" not in __import__("os").environ
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    rs = client.search_runs([client.get_experiment_by_name("genre").experiment_id])
    assert len(rs) == 2 and rs[0].data.params == rs[1].data.params
    assert not [k for k in rs[0].data.params if k.startswith("paths.") or k.startswith("logger.tracking_uri")]
    assert rs[0].data.tags["config.logger.store_dir"] == str(store)
