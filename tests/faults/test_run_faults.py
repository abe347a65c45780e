"""Fault tests of the run lifecycle with real processes and real signals: resume, interrupts in every
Lightning stage, stores that fail or refuse writes, concurrent starts, a SIGKILLed sweep, thread caps and
seeded repeats. Jobs start in their own session (`start_new_session`, as `setsid`) and signals go to the
process group, as a terminal or a batch scheduler sends them."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parents[2]
VIDEO = ("task=video", "dataset=synthetic_clips", "trainer=cpu", "trainer.enable_progress_bar=false",
         "trainer.accumulate_grad_batches=1", "dataset.n_per_class={train: 4, val: 2, test: 2}",
         "logger.log_model=false")
# Run as root without root's file-permission overrides, so a read-only file is read-only to the job.
NO_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps",
          "-dac_override,-dac_read_search"]


def env(out: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{out}/mlflow.db",
            "PYTHONPATH": str(REPO / "tests"), "PYTHONUNBUFFERED": "1", **extra}


def command(out: Path, *args: str) -> list[str]:
    return [sys.executable, "train.py", *args, f"paths.output_root={out}"]


def train(out: Path, *args: str, prefix: tuple[str, ...] = (), check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*prefix, *command(out, *args)], cwd=REPO, env=env(out), capture_output=True,
                          text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"train.py {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc


def runs(out: Path, experiment: str) -> list:
    client = MlflowClient(f"sqlite:///{out}/mlflow.db")
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> str:
    """One synthetic clip cache for the module's video jobs."""
    return f"paths.cache_dir={tmp_path_factory.mktemp('clips')}"


# -- 1 + 4: task.ckpt_path=last finds the same experiment, and the resumed job continues its run -------------

@pytest.mark.slow  # long: CI runs it with -m slow
def test_ckpt_last_resumes_the_same_experiment_into_the_same_run(tmp_path, clips, make_cfg):
    hv, sd = "dataset.classes=[horizontal,vertical]", "dataset.classes=[static,diagonal]"
    train(tmp_path, *VIDEO, clips, hv, "trainer.max_epochs=2")
    (first,) = runs(tmp_path, "video")
    train(tmp_path, *VIDEO, clips, sd, "trainer.max_epochs=2")  # newer, another experiment
    other = runs(tmp_path, "video")[1]
    assert other.data.tags["mediaml.identity"] != first.data.tags["mediaml.identity"]

    train(tmp_path, *VIDEO, clips, hv, "trainer.max_epochs=4", "task.ckpt_path=last")
    assert len(runs(tmp_path, "video")) == 2  # no third run: the first one went on
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    resumed = client.get_run(first.info.run_id)
    assert resumed.info.status == "FINISHED" and resumed.data.tags["mediaml.resumed"] == "1"
    assert "trainer.max_epochs: 2 -> 4" in resumed.data.tags["mediaml.resume.changed"]
    history = client.get_metric_history(first.info.run_id, "val/acc")
    assert len(history) == 4  # epochs 0-1 from the first job, 2-3 from the resumed one: one curve
    steps = [m.step for m in sorted(history, key=lambda m: m.timestamp)]
    assert steps == sorted(steps) and len(set(steps)) == 4
    assert len(client.get_metric_history(other.info.run_id, "val/acc")) == 2  # the other experiment untouched

    # no checkpoint of this experiment: the job stops at its input check, before a run opens (train.py prints
    # ConfigErrors without a traceback and exits 2: test_layout.py), naming what it looked for
    from mediaml.errors import ConfigError
    from mediaml.run import build_task

    cfg = make_cfg([*VIDEO, clips, "dataset.classes=[horizontal,diagonal]", "task.ckpt_path=last",
                    f"paths.output_root={tmp_path}"])
    with pytest.raises(ConfigError) as err:
        build_task(cfg).check_inputs()
    # the three job folders with a last.ckpt (first, other, resumed) are all of other experiments
    assert "no last.ckpt of this experiment" in str(err.value) and "3 of other experiments there" in str(err.value)
    assert len(runs(tmp_path, "video")) == 2


# -- 3: an interrupt in any Lightning stage ends the run KILLED and exits 130 / 143 within seconds ------------

