"""`python -m mediaml.server`: a real PostgreSQL and a real `mlflow server` taking 8 concurrent `train.py` jobs,
and `down` leaving nothing of them running; the sqlite backend's up / status / second up / down; the
messages (exit 2) for a missing PostgreSQL, a taken port, and `down` / `status` with nothing up."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from mlflow.tracking import MlflowClient

from conftest import PROJECT_ROOT
from mediaml.server import find_bindir, UsageError
from mediaml.tasks.genre.task import GenreTask
from mediaml.tracking.tracker import Tracker
from support.mlflow_server import free_port

# A small genre job: 2 CV folds; the fitted model is still logged (the largest artifact, uploaded over HTTP).
JOB = ["task=genre", "task.cv_folds=2"]
N_JOBS = 8


def server(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mediaml.server", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def exported_uri(stdout: str) -> str:
    (line,) = [ln for ln in stdout.splitlines() if ln.startswith("export MLFLOW_TRACKING_URI=")]
    return line.split("=", 1)[1]


def live_processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, command line) of every process that runs (zombies do not)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            out[int(entry)] = (int(fields[1]), int(fields[2]), cmdline)
    return out


def processes_of(d: Path, state: dict) -> set[int]:
    """What runs of a server in `d`: the mlflow server's process group, PostgreSQL and its children, and any
    process whose command line names the folder."""
    procs = live_processes()
    pg = state.get("pg_pid")
    return {pid for pid, (ppid, pgrp, cmd) in procs.items()
            if pgrp == state["mlflow_pid"] or pid == pg or (pg and ppid == pg) or str(d) in cmd}


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def server_dir():
    """A fresh data folder that the `postgres` user can enter when the suite runs as root (pytest's own tmp
    folders are 0700 under /tmp/pytest-of-root); whatever is left running in it is stopped afterwards."""
    d = Path(tempfile.mkdtemp(prefix="mediaml-server-"))
    d.chmod(0o755)
    yield d / "server"
    if (d / "server" / "state.json").exists():
        server("down", "--dir", str(d / "server"))
    state_file = d / "server" / "state.json"
    if state_file.exists():  # down failed: do not leak processes into the rest of the suite
        state = json.loads(state_file.read_text())
        for pid in processes_of(d / "server", state):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(d, ignore_errors=True)


def assert_all_stopped(d: Path, state: dict, before: set[int]) -> None:
    assert not (d / "state.json").exists()
    still = before & set(live_processes())
    assert not still, f"still running after down: {[live_processes()[p] for p in still]}"
    assert not processes_of(d, state)
    assert not listening(state["port"])
    if state.get("pg_port"):
        assert not listening(state["pg_port"])


def job_metrics(make_cfg, tmp_path) -> dict[str, float]:
    """What a genre job computes, run in this process with tracking off: the metrics every tracked job must
    have written to the store (and `objective`, which the run's spine adds)."""
    metrics = GenreTask(make_cfg(["logger=none", *JOB])).run(Tracker(tmp_path / "reference"))
    return {**metrics, "objective": metrics["cv/acc_mean"]}


@pytest.mark.slow
def test_postgresql_server_takes_eight_concurrent_jobs_and_down_stops_everything(server_dir, tmp_path, make_cfg):
    try:
        find_bindir()
    except UsageError as e:
        pytest.skip(str(e).splitlines()[0])
    expected = job_metrics(make_cfg, tmp_path)
    port = free_port()
    up = server("up", "--backend", "postgresql", "--dir", str(server_dir), "--port", str(port))
    assert up.returncode == 0, up.stderr
    uri = exported_uri(up.stdout)
    assert uri == f"http://127.0.0.1:{port}"
    state = json.loads((server_dir / "state.json").read_text())
    assert state["backend_uri"].startswith("postgresql+psycopg2://") and state["pg_pid"] in live_processes()
    status = server("status", "--dir", str(server_dir))
    assert status.returncode == 0 and "healthy" in status.stdout and str(state["pg_pid"]) in status.stdout

    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    logs = [tmp_path / f"job{i}.log" for i in range(N_JOBS)]
    jobs = [subprocess.Popen([sys.executable, "train.py", *JOB, f"paths.output_root={tmp_path / f'job{i}'}",
                              # a lock folder per job, as on separate machines: the experiment's creation races
                              f"logger.store_dir={tmp_path / f'store{i}'}"],
                             cwd=PROJECT_ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
            for i, log in enumerate(logs)]
    codes = [p.wait(timeout=300) for p in jobs]
    # The logs of the jobs that failed (each one's end), not the tail of all eight.
    failed = "\n".join(f"job{i} exited {c}:\n{log.read_text()[-3000:]}" for i, (c, log) in enumerate(zip(codes, logs)) if c)
    server_errors = [line for line in Path(state["mlflow_log"]).read_text().splitlines()
                     if "Error" in line or "Traceback" in line or " 500 " in line][-30:]
    assert codes == [0] * N_JOBS, failed + "\nserver log:\n" + "\n".join(server_errors)

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("genre").experiment_id])
    assert len(runs) == N_JOBS
    for r in runs:
        assert r.info.status == "FINISHED"
        assert set(r.data.metrics) == set(expected)
        same = {k: v for k, v in expected.items() if not k.startswith("time/")}
        assert {k: r.data.metrics[k] for k in same} == pytest.approx(same)
        # Artifacts went through the server into its served folder, byte for byte what the job wrote locally.
        assert r.info.artifact_uri.startswith("mlflow-artifacts:/")
        served = Path(state["artifacts"]) / urlparse(r.info.artifact_uri).path.lstrip("/")
        local = Path(r.data.tags["hydra.output_dir"]) / "artifacts"
        # (model.joblib is the job's local copy of the model; the model itself goes as a logged model, below)
        files = [p.relative_to(local) for p in local.rglob("*") if p.is_file() and p.name != "model.joblib"]
        assert {"test/confusion_matrix.png", "submission.csv", "config/config.yaml"} <= {str(f) for f in files}
        for f in files:
            assert (served / f).read_bytes() == (local / f).read_bytes(), f
        (model,) = client.search_logged_models(experiment_ids=[r.info.experiment_id],
                                               filter_string=f"source_run_id = '{r.info.run_id}'")
        assert model.artifact_location.startswith("mlflow-artifacts:/")
        assert (Path(state["artifacts"]) / urlparse(model.artifact_location).path.lstrip("/") / "MLmodel").is_file()

    # The cluster's `optuna` database takes a study (the storage workers of one study share), password from pgpass.
    import optuna

    os.environ["PGPASSFILE"] = str(server_dir / "pgpass")
    try:
        study = optuna.create_study(study_name="s", storage=state["optuna_storage"], direction="maximize")
        study.tell(study.ask(), 1.0)
        assert optuna.load_study(study_name="s", storage=state["optuna_storage"]).best_value == 1.0
    finally:
        del os.environ["PGPASSFILE"]
    assert f"hydra.sweeper.storage={state['optuna_storage']}" in status.stderr + status.stdout

    before = processes_of(server_dir, state)
    assert state["mlflow_pid"] in before and state["pg_pid"] in before and len(before) >= 4
    down = server("down", "--dir", str(server_dir))
    assert down.returncode == 0, down.stderr
    assert_all_stopped(server_dir, state, before)


