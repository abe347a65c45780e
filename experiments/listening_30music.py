"""Seed 001's comparison rebuilt on real 30Music: five methods, one split, both experiments, one table.

    MEDIAML_DATA_DIR=../shared/data python experiments/listening_30music.py [--seeds 0] [extra overrides...]
    # the paper-style global cutoff (one date), train-only users kept in the graph:
    MEDIAML_DATA_DIR=../shared/data python experiments/listening_30music.py --seeds 0,1,2 dataset.cutoff=2014-12-17T12:00:00 \
        dataset.cutoff_fraction=null dataset.cutoff_by=null dataset.keep_train_only_users=true \
        hydra.sweep.dir=outputs/listening/experiments/listening_30music_global_cutoff

Runs the documented multirun (tracked in the project store, one MLflow run per method, one sweep.id,
so the MLflow UI compares them side by side):

    python train.py -m task=listening dataset=30music model=random,popularity,als,deepwalk_us,deepwalk

then reads the runs back from MLflow and prints a markdown table of recall/precision at k = 10, 20,
50 for exp1 (similar songs), exp2 user queries and exp2 session queries, and says whether the
paper's ordering (USS > U-S and MF > popularity > random) holds.
"""
from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["random", "popularity", "als", "deepwalk_us", "deepwalk"]
LABELS = {"random": "Random", "popularity": "Popularity", "als": "MF (implicit ALS)",
          "deepwalk_us": "DeepWalk U-S", "deepwalk": "DeepWalk USS (proposed)"}
EXPERIMENTS = ["exp1", "exp2_user", "exp2_session"]


def mean(vals):
    return sum(vals) / len(vals)


def main(argv: list[str]) -> None:
    seeds, report_only = "0", "--report-only" in argv  # --report-only: print the table of a finished sweep
    argv = [a for a in argv if a != "--report-only"]
    if argv[:1] == ["--seeds"]:
        seeds, argv = argv[1], argv[2:]
    import mediaml  # noqa: F401
    from mlflow.tracking import MlflowClient

    from mediaml.tracking.store import resolve_tracking_uri

    sweep_dir = ROOT / "outputs" / "listening" / "experiments" / f"listening_30music_seeds{seeds.replace(',', '-')}"
    for a in [a for a in argv if a.startswith("hydra.sweep.dir=")]:  # another split gets its own folder
        sweep_dir = (ROOT / a.split("=", 1)[1]).resolve()
        argv.remove(a)
    cmd = [sys.executable, "train.py", "-m", "task=listening", "dataset=30music", f"model={','.join(METHODS)}",
           f"seed={seeds}", f"hydra.sweep.dir={sweep_dir}", *argv]
    print("$", " ".join(cmd[1:]), file=sys.stderr)
    if not report_only:
        subprocess.run(cmd, cwd=ROOT, check=True)

    client = MlflowClient(resolve_tracking_uri(None, ROOT / "mlruns"))
    exp = client.get_experiment_by_name("listening")
    sweep_id = str(sweep_dir.relative_to(ROOT / "outputs"))
    runs = client.search_runs([exp.experiment_id],
                              f"tags.`sweep.id` = '{sweep_id}' and attributes.status = 'FINISHED'")
    by_method = defaultdict(list)
    for r in runs:
        by_method[r.data.tags["mediaml.model"]].append(r.data.metrics)
    print(f"sweep.id = {sweep_id}  ({len(runs)} runs, seeds {seeds})\n")
    any_run = next(iter(by_method.values()))[0]
    print("Table 1 (this split): " + ", ".join(f"{k.split('/')[1]} {v:,.0f}" for k, v in sorted(any_run.items())
                                               if k.startswith("data/t")) + "\n")

    header = "| method | " + " | ".join(f"{e} R@{k} | {e} P@{k}" for e in EXPERIMENTS for k in (10, 50)) + " | fit s | exp1 R@10 per run |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    best = {}
    for m in METHODS:
        ms = by_method.get(m)
        if not ms:
            print(f"| {LABELS[m]} | (no finished run) |")
            continue
        cells = []
        for e in EXPERIMENTS:
            for k in (10, 50):
                r = [x.get(f"{e}/recall_at_{k}", float("nan")) for x in ms]
                p = [x.get(f"{e}/precision_at_{k}", float("nan")) for x in ms]
                cells += [f"{mean(r):.4f}", f"{mean(p):.4f}"]
        best[m] = {e: mean([x.get(f"{e}/recall_at_10", float("nan")) for x in ms]) for e in EXPERIMENTS}
        per_run = ", ".join(f"{x.get('exp1/recall_at_10', float('nan')):.4f}" for x in ms)
        print(f"| {LABELS[m]} | " + " | ".join(cells) + f" | {mean([x.get('time/fit_s', 0) for x in ms]):.1f} | {per_run} |")

    # The paper's Fig. 7 and Fig. 8 with every method: the first run (lowest seed) of each, from MLflow.
    import pandas as pd

    from mediaml.tasks.listening.retrieval import plot_curves

    tables = {}
    for m in METHODS:
        mine = sorted((r for r in runs if r.data.tags["mediaml.model"] == m), key=lambda r: r.data.tags["mediaml.seed"])
        if mine:
            tables[LABELS[m]] = pd.read_csv(client.download_artifacts(mine[0].info.run_id, "retrieval.csv"))
    for name, fig in plot_curves(tables).items():
        fig.savefig(sweep_dir / f"{name}.png", dpi=120)
        print(f"figure: {sweep_dir / f'{name}.png'}")

    if len(best) == len(METHODS):
        print()
        for e in EXPERIMENTS:
            r = {m: best[m][e] for m in METHODS}
            order = " > ".join(LABELS[m] for m in sorted(METHODS, key=lambda m: -r[m]))
            claim = (r["deepwalk"] > r["deepwalk_us"] and r["deepwalk"] > r["als"]
                     and r["popularity"] > r["random"])
            print(f"{e} recall@10 ordering: {order}  -> paper's claim (USS > U-S and MF > pop > random) "
                  f"{'holds' if claim else 'does NOT hold'}")


if __name__ == "__main__":
    main(sys.argv[1:])