@pytest.mark.slow
@pytest.mark.parametrize("stage,sig,code", [("fit", signal.SIGINT, 130), ("test", signal.SIGTERM, 143)])
def test_an_interrupt_in_a_lightning_stage_ends_killed_and_exits_like_the_signal(tmp_path, clips, stage, sig, code):
    marker = tmp_path / "in_stage"
    args = [*VIDEO, clips, "trainer.max_epochs=1", "+callbacks.slow._target_=fake_tasks.slow_stage",
            f"+callbacks.slow.stage={stage}", f"+callbacks.slow.marker={marker}", "+callbacks.slow.seconds=30"]
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:  # a file, not a pipe: a full pipe would stall the job before the signal
        proc = subprocess.Popen(command(tmp_path, *args), cwd=REPO, env=env(tmp_path), stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True)
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    t0 = time.monotonic()
    os.killpg(proc.pid, sig)
    proc.wait(timeout=60)
    took = time.monotonic() - t0
    stderr = log.read_text()
    assert proc.returncode == code, stderr[-3000:]
    # the stage's batch sleeps 30 s: the job does not wait for it (measured 3.3-3.9 s; the issue saw up to 28 s)
    assert took < 10, f"took {took:.1f} s to exit"
    (run,) = runs(tmp_path, "video")
    assert run.info.status == "KILLED"
    assert "Traceback" not in stderr.split("interrupted:")[-1] and "interrupted:" in stderr


# -- 8: a store that fails is named, and its run ends FAILED -----------------------------------------------

@pytest.fixture(scope="module")
def genre_store(tmp_path_factory) -> Path:
    """A store with one FINISHED genre run (~1 MB), made once; each test works on a copy."""
    out = tmp_path_factory.mktemp("genre_store")
    train(out, "logger.log_model=false", "task.cv_folds=2")
    return out / "mlflow.db"


def copy_store(genre_store: Path, tmp_path: Path) -> Path:
    db = tmp_path / "mlflow.db"
    shutil.copy(genre_store, db)
    return db


@pytest.mark.slow  # long: CI runs it with -m slow
def test_a_read_only_store_is_named_and_the_job_exits_2(tmp_path, genre_store):
    db = copy_store(genre_store, tmp_path)
    db.chmod(0o444)
    try:
        proc = train(tmp_path, "logger.log_model=false", prefix=tuple(NO_DAC), check=False)
    finally:
        db.chmod(0o644)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"tracking store sqlite:///{db} (file {db}) cannot be used" in proc.stderr
    assert "readonly database" in proc.stderr and "Traceback" not in proc.stderr.split("error: tracking store")[-1]
    assert [r.info.status for r in runs(tmp_path, "genre")] == ["FINISHED"]