@pytest.mark.slow
def test_sqlite_server_up_twice_killed_up_again_and_down(server_dir, tmp_path):
    port = free_port()
    up = server("up", "--backend", "sqlite", "--dir", str(server_dir), "--port", str(port), "--workers", "1",
                "--host", "0.0.0.0")
    assert up.returncode == 0, up.stderr
    uri = exported_uri(up.stdout)
    state = json.loads((server_dir / "state.json").read_text())
    # Bound to every interface: the address it prints for other machines takes requests (MLflow's Host check).
    remote = [ln.split("=", 1)[1] for ln in up.stderr.splitlines() if "from other machines" in ln]
    remote = [u for u in remote if re.fullmatch(r"http://[\d.]+:\d+", u)] or [uri]
    # A second `up` prints the running server and starts nothing; one asking for another backend is refused.
    again = server("up", "--dir", str(server_dir))
    assert again.returncode == 0 and exported_uri(again.stdout) == uri and "already up" in again.stderr
    assert json.loads((server_dir / "state.json").read_text()) == state
    other = server("up", "--dir", str(server_dir), "--backend", "postgresql")
    assert other.returncode == 2 and "already up" in other.stderr and "down" in other.stderr

    client = MlflowClient(remote[0])
    run = client.create_run(client.create_experiment("probe"))
    (tmp_path / "note.txt").write_text("through the server")
    client.log_artifact(run.info.run_id, str(tmp_path / "note.txt"))
    served = Path(state["artifacts"]) / urlparse(run.info.artifact_uri).path.lstrip("/") / "note.txt"
    assert served.read_text() == "through the server"
    assert (server_dir / "mlflow.db").is_file()

    # Killed behind our back: status says so, and the next `up` cleans up after it and starts afresh.
    os.killpg(state["mlflow_pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while processes_of(server_dir, state) and time.monotonic() < deadline:
        time.sleep(0.2)
    status = server("status", "--dir", str(server_dir))
    assert status.returncode == 1 and "NOT running" in status.stdout
    up = server("up", "--dir", str(server_dir), "--backend", "sqlite", "--port", str(port), "--workers", "1")
    assert up.returncode == 0 and "no longer runs" in up.stderr, up.stderr
    state = json.loads((server_dir / "state.json").read_text())
    assert MlflowClient(uri).get_experiment_by_name("probe") is not None  # the same store, kept across restarts

    before = processes_of(server_dir, state)
    down = server("down", "--dir", str(server_dir))
    assert down.returncode == 0 and "stopped" in down.stdout
    assert_all_stopped(server_dir, state, before)


@pytest.mark.slow
def test_a_server_that_fails_to_start_shows_its_log_and_leaves_nothing(server_dir):
    port = free_port()
    bad = server("up", "--backend", "sqlite", "--dir", str(server_dir), "--port", str(port), "--", "--no-such-option")
    assert bad.returncode == 1 and "exited before answering" in bad.stderr and "--no-such-option" in bad.stderr
    assert "Traceback" not in bad.stderr.split("--- last lines of")[0]
    assert not (server_dir / "state.json").exists() and not listening(port)


def test_missing_postgresql_names_the_install_command(tmp_path):
    empty = tmp_path / "no-postgres"
    empty.mkdir()
    port = free_port()
    r = server("up", "--dir", str(tmp_path / "s"), "--port", str(port), env={"MEDIAML_PG_BINDIR": str(empty)})
    assert r.returncode == 2
    assert "PostgreSQL is not installed" in r.stderr and f"MEDIAML_PG_BINDIR={empty}" in r.stderr
    assert "apt-get install postgresql" in r.stderr and "conda" in r.stderr and "brew" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "s" / "state.json").exists() and not listening(port)


def test_taken_port_is_refused_before_anything_starts(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = server("up", "--backend", "sqlite", "--dir", str(tmp_path / "s"), "--port", str(port))
    assert r.returncode == 2 and f"port {port} on 127.0.0.1 is taken" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "s" / "state.json").exists()


def test_down_and_status_with_nothing_up(tmp_path):
    d = tmp_path / "s"
    r = server("down", "--dir", str(d))
    assert r.returncode == 0 and "nothing is up" in r.stdout
    d.mkdir()
    r = server("status", "--dir", str(d))
    assert r.returncode == 1 and "nothing is up" in r.stdout
    r = server("--dir", str(d), "down")
    assert r.returncode == 0 and "nothing is up" in r.stdout
