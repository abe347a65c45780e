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


def test_log_model_policy_all_none_and_a_bad_value_stops_before_a_run_opens(make_cfg, store):
    """logger.log_model: a single run's auto is `all` (its model logged, with a signature); `none` keeps none,
    not even the job folder's joblib; a value that is no policy is the user's error, before any run opens."""
    from mediaml.errors import ConfigError
    from mediaml.tracking.run import model_policy

    assert [model_policy(make_cfg([f"logger.log_model={v}"])) for v in ("auto", "true", "false", "best", "none")] \
        == ["all", "all", "none", "best", "none"]
    run(make_cfg(["task.cv_folds=2"]))
    client, r = only_run(store)
    (model,) = client.search_logged_models(experiment_ids=[r.info.experiment_id])
    assert model.source_run_id == r.info.run_id and "mediaml.model_pending" not in r.data.tags
    import shutil
    from pathlib import Path

    # Written once: the job folder links the logged model's own files (the first run's; same job folder here).
    import mlflow.sklearn

    cfg = make_cfg(["task.cv_folds=2", "logger.log_model=none"])
    kept = Path(cfg.hydra.runtime.output_dir) / "artifacts" / "model"
    stored = Path(model.artifact_location.removeprefix("file://")) / "model.pkl"
    assert (kept / "model.pkl").samefile(stored) and not (kept.parent / "model.joblib").exists()
    example = mlflow.models.Model.load(f"models:/{model.model_id}").load_input_example()
    assert (mlflow.sklearn.load_model(str(kept)).predict(example) ==
            mlflow.sklearn.load_model(f"models:/{model.model_id}").predict(example)).all()
    shutil.rmtree(kept.parent)
    run(cfg)
    assert len(client.search_logged_models(experiment_ids=[r.info.experiment_id])) == 1
    assert not kept.exists() and not (kept.parent / "model.joblib").exists()
    assert (kept.parent / "test" / "confusion_matrix.png").is_file()
    with pytest.raises(ConfigError, match="logger.log_model='sometimes'"):
        run(make_cfg(["task.cv_folds=2", "logger.log_model=sometimes"]))
    assert len(client.search_runs([r.info.experiment_id])) == 2  # no third run opened


def test_checkpoints_kept_for_the_sweep_are_logged_once_it_finds_their_run_best(tmp_path):
    """logger.log_model=best for files (a video trial's checkpoints): the run only says where they are; the
    sweep's end logs them into that (ended) run and drops the tag; files elsewhere are left, logged as such."""
    from pathlib import Path

    import mlflow

    from mediaml.tracking.tracker import PENDING_MODEL_TAG, Tracker, log_pending_model

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("video", artifact_location=(tmp_path / "artifacts").as_uri())
    files = []
    for name in ("epoch1.ckpt", "last.ckpt"):
        files.append(tmp_path / name)
        files[-1].write_bytes(name.encode() * 100)
    runs = []
    for missing in (False, True):
        r = client.create_run(exp, tags={"mediaml.host": __import__("socket").gethostname()})
        tracker = Tracker(tmp_path / f"job{int(missing)}", r.info.run_id, tracking_uri=uri)
        tracker.model_policy = "best"
        mlflow.set_tracking_uri(uri)
        try:
            tracker.log_checkpoints([*files, None] if not missing else [tmp_path / "gone.ckpt"])
        finally:
            mlflow.set_tracking_uri(None)
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        client.set_terminated(r.info.run_id, "FINISHED")
        runs.append(client.get_run(r.info.run_id))
    assert client.list_artifacts(runs[0].info.run_id) == [] and PENDING_MODEL_TAG in runs[0].data.tags
    assert log_pending_model(client, runs[0]) is True
    logged = {a.path: a.file_size for a in client.list_artifacts(runs[0].info.run_id, "checkpoints")}
    assert logged == {"checkpoints/epoch1.ckpt": 1100, "checkpoints/last.ckpt": 900}
    after = client.get_run(runs[0].info.run_id)
    assert PENDING_MODEL_TAG not in after.data.tags and after.info.status == "FINISHED"
    assert log_pending_model(client, runs[1]) is False  # not on this machine: nothing logged, tag kept
    assert PENDING_MODEL_TAG in client.get_run(runs[1].info.run_id).data.tags
    assert Path(tmp_path / "gone.ckpt").exists() is False


def _bars(values):  # a module-level plot: Tracker.log_plot keeps the call by reference
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.bar(range(len(values)), values)
    return fig


