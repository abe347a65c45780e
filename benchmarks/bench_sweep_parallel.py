"""Serial vs parallel Optuna sweep of the genre task: wall time, trials/min, speed-up, best objective.

    MEDIAML_DATA_DIR=/work/shared/data .venv/bin/python benchmarks/bench_sweep_parallel.py [--trials 20]

serial:   basic launcher,         hydra.sweeper.n_jobs=1
parallel: hydra/launcher=joblib,  hydra.sweeper.n_jobs=2 (joblib uses every core)
Same seed and search space (conf/hparams_search/genre_optuna.yaml), logger.log_model=false. Runs on
the real Spotify CS98X data (dataset=spotify_cs98x) when $MEDIAML_DATA_DIR/spotify_cs98x exists, else
on the synthetic genre data. Each variant gets its own tmp output root and MLflow store, so nothing
is written to the repo. Wall time includes start-up (imports, joblib's worker spawn).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {
    "serial": ["hydra.sweeper.n_jobs=1"],
    "parallel": ["hydra/launcher=joblib", "hydra.sweeper.n_jobs=2"],
}


def run_sweep(variant_args: list[str], dataset: str, n_trials: int) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as out:
        cmd = [sys.executable, "train.py", "-m", "hparams_search=genre_optuna", f"dataset={dataset}",
               f"hydra.sweeper.n_trials={n_trials}", "logger.log_model=false", *variant_args,
               f"paths.output_root={out}"]
        env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{out}/mlflow.db")
        tic = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - tic
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-4000:]}")
        if "database is locked" in proc.stdout + proc.stderr:
            print("WARNING: 'database is locked' in the output of", " ".join(variant_args))
        results = Path(out) / "genre" / "sweeps" / f"genre_optuna_{dataset}" / "optimization_results.yaml"
        return wall, yaml.safe_load(results.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()

    data_dir = os.environ.get("MEDIAML_DATA_DIR")
    dataset = "spotify_cs98x" if data_dir and (Path(data_dir) / "spotify_cs98x").is_dir() else "synthetic_genre"
    # Other processes on the machine skew both timings: the load average says how busy it was.
    print(f"genre sweep, {args.trials} trials on {dataset}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}")

    walls = {}
    for name, variant_args in VARIANTS.items():
        wall, results = run_sweep(variant_args, dataset, args.trials)
        walls[name] = wall
        print(f"{name:>8}: {wall:6.1f} s  {60 * args.trials / wall:5.1f} trials/min  "
              f"best objective {results['best_value']:.4f} (trial {results['best_trial']}, "
              f"{results['n_complete_trials']} complete)  {' '.join(variant_args)}")
    print(f"speed-up serial/parallel: {walls['serial'] / walls['parallel']:.2f}x "
          f"(load average now {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
