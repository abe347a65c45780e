"""Fixed cost of one `python train.py` run (interpreter, Hydra, MLflow tracking) against the model's fit time.

    MEDIAML_DATA_DIR=../shared/data python benchmarks/bench_run_overhead.py [--repeats 3]

For each model it runs the real command in a fresh process, tracked (logger=mlflow, model logged)
and untracked (logger=none), into a throw-away store, and splits the wall time into
  work     = CV + final fit (time/cv_s + time/fit_s, measured inside the task)
  fixed    = wall - work (startup, config, data, artifacts, tracking)
  tracking = wall(mlflow) - wall(none)
and prints the ratios fixed/work and tracking/work. Then the README's first command itself (`python train.py`,
synthetic data) tracked vs `logger=none` vs its own fit time, and `python train.py --help`
(`--models ""` runs only that part).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(args: list[str], store: str, out: Path) -> tuple[float, float]:
    """(wall seconds, in-task work seconds) of one train.py process."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    # As on a user's machine: modules compile once, into __pycache__ (with PYTHONDONTWRITEBYTECODE set, as in
    # some containers, every process recompiles mlflow and sklearn from source: +1.5 s a run, not ours to count).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "train.py", f"paths.output_root={out}", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        sys.exit(proc.stderr[-3000:])
    # Both loggers write the metrics the task measured; read them from the newest run's log line.
    work = None
    for line in proc.stdout.splitlines() + proc.stderr.splitlines():
        if "work_s=" in line:
            work = float(line.split("work_s=")[1].split()[0])
    if work is None:
        sys.exit("train.py did not print work_s=")
    return wall, work


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default="random_forest,logistic_regression,gaussian_nb")
    a = ap.parse_args()
    data = os.environ.get("MEDIAML_DATA_DIR")
    dataset = "spotify_cs98x" if data and (Path(data) / "spotify_cs98x").is_dir() else "synthetic_genre"
    print(f"dataset={dataset}  repeats={a.repeats}")
    print(f"{'model':22s} {'wall mlflow':>11s} {'wall none':>9s} {'work':>6s} {'fixed':>6s} {'tracking':>8s} "
          f"{'fixed/work':>10s} {'tracking/work':>13s}")
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/mlflow.db"
        one_run([f"dataset={dataset}", "model=gaussian_nb"], store, Path(tmp) / "warm")  # create the store once
        for model in filter(None, a.models.split(",")):
            rows = {"mlflow": [], "none": []}
            for logger in rows:
                for _ in range(a.repeats):
                    rows[logger].append(one_run([f"dataset={dataset}", f"model={model}", f"logger={logger}"],
                                                store, Path(tmp) / "out"))
            wall_m = statistics.median(w for w, _ in rows["mlflow"])
            wall_n = statistics.median(w for w, _ in rows["none"])
            work = statistics.median(k for _, k in rows["mlflow"] + rows["none"])
            fixed, tracking = wall_m - work, wall_m - wall_n
            print(f"{model:22s} {wall_m:10.2f}s {wall_n:8.2f}s {work:5.2f}s {fixed:5.2f}s {tracking:7.2f}s "
                  f"{fixed / work:10.2f} {tracking / work:13.2f}")
    default_job(a.repeats)


def default_job(repeats: int) -> None:
    """The README's first command as it is (`python train.py`: genre, synthetic data, a fresh sqlite store
    created by the first run), tracked and `logger=none` alternating, and `python train.py --help`."""
    walls: dict[str, list[float]] = {"tracked": [], "logger=none": [], "--help": []}
    works = []
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/default.db"
        one_run([], store, Path(tmp) / "warm")
        for _ in range(repeats):
            for name, args in (("tracked", []), ("logger=none", ["logger=none"])):
                wall, work = one_run(args, store, Path(tmp) / "out")
                walls[name].append(wall)
                works.append(work)
            t = time.perf_counter()
            subprocess.run([sys.executable, "train.py", "--help"], cwd=ROOT, capture_output=True, check=True)
            walls["--help"].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in walls.items()}
    work = statistics.median(works)
    print(f"\ndefault `python train.py` (median of {repeats}): tracked {med['tracked']:.2f} s, logger=none "
          f"{med['logger=none']:.2f} s, the fit itself {work:.2f} s (tracked/none {med['tracked'] / med['logger=none']:.2f}, "
          f"tracked/fit {med['tracked'] / work:.1f}); `--help` {med['--help']:.2f} s")


if __name__ == "__main__":
    main()
