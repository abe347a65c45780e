"""Which `n_threads` default fits this machine: a HistGradientBoosting genre run at 1, 2, ... threads, on an
idle machine and next to busy processes (what a parallel sweep, a test suite or another user adds).

    python benchmarks/bench_threads.py [--rows 32000] [--threads 1,2] [--busy 0,1] [--repeats 2]

Each run is the real command `python train.py task=genre model=hist_gradient_boosting` on a synthetic table
of `--rows` songs (5-fold CV + the final fit, logger=none) in a fresh process with `n_threads=N`; `--busy K`
starts K processes spinning on the CPU for the duration. Prints the wall time of each setting (median of the
repeats, alternating settings) and the ratio to the fastest one under the same load.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def spin(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def one_run(rows: int, n_threads: int, out: Path) -> float:
    cmd = [sys.executable, "train.py", "task=genre", "model=hist_gradient_boosting", "logger=none",
           f"dataset.n_songs={rows}", f"dataset.n_test_songs={rows // 4}", f"n_threads={n_threads}",
           f"paths.output_root={out}"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stderr[-3000:])
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=32000)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--busy", default="0,1")
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    threads = [int(x) for x in a.threads.split(",")]
    from mediaml.threads import available_cores

    print(f"cores={available_cores()} rows={a.rows} repeats={a.repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        for busy in (int(x) for x in a.busy.split(",")):
            stop = mp.Event()
            spinners = [mp.Process(target=spin, args=(stop,), daemon=True) for _ in range(busy)]
            for p in spinners:
                p.start()
            walls: dict[int, list[float]] = {n: [] for n in threads}
            try:
                for r in range(a.repeats):
                    for n in threads:
                        walls[n].append(one_run(a.rows, n, Path(tmp) / f"b{busy}n{n}r{r}"))
            finally:
                stop.set()
                for p in spinners:
                    p.join()
            med = {n: statistics.median(w) for n, w in walls.items()}
            best = min(med.values())
            for n in threads:
                print(f"busy={busy} n_threads={n}: {med[n]:7.1f} s  (runs {', '.join(f'{w:.1f}' for w in walls[n])})"
                      f"  ratio to best {med[n] / best:.2f}")


if __name__ == "__main__":
    main()
