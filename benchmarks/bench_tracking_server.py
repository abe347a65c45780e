"""8 concurrent `train.py task=genre` jobs logging to the tracking server against the same 8 jobs on a local
sqlite store.

    python benchmarks/bench_tracking_server.py [--jobs 8] [--rounds 1] [--workers 4] [--cv-folds 5]

The server is PostgreSQL + `mlflow server` with served artifacts, started by `python -m mediaml.server up`
in a throw-away folder (its start time, initdb and migrations included, is printed too); the local store is a
fresh `sqlite:///` file, as a user without a server has. For each store and round it prints the runs written
(FINISHED) against the jobs started, the metric points written (MlflowClient.get_metric_history of every
metric of every run) against the expected ones (every metric the genre task computes, one point each: the
task is run once in this process with tracking off to list them), the wall time of the 8 jobs from the first
start to the last exit, and the ratio server / sqlite. Written must equal expected; the script exits 1 if not.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def expected_metrics(overrides: list[str], tmp: Path) -> list[str]:
    """The metric names one genre job writes: the task's own (run here with logger=none) and `objective`."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import mediaml  # noqa: F401  (the ${mediaml.*} resolvers)
    from mediaml.tasks.genre.task import GenreTask
    from mediaml.tracking.tracker import Tracker

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*overrides, "logger=none", f"paths.output_root={tmp}"])
    return sorted([*GenreTask(cfg).run(Tracker(tmp / "reference")), "objective"])


def run_jobs(n: int, uri: str, overrides: list[str], out: Path) -> float:
    """Start n train.py jobs at once on store `uri`; the wall seconds until the last one ends."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    logs = [out / f"job{i}.log" for i in range(n)]
    out.mkdir(parents=True)
    t = time.perf_counter()
    jobs = [subprocess.Popen([sys.executable, "train.py", *overrides, f"paths.output_root={out / f'job{i}'}",
                              f"logger.store_dir={out / 'store'}"], cwd=ROOT, env=env, stdout=open(log, "w"),
                             stderr=subprocess.STDOUT) for i, log in enumerate(logs)]
    codes = [p.wait() for p in jobs]
    wall = time.perf_counter() - t
    for code, log in zip(codes, logs):
        if code:
            print(f"  a job failed (exit {code}), {log}:\n{log.read_text()[-1500:]}")
    return wall


def count(uri: str, metrics: list[str]) -> tuple[int, int]:
    """(FINISHED runs, metric points) in the store's `genre` experiment."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("genre")
    runs = client.search_runs([exp.experiment_id]) if exp else []
    points = sum(len(client.get_metric_history(r.info.run_id, k)) for r in runs for k in metrics)
    return sum(r.info.status == "FINISHED" for r in runs), points


def server(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mediaml.server", *args], cwd=ROOT, capture_output=True, text=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=1, help="server and sqlite alternately, this many times each")
    ap.add_argument("--workers", type=int, default=4, help="mlflow server workers (mediaml.server's default: 4)")
    ap.add_argument("--cv-folds", type=int, default=5, help="task.cv_folds of each job (the task's default: 5)")
    a = ap.parse_args()
    from mediaml.server import free_port

    os.environ.setdefault("MEDIAML_N_THREADS", "1")  # 8 jobs on a few cores: one thread each, as the test suite
    overrides = ["task=genre", f"task.cv_folds={a.cv_folds}"]
    tmp = Path(tempfile.mkdtemp(prefix="bench-tracking-server-"))
    tmp.chmod(0o755)  # run as root, PostgreSQL runs as `postgres`, which must enter the folder
    metrics = expected_metrics(overrides, tmp)
    print(f"{a.jobs} concurrent jobs: python train.py {' '.join(overrides)}; {len(metrics)} metrics a run; "
          f"{os.cpu_count()} cores, MEDIAML_N_THREADS={os.environ.get('MEDIAML_N_THREADS', 'unset')}")
    d = tmp / "server"
    t = time.perf_counter()
    up = server("up", "--dir", str(d), "--port", str(free_port()), "--workers", str(a.workers))
    if up.returncode:
        print(up.stderr)
        return 1
    print(f"server up in {time.perf_counter() - t:.1f} s (first start: initdb, migrations), {a.workers} workers")
    uri = up.stdout.strip().splitlines()[-1].split("=", 1)[1]
    walls: dict[str, list[float]] = {"server": [], "sqlite": []}
    ok = True
    print(f"{'store':8s} {'round':>5s} {'runs':>9s} {'metric points':>15s} {'wall':>8s}")
    try:
        for r in range(a.rounds):
            for name in walls:
                store = uri if name == "server" else f"sqlite:///{tmp / f'sqlite{r}' / 'mlflow.db'}"
                before = count(store, metrics) if name == "server" else (0, 0)
                walls[name].append(run_jobs(a.jobs, store, overrides, tmp / f"{name}{r}"))
                runs, points = (n - b for n, b in zip(count(store, metrics), before))
                want_runs, want_points = a.jobs, a.jobs * len(metrics)
                ok &= (runs, points) == (want_runs, want_points)
                print(f"{name:8s} {r:5d} {runs:4d}/{want_runs:<4d} {points:7d}/{want_points:<7d} "
                      f"{walls[name][-1]:7.1f}s")
    finally:
        down = server("down", "--dir", str(d))
        print(down.stdout.strip() or down.stderr.strip())
        if down.returncode == 0:
            shutil.rmtree(tmp, ignore_errors=True)
    s, q = (sum(walls[k]) / len(walls[k]) for k in ("server", "sqlite"))
    print(f"wall server / sqlite: {s:.1f} s / {q:.1f} s = {s / q:.2f}  (written {'==' if ok else '!='} expected)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
