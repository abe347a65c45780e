"""Pruning: the same seeded video_optuna sweep with and without a pruner, as whole `train.py` processes.

    python benchmarks/bench_sweep_pruning.py                      # synthetic clips (no data needed)
    python benchmarks/bench_sweep_pruning.py --trials 8 --epochs 6 --pruner optuna.pruners.MedianPruner

Each side runs `python train.py -m task=video hparams_search=video_optuna dataset=synthetic_clips` with the
same seed into its own output folder and MLflow store (the decode-once cache is built first and shared, so
neither side pays for it); the pruned side adds `++hydra.sweeper.pruner._target_=<pruner>` (with
`n_startup_trials` pruner warm-up). Prints both wall times, the ratio, the best values and the number of
epochs trained.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def sweep(out: Path, cache: Path, trials: int, epochs: int, extra: list[str]) -> tuple[float, float, int, int]:
    import optuna

    cmd = [sys.executable, "train.py", "-m", "task=video", "hparams_search=video_optuna", "dataset=synthetic_clips",
           "trainer=cpu", f"trainer.max_epochs={epochs}", f"hydra.sweeper.n_trials={trials}", "logger.log_model=false",
           f"paths.output_root={out}", f"paths.cache_dir={cache}", *extra]
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{out}/mlflow.db")
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    study = optuna.load_study(study_name="video_optuna_synthetic_clips",
                              storage=f"sqlite:///{out}/video/sweeps/video_optuna_synthetic_clips/optuna.db")
    epochs_run = sum(len(t.intermediate_values) or epochs for t in study.trials)
    pruned = sum(t.state.name == "PRUNED" for t in study.trials)
    return wall, study.best_value, epochs_run, pruned


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--pruner", default="optuna.pruners.MedianPruner")
    ap.add_argument("--startup", type=int, default=2, help="the pruner's n_startup_trials")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = tmp / "cache"
        # build the shared clip cache once, outside the timings
        sweep(tmp / "warm", cache, 1, 1, [])
        plain = sweep(tmp / "plain", cache, args.trials, args.epochs, [])
        pruned = sweep(tmp / "pruned", cache, args.trials, args.epochs,
                       [f"++hydra.sweeper.pruner._target_={args.pruner}",
                        f"++hydra.sweeper.pruner.n_startup_trials={args.startup}"])
    print(f"{args.trials}-trial video_optuna sweep on synthetic clips, {args.epochs} epochs max, seed 0")
    print(f"  no pruner:  {plain[0]:7.1f} s  best val/acc_best {plain[1]:.4f}  epochs trained {plain[2]}")
    print(f"  {args.pruner.rsplit('.', 1)[-1]}: {pruned[0]:7.1f} s  best val/acc_best {pruned[1]:.4f}  "
          f"epochs trained {pruned[2]}  ({pruned[3]} trials pruned)")
    print(f"  speed-up: {plain[0] / pruned[0]:.2f}x wall, {plain[2] / max(pruned[2], 1):.2f}x fewer epochs")


if __name__ == "__main__":
    main()
