"""What deterministic algorithms cost the video task, and whether a seed repeats its numbers.

    MEDIAML_DATA_DIR=../shared/data python benchmarks/bench_video_determinism.py [--epochs 3] [--repeats 2]

Runs the real command `python train.py task=video experiment=video_fight_c3d_motion_ema` (the real fight
clips; synthetic clips when MEDIAML_DATA_DIR has none) for a few epochs, alternating
`trainer.deterministic=false` and `trainer.deterministic=warn` (the default), each in a fresh process with
the same seed, and prints the fit time of each (time/fit_s, Lightning's fit), the ratio, and
whether repeated runs of one setting gave identical metrics.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(args: list[str], out: Path) -> dict:
    """The final metrics of one train.py process (tracked into a throw-away sqlite store under `out`)."""
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{out}/mlflow.db"
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "train.py", f"paths.output_root={out}", "logger.log_model=false", *args],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "MLFLOW_TRACKING_URI": store})
    if proc.returncode:
        sys.exit(proc.stderr[-3000:])
    client = MlflowClient(store)
    run = client.search_runs([client.get_experiment_by_name("video").experiment_id])[0]
    return run.data.metrics


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=4)
    a = ap.parse_args()
    data = os.environ.get("MEDIAML_DATA_DIR")
    real = bool(data) and (Path(data) / "video_clips" / "surveillance_fight_akti2019").is_dir()
    base = ["task=video", "experiment=video_fight_c3d_motion_ema", f"seed={a.seed}", f"trainer.max_epochs={a.epochs}",
            "trainer.enable_progress_bar=false", *([] if real else ["dataset=synthetic_clips"])]
    print(f"dataset={'surveillance_fight' if real else 'synthetic_clips'} epochs={a.epochs} repeats={a.repeats} "
          f"seed={a.seed} threads={os.environ.get('MEDIAML_N_THREADS', 'default')}")
    runs: dict[str, list[dict]] = {"false": [], "warn": []}
    with tempfile.TemporaryDirectory() as tmp:
        one_run([*base, "trainer.max_epochs=1"], Path(tmp) / "warm")  # build the clip cache once, untimed
        for i in range(a.repeats):
            for setting in runs:
                m = one_run([*base, f"trainer.deterministic={setting}"], Path(tmp) / f"{setting}{i}")
                runs[setting].append(m)
                print(f"  deterministic={setting:5s} run {i}: fit {m['time/fit_s']:.1f} s  "
                      f"val/loss {m['val/loss']:.6f}  test/acc {m['test/acc']:.4f}")
    keys = [k for k in runs["warn"][0] if k.startswith(("val/", "test/", "train/")) and "time" not in k]
    for setting, ms in runs.items():
        same = all(all(m[k] == ms[0][k] for k in keys) for m in ms[1:])
        fit = statistics.median(m["time/fit_s"] for m in ms)
        print(f"deterministic={setting:5s}: median fit {fit:.1f} s; {len(ms)} runs identical on {len(keys)} "
              f"metrics: {same}")
    ratio = statistics.median(m["time/fit_s"] for m in runs["warn"]) / statistics.median(
        m["time/fit_s"] for m in runs["false"])
    print(f"ratio deterministic=warn / false (fit time): {ratio:.3f}")


if __name__ == "__main__":
    main()