def test_figure_policy_all_now_best_at_the_sweeps_end_none_never(tmp_path, request):
    """logger.figures: `all` saves and logs a figure now; `best` keeps it (a figure pickled, or the call that draws
    it) and logs nothing until the sweep renders it into the best run, byte for byte the PNG `all` would have
    logged, or drops it for another trial; `none` logs none; a figure that cannot be pickled is logged now;
    an untracked run (logger=none) writes its PNGs whatever the policy."""
    from pathlib import Path

    import matplotlib
    import mlflow

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mediaml.tracking.tracker import PENDING_FIGURES_TAG, Tracker, drop_pending_figures, log_pending_figures

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)  # the Tracker logs files through the fluent API, as in a run
    request.addfinalizer(lambda: (mlflow.set_tracking_uri(None), os.environ.pop("MLFLOW_TRACKING_URI", None)))
    client = MlflowClient(uri)
    exp = client.create_experiment("genre", artifact_location=(tmp_path / "artifacts").as_uri())
    host = __import__("socket").gethostname()

    def tracked(policy: str, job: str):
        r = client.create_run(exp, tags={"mediaml.host": host})
        tracker = Tracker(tmp_path / job, r.info.run_id, tracking_uri=uri)
        tracker.figure_policy = policy
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1, 4])
        tracker.log_figure(fig, "figures/line.png")
        tracker.log_plot("test/bars.png", _bars, [3, 1, 2], dpi=80)
        lam, ax = plt.subplots(figsize=(2, 2))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"<{x}>"))  # a lambda: unpicklable
        tracker.log_figure(lam, "figures/lambda.png")
        client.set_terminated(r.info.run_id, "FINISHED")
        return client.get_run(r.info.run_id)

    def pngs(run_id):
        return sorted(a.path for d in ("figures", "test") for a in client.list_artifacts(run_id, d))

    now = tracked("all", "all")
    assert pngs(now.info.run_id) == ["figures/lambda.png", "figures/line.png", "test/bars.png"]
    best, other = tracked("best", "best"), tracked("best", "other")
    assert pngs(best.info.run_id) == ["figures/lambda.png"]  # kept back, except the one that cannot be kept
    kept = Path(best.data.tags[PENDING_FIGURES_TAG])
    assert sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*.pickle")) == \
        ["figures/line.png.pickle", "test/bars.png.pickle"]
    assert sorted(log_pending_figures(client, best)) == ["figures/line.png", "test/bars.png"]
    assert pngs(best.info.run_id) == pngs(now.info.run_id)
    for name in ("figures/line.png", "test/bars.png"):
        a, b = (Path(client.download_artifacts(r.info.run_id, name, str(tmp_path / f"dl{i}")))
                for i, r in enumerate((now, best)))
        assert a.read_bytes() == b.read_bytes(), name
    after = client.get_run(best.info.run_id).data.tags
    assert PENDING_FIGURES_TAG not in after and after["mediaml.figures_logged_by"] == "the sweep: best trial"
    assert not kept.exists()
    drop_pending_figures(client, other)
    assert PENDING_FIGURES_TAG not in client.get_run(other.info.run_id).data.tags
    assert not Path(other.data.tags[PENDING_FIGURES_TAG]).exists() and pngs(other.info.run_id) == ["figures/lambda.png"]
    never = tracked("none", "none")
    assert pngs(never.info.run_id) == [] and not (tmp_path / "none" / "artifacts" / "figures").exists()
    local = Tracker(tmp_path / "untracked")
    local.figure_policy = "none"
    local.log_plot("test/bars.png", _bars, [1, 2])
    assert (tmp_path / "untracked" / "artifacts" / "test" / "bars.png").is_file()


def test_a_run_ends_with_a_summary_block_saying_where_its_results_are(make_cfg, store, capsys):
    """Task, dataset, model, the objective and a few headline metrics (rounded), the output folder, and the exact
    `mlflow ui` command with the run's page; an untracked run says its files are the results."""
    cfg = make_cfg(["task.cv_folds=2"])
    value = run(cfg)
    out = capsys.readouterr().out
    client, r = only_run(store)
    block = out[out.index("== genre | dataset=synthetic_genre | model=random_forest | FINISHED =="):]
    assert f"objective  cv/acc_mean = {value:.4g} (maximize)" in block
    metrics = block.split("metrics    ")[1].splitlines()[0].split("   ")
    assert 1 <= len(metrics) <= 4 and all(m.split()[0] in r.data.metrics for m in metrics)
    assert f"test/acc {r.data.metrics['test/acc']:.4g}" in metrics
    assert f"output     {cfg.hydra.runtime.output_dir}" in block
    assert f"mlflow ui --backend-store-uri {store} --port 5000" in block
    assert f"http://127.0.0.1:5000/#/experiments/{r.info.experiment_id}/runs/{r.info.run_id}" in block
    run(make_cfg(["task.cv_folds=2", "logger=none"]))
    assert "MLflow     not tracked (logger=none)" in capsys.readouterr().out
