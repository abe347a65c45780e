"""Many workers, one study: trials per minute of a genre sweep with 1, 2 and 4 workers over each Optuna storage.

    python benchmarks/bench_study_workers.py [--trials 16] [--workers 1 2 4] [--storages sqlite journal postgresql]

Each cell starts N copies of the same command at the same moment (as N shells or N cluster nodes would),

    python train.py -m hparams_search=genre_optuna hydra.sweeper.storage=URL hydra.sweeper.n_trials=T ...

on a fresh study, and times them until every worker has returned; trials per minute = T / wall time. The
study storage is the only thing that changes between rows: sqlite file, journal file (Optuna's
JournalFileBackend, as on NFS), PostgreSQL (a cluster of its own started by `python -m mediaml.server up` in a
tmp folder: its database `optuna`). Runs are not tracked (`logger=none`), so the MLflow store plays no part here
(benchmarks/bench_tracking_server.py measures that). Checked for every cell: exactly T COMPLETE trials.
Each worker caps its threads at cores // workers (n_threads), as a user sharing a machine would.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def start_postgres(tmp: Path) -> tuple[str, dict]:
    """PostgreSQL through mediaml.server (a tmp data folder): its `optuna` database's URL, env for libpq."""
    d = tmp / "server"
    r = subprocess.run([sys.executable, "-m", "mediaml.server", "up", "--backend", "postgresql", "--dir", str(d),
                        "--port", str(free_port())], cwd=REPO, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"mediaml.server up failed:\n{r.stderr[-3000:]}")
    state = json.loads((d / "state.json").read_text())
    return state["optuna_storage"], {"PGPASSFILE": str(d / "pgpass")}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cell(storage: str, study: str, n_workers: int, n_trials: int, out: Path, env: dict) -> float:
    threads = max(1, (os.cpu_count() or 1) // n_workers)
    cmd = [sys.executable, "train.py", "-m", "hparams_search=genre_optuna", "logger=none", "task.cv_folds=3",
           f"hydra.sweeper.storage={storage}", f"hydra.sweeper.study_name={study}", f"hydra.sweeper.n_trials={n_trials}",
           f"n_threads={threads}", f"paths.output_root={out}"]
    t0 = time.perf_counter()
    workers = [subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True) for _ in range(n_workers)]
    errors = [w.communicate()[1] for w in workers]
    wall = time.perf_counter() - t0
    for w, err in zip(workers, errors):
        if w.returncode != 0:
            sys.exit(f"a worker failed ({storage}, {n_workers} workers):\n{err[-3000:]}")
    import optuna

    from hydra_plugins.mediaml_optuna_sweeper.storage import open_storage

    open_storage.cache_clear()
    trials = optuna.load_study(study_name=study, storage=open_storage(storage)).trials
    complete = sum(t.state.name == "COMPLETE" for t in trials)
    assert complete == n_trials, f"{storage}: {complete} COMPLETE trials, not {n_trials}"
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--storages", nargs="+", default=["sqlite", "journal", "postgresql"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tmp.chmod(0o755)  # run as root, PostgreSQL runs as `postgres`, which must enter the folder
        urls, envs = {"sqlite": f"sqlite:///{tmp}/optuna.db", "journal": f"journal:///{tmp}/study.log"}, {}
        try:
            if "postgresql" in args.storages:
                urls["postgresql"], envs["postgresql"] = start_postgres(tmp)
                os.environ.update(envs["postgresql"])  # this process reads the studies back too
            rows = []
            for kind in args.storages:
                for n in args.workers:
                    wall = run_cell(urls[kind], f"bench_{kind}_{n}", n, args.trials, tmp / f"out_{kind}_{n}",
                                    envs.get(kind, {}))
                    rows.append((kind, n, wall))
                    print(f"{kind:10s} {n} worker(s): {args.trials} trials in {wall:6.1f} s = "
                          f"{args.trials / wall * 60:5.1f} trials/min", flush=True)
        finally:
            if "postgresql" in urls:
                subprocess.run([sys.executable, "-m", "mediaml.server", "down", "--dir", str(tmp / "server")], cwd=REPO,
                               capture_output=True)
    print(f"\n{os.cpu_count()} cores, {args.trials} trials per cell; speed-up = trials/min over 1 worker on the "
          "same storage; vs sqlite = trials/min over sqlite with as many workers")
    base = {(k, n): w for k, n, w in rows}
    print(f"{'storage':10s} {'workers':>7s} {'wall s':>7s} {'trials/min':>10s} {'speed-up':>8s} {'vs sqlite':>9s}")
    for kind, n, wall in rows:
        one = base.get((kind, args.workers[0]))
        sq = base.get(("sqlite", n))
        print(f"{kind:10s} {n:7d} {wall:7.1f} {args.trials / wall * 60:10.1f} {one / wall if one else float('nan'):8.2f}"
              f" {sq / wall if sq else float('nan'):9.2f}")


if __name__ == "__main__":
    main()