@pytest.mark.slow  # long: CI runs it with -m slow
def test_a_store_over_its_write_limit_mid_run_ends_the_run_failed_naming_the_store(tmp_path, genre_store):
    db = copy_store(genre_store, tmp_path)
    proc = train(tmp_path, "task._target_=fake_tasks.OverWriteLimitTask", f"+task.store_file={db}", check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"error: tracking store sqlite:///{db} (file {db}) cannot be used: " in proc.stderr
    assert "disk I/O error" in proc.stderr or "full" in proc.stderr
    # the store still answers for the status: FAILED now, not RUNNING until a later run calls it KILLED
    assert [r.info.status for r in runs(tmp_path, "genre")] == ["FINISHED", "FAILED"]


@pytest.mark.slow
def test_a_server_that_stops_answering_leaves_a_marker_and_the_next_run_fails_the_run(tmp_path):
    from support.mlflow_server import start_server, stop_server

    url, server = start_server(tmp_path)
    job_env = {**env(tmp_path), "MLFLOW_TRACKING_URI": url, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "8"}  # a loaded machine answers in < 8 s
    try:
        # the job's task freezes the server (SIGSTOP: a hung host or network) before it returns
        proc = subprocess.run(command(tmp_path / "out", "task._target_=fake_tasks.ServerHangsTask",
                                      f"+task.server_pid={server.pid}"),
                              cwd=REPO, env=job_env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert f"error: tracking store {url} cannot be used" in proc.stderr
        os.killpg(server.pid, signal.SIGCONT)  # the server answers again
        client = MlflowClient(url)
        (stuck,) = client.search_runs([client.get_experiment_by_name("genre").experiment_id])
        assert stuck.info.status == "RUNNING"  # the store could not take the FAILED status...
        marker = Path(stuck.data.tags["hydra.output_dir"]) / ".mediaml" / "unclosed_run.json"
        left = json.loads(marker.read_text())
        assert left["run_id"] == stuck.info.run_id and left["status"] == "FAILED"

        again = subprocess.run(command(tmp_path / "out", "logger.log_model=false", "task.cv_folds=2"), cwd=REPO,
                               env=job_env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr[-3000:]
        closed, new = client.search_runs([stuck.info.experiment_id], order_by=["attributes.start_time ASC"])
    finally:
        os.killpg(server.pid, signal.SIGCONT)
        stop_server(server)
    # ...so the next run of the experiment ended it FAILED, with the error
    assert closed.info.run_id == stuck.info.run_id and closed.info.status == "FAILED"
    assert closed.data.tags["mediaml.closed_by"].startswith("a later run: its store failed")
    assert closed.data.tags["mediaml.error"] and new.info.status == "FINISHED"
    assert not marker.exists()


# -- concurrency and sweeps ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_eight_concurrent_runs_into_a_fresh_store_all_finish(tmp_path):
    procs = [subprocess.Popen(command(tmp_path, "logger.log_model=false", "task.cv_folds=2", f"seed={i}",
                                      "n_threads=1"), cwd=REPO, env=env(tmp_path), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for i in range(8)]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [e[-2000:] for e in errors if e]
    done = runs(tmp_path, "genre")
    assert [r.info.status for r in done] == ["FINISHED"] * 8
    assert sorted(r.data.params["seed"] for r in done) == [str(i) for i in range(8)]
    assert all("cv/acc_mean" in r.data.metrics and "objective" in r.data.metrics for r in done)


@pytest.mark.slow
def test_sigkill_during_a_serial_sweep_then_the_rerun_repeats_no_finished_trial(tmp_path):
    import optuna

    args = ("-m", "hparams_search=genre_optuna", "logger.log_model=false", "task.cv_folds=2",
            "hydra.sweeper.n_trials=4")
    storage = f"sqlite:///{tmp_path}/genre/sweeps/genre_optuna_synthetic_genre/optuna.db"
    runs(tmp_path, "genre")  # the store exists before the job starts: polling it must not race its creation
    proc = subprocess.Popen(command(tmp_path, *args), cwd=REPO, env=env(tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not [r for r in runs(tmp_path, "genre") if r.info.status == "RUNNING"
               and r.data.tags.get("sweep.job_num") == "2"]:
        assert proc.poll() is None and time.monotonic() < deadline, "the third trial never started"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    before = {t.number: t for t in optuna.load_study(study_name="genre_optuna_synthetic_genre", storage=storage).trials}
    finished = {n: t.params for n, t in before.items() if t.state.name == "COMPLETE"}
    assert len(finished) >= 2

    train(tmp_path, *args)
    after = optuna.load_study(study_name="genre_optuna_synthetic_genre", storage=storage).trials
    assert sum(t.state.name == "COMPLETE" for t in after) == 4
    assert all(after[n].params == p and after[n].state.name == "COMPLETE" for n, p in finished.items())
    job_runs = [r for r in runs(tmp_path, "genre") if r.data.tags.get("mediaml.role") != "sweep"]
    ran = [r.data.tags["sweep.job_num"] for r in job_runs if r.info.status == "FINISHED"]
    assert len(ran) == len(set(ran)) == 4  # every finished trial ran once
    assert "RUNNING" not in {r.info.status for r in job_runs}  # the killed trial's run was closed


@pytest.mark.slow
def test_sigterm_to_a_multirun_exits_143_and_ends_its_parent_killed(tmp_path):
    """A batch scheduler's SIGTERM (scancel, a preemption) to a grid multirun, wherever it lands (in a job or
    between two): exit code 143 as for a process the signal killed, the parent run KILLED."""
    args = ("-m", "seed=0,1,2,3,4,5", "logger.log_model=false", "task.cv_folds=2")
    runs(tmp_path, "genre")  # the store exists before the job starts: polling it must not race its creation
    proc = subprocess.Popen(command(tmp_path, *args), cwd=REPO, env=env(tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while not [r for r in runs(tmp_path, "genre") if r.info.status == "FINISHED"]:
        assert proc.poll() is None and time.monotonic() < deadline, "no job finished"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143, err[-3000:]
    every = runs(tmp_path, "genre")
    (parent,) = [r for r in every if r.data.tags.get("mediaml.role") == "sweep"]
    assert parent.info.status == "KILLED"
    assert "RUNNING" not in {r.info.status for r in every}
    assert len(every) < 7  # it stopped: not all six jobs ran


# -- 9 + 10: thread caps from one setting; a seed repeats a video run -----------------------------------------

@pytest.mark.slow  # long: CI runs it with -m slow
def test_n_threads_caps_every_pool_of_a_job(tmp_path):
    train(tmp_path, "task._target_=fake_tasks.ThreadsTask", "n_threads=1")
    train(tmp_path, "task._target_=fake_tasks.ThreadsTask")
    capped_run, default_run = runs(tmp_path, "genre")
    capped, default = capped_run.data.metrics, default_run.data.metrics
    assert capped_run.data.tags["mediaml.n_threads"] == "1"  # results depend on it: every run records it
    from mediaml.threads import available_cores

    assert capped["threads/max_pool"] == 1 and capped["threads/env_min"] == capped["threads/env_max"] == 1
    assert default["threads/env_min"] == default["threads/env_max"] == int(os.environ.get(
        "MEDIAML_N_THREADS", available_cores()))
    assert capped["threads/n_pools"] >= 1  # OpenBLAS (numpy) and OpenMP (scikit-learn) at least


@pytest.mark.slow
def test_joblib_sweep_workers_share_the_cores(tmp_path):
    from mediaml.threads import available_cores

    train(tmp_path, "-m", "task._target_=fake_tasks.ThreadsTask", "seed=0,1", "hydra/launcher=joblib",
          "hydra.launcher.n_jobs=2")
    done = [r for r in runs(tmp_path, "genre") if r.data.tags.get("mediaml.role") != "sweep"]
    expected = int(os.environ["MEDIAML_N_THREADS"]) if os.environ.get("MEDIAML_N_THREADS") else max(
        1, available_cores() // 2)
    assert len(done) == 2 and {r.data.metrics["threads/env_max"] for r in done} == {expected}
    assert {r.data.metrics["threads/max_pool"] for r in done} == {expected}


def metrics_of(make_cfg, out: Path, *overrides: str) -> dict[str, float]:
    """Every metric one job reports, run in this process as `mediaml.run` runs it (threads, seeds), untracked."""
    from mediaml.run import build_task, seed_everything
    from mediaml.threads import cap_threads, resolve
    from mediaml.tracking.tracker import Tracker

    cfg = make_cfg([*overrides, "logger=none"])
    cap_threads(resolve(cfg.get("n_threads")))
    seed_everything(int(cfg.seed))
    metrics = build_task(cfg).run(Tracker(out))
    # not seconds, nor whether the clip cache was built by this job or an earlier one
    return {k: v for k, v in metrics.items() if not k.startswith(("time/", "data/cache_")) and not k.endswith("_s")}


@pytest.mark.slow  # long: CI runs it with -m slow
def test_the_same_seed_repeats_a_video_run_exactly(make_cfg, tmp_path, clips):
    args = (*VIDEO, clips, "trainer.max_epochs=3", "seed=3")
    a, b = (metrics_of(make_cfg, tmp_path / name, *args) for name in ("a", "b"))
    assert len(a) > 15 and {"test/loss", "val/loss", "val/selected_loss", "train/loss"} <= set(a)
    assert a == b  # exactly, every metric


@pytest.mark.slow
@pytest.mark.parametrize("task", ["catalog", "personas", "listening"])  # genre: test_genre.py, video: above
def test_the_same_seed_repeats_every_task(make_cfg, tmp_path, task):
    """One seed, one thread count: the same numbers (listening with one gensim worker: gensim's worker threads
    race on the shared weights, so `model.workers=2` is not bit-reproducible)."""
    extra = ("model.workers=1", "model.walks_per_node=3", "model.dimensions=32") if task == "listening" else ()
    a, b = (metrics_of(make_cfg, tmp_path / name, f"task={task}", "seed=5", *extra) for name in ("a", "b"))
    assert len(a) >= 3 and a == b
