"""What the framework costs in a small sweep: our tracked Optuna sweep against a bare Optuna + scikit-learn loop.

    MEDIAML_DATA_DIR=../shared/data python benchmarks/bench_sweep_overhead.py [--trials 10] [--repeats 2]

All sides run as whole processes, alternating, into throw-away folders:
  ours  python train.py -m hparams_search=genre_optuna dataset=spotify_cs98x hydra.sweeper.n_trials=N
        (MLflow on a sqlite store made before the timing: a parent run with the trials table and Optuna's
        figures (PNG: logger.sweep_figures), every trial's params, metrics, tables (confusion matrix, report, predictions) and config;
        the best trial's model and figures: logger.log_model / logger.figures sweep defaults), logged through the
        sweep's tracking process (logger.agent=auto, mediaml/tracking/agent.py)
  in-process  the same command with logger.agent=false: the same runs, logged from the sweep's own process
        (--no-in-process leaves it out)
  bare  the script below: read the CSV, the seed's cleaning and a stratified 80/20 split (the task's default), the same TPE search space and
        sampler settings on an Optuna sqlite study, 5-fold stratified CV + a final fit per trial, no MLflow.
Child processes run with bytecode caching on, as on a user's machine (PYTHONDONTWRITEBYTECODE dropped), after an
untimed first compile. After each round it checks that every study sampled the same parameters and found the same values (the same
fits), then prints the wall times and the ratios ours / bare and in-process / ours.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The bare loop, written here and not importing mediaml: what a researcher's own script would do.
BARE = textwrap.dedent('''
    import sys
    import numpy as np, optuna, pandas as pd
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split

    data_dir, storage, n_trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
    df = pd.read_csv(f"{data_dir}/spotify_cs98x/CS98XClassificationTrain.csv")
    df = df.drop(columns=["title", "artist"]).dropna(subset=["top genre"])
    counts = df["top genre"].value_counts()
    df = df[df["top genre"].isin(counts[counts >= 3].index)]
    features = ["year", "bpm", "nrgy", "dnce", "dB", "live", "val", "dur", "acous", "spch", "pop"]
    y = df["top genre"].reset_index(drop=True)
    X_tr, X_te, y_tr, y_te = train_test_split(df[features].reset_index(drop=True), y, test_size=0.2,
                                              random_state=0, stratify=y)
    D = optuna.distributions
    space = {"model.n_estimators": D.IntDistribution(50, 300), "model.min_samples_split": D.IntDistribution(2, 10),
             "model.max_depth": D.CategoricalDistribution([8, 16, 32, None]),
             "model.max_features": D.CategoricalDistribution(["sqrt", "log2", 0.5]),
             "model.class_weight": D.CategoricalDistribution([None, "balanced"])}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="bare", storage=storage, direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5, constant_liar=True))
    for _ in range(n_trials):
        trial = study.ask(space)
        p = {k.split(".", 1)[1]: v for k, v in trial.params.items()}
        model = RandomForestClassifier(random_state=0, n_jobs=1, **p)
        cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
        score = float(np.mean(cross_val_score(model, X_tr, y_tr, cv=cv, scoring="accuracy")))
        model.fit(X_tr, y_tr)
        study.tell(trial, score)
''')

OURS = ["-m", "hparams_search=genre_optuna", "dataset=spotify_cs98x"]


def run(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        sys.exit(f"{' '.join(cmd[:4])}... failed:\n{proc.stderr[-3000:]}")
    return wall


def trials_of(storage: str) -> list[tuple[dict, float]]:
    import optuna

    (summary,) = optuna.study.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    return [({k.lstrip("+"): v for k, v in t.params.items()}, round(t.value, 12)) for t in study.trials]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-in-process", dest="in_process", action="store_false",
                    help="leave out the logger.agent=false side")
    args = ap.parse_args()
    data_dir = os.environ.get("MEDIAML_DATA_DIR")
    if not data_dir or not (Path(data_dir) / "spotify_cs98x").is_dir():
        sys.exit("set MEDIAML_DATA_DIR to the folder holding spotify_cs98x/ (the shared data)")
    data_dir = str(Path(data_dir).resolve())
    walls: dict[str, list[float]] = {"ours": [], "bare": [], "in-process": []}
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            env = {**os.environ, "MEDIAML_DATA_DIR": data_dir, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db"}
            # As on a user's machine: modules compile once, into __pycache__. With PYTHONDONTWRITEBYTECODE set (some
            # containers) every process recompiles pandas, sklearn and optuna from source, seconds on both sides.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            if i == 0:  # the first compile, untimed, for both sides
                subprocess.run([sys.executable, "-c", "import mlflow.sklearn, sklearn.ensemble, sklearn.model_selection, "
                                "sklearn.metrics, optuna, pandas, hydra, matplotlib.pyplot"], env=env, check=True,
                               capture_output=True)
            dbs = {side: f"sqlite:///{tmp}/{side}.db" for side in walls}
            # A researcher's MLflow store exists after their first run: made here, untimed (its schema migrations
            # take seconds once); both sides start a new Optuna study on a new sqlite file.
            subprocess.run([sys.executable, "-c", "import sys; from mlflow.tracking import MlflowClient; "
                            "MlflowClient(sys.argv[1]).search_experiments()", env["MLFLOW_TRACKING_URI"]],
                           check=True, capture_output=True)
            sides = ["ours", "bare"] + (["in-process"] if args.in_process else [])
            order = sides if i % 2 == 0 else sides[::-1]
            for side in order:
                if side == "bare":
                    cmd = [sys.executable, "-c", BARE, data_dir, dbs[side], str(args.trials)]
                else:
                    cmd = [sys.executable, "train.py", *OURS, f"hydra.sweeper.n_trials={args.trials}",
                           f"hydra.sweeper.storage={dbs[side]}", f"paths.output_root={tmp / side}",
                           *(["logger.agent=false"] if side == "in-process" else [])]
                walls[side].append(run(cmd, env))
            same = all(trials_of(dbs[side]) == trials_of(dbs["bare"]) for side in sides)
            line = f"round {i + 1}: ours {walls['ours'][-1]:.1f} s, bare {walls['bare'][-1]:.1f} s, " \
                   f"ratio {walls['ours'][-1] / walls['bare'][-1]:.2f}"
            if args.in_process:
                line += f"; in-process {walls['in-process'][-1]:.1f} s"
            print(f"{line}; same params and values: {same}", flush=True)
            if not same:
                sys.exit("the sides did not make the same fits: the comparison does not hold")
    ours, bare = statistics.median(walls["ours"]), statistics.median(walls["bare"])
    print(f"\n{args.trials}-trial genre sweep on spotify_cs98x, median of {args.repeats}: ours {ours:.1f} s, "
          f"bare Optuna + scikit-learn {bare:.1f} s, ratio {ours / bare:.2f} "
          f"({(ours - bare) / args.trials:.2f} s per trial)")
    if args.in_process:
        inproc = statistics.median(walls["in-process"])
        print(f"logged from the sweep's own process (logger.agent=false): {inproc:.1f} s, ratio to bare "
              f"{inproc / bare:.2f}; the tracking process saves {inproc - ours:.1f} s ({inproc / ours:.2f}x)")


if __name__ == "__main__":
    main()
