"""A sweep on the command line: its trials table, best trial and parent MLflow run.

    python -m mediaml.sweeps show outputs/genre/sweeps/genre_optuna_spotify_cs98x   # a sweep folder
    python -m mediaml.sweeps show genre_optuna_spotify_cs98x                        # or an Optuna study name

The parent run is found in the tracking store (MLFLOW_TRACKING_URI, else the project's mlruns/) by its
`sweep.dir` tag, or by `optuna.study_name`. While a sweep has not ended, its Optuna study (optuna.db in
the sweep folder) gives the table instead.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from mediaml.config import PROJECT_ROOT
from mediaml.tracking.store import resolve_tracking_uri

ROLE = "tags.`mediaml.role` = 'sweep'"


def find_parent(client, target: str):
    """The parent run of a sweep folder or an Optuna study name; None if the store has none."""
    path = Path(target).expanduser()
    filters = []
    if path.is_dir():
        filters.append(f"{ROLE} and tags.`sweep.dir` = '{path.resolve()}'")
    filters.append(f"{ROLE} and tags.`optuna.study_name` = '{target}'")
    experiments = [e.experiment_id for e in client.search_experiments()]
    for f in filters:
        found = client.search_runs(experiments, f, order_by=["attributes.start_time DESC"], max_results=1) if experiments else []
        if found:
            return found[0]
    return None


def run_url(uri: str, experiment_id: str, run_id: str) -> str:
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def study_table(sweep_dir: Path) -> pd.DataFrame | None:
    """The trials of the study in a sweep folder's optuna.db (a sweep still running), or None."""
    db = sweep_dir / "optuna.db"
    if not db.is_file():
        return None
    import optuna

    from mediaml.tracking.sweep import trials_frame

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{db.resolve()}"
    summaries = optuna.get_all_study_summaries(storage)
    if not summaries:
        return None
    return trials_frame(optuna.load_study(study_name=summaries[0].study_name, storage=storage))


def show(target: str, tracking_uri: str | None = None, out=sys.stdout) -> int:
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.tracking import MlflowClient

    uri = resolve_tracking_uri(tracking_uri, PROJECT_ROOT / "mlruns")
    client = MlflowClient(uri)
    parent = find_parent(client, target)
    table = None
    if parent is not None:
        try:
            local = client.download_artifacts(parent.info.run_id, "sweep/trials.csv")
            table = pd.read_csv(local)
        except Exception:  # still running: no table logged yet
            table = None
    if table is None and Path(target).is_dir():
        table = study_table(Path(target))
    if parent is None and table is None:
        print(f"error: no sweep found for {target!r} in {uri} (a sweep folder, or an Optuna study name)", file=sys.stderr)
        return 2
    if table is not None:
        with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_colwidth", 40):
            print(table.drop(columns=[c for c in ("command",) if c in table]).to_string(index=False), file=out)
    if parent is not None:
        t, m = parent.data.tags, parent.data.metrics
        best = t.get("sweep.best_trial")
        values = {k: v for k, v in m.items() if not k.startswith("sweep/")}
        print(f"sweep: {parent.info.run_name} ({parent.info.status}); complete {int(m.get('sweep/n_complete', 0))}, "
              f"pruned {int(m.get('sweep/n_pruned', 0))}, failed {int(m.get('sweep/n_failed', 0))}", file=out)
        if best is not None:
            print(f"best trial: #{best}  " + "  ".join(f"{k} = {v:.6g}" for k, v in values.items()), file=out)
        print(f"parent run: {run_url(uri, parent.info.experiment_id, parent.info.run_id)}", file=out)
        if not uri.startswith(("http://", "https://")):
            print(f"  (start the UI with: mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000)", file=out)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mediaml.sweeps", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("show", help="the trials table, best trial and parent run URL of a sweep")
    s.add_argument("target", help="a sweep folder (outputs/<task>/sweeps/<study>) or an Optuna study name")
    s.add_argument("--tracking-uri", default=None, help="default: MLFLOW_TRACKING_URI, else the project's mlruns/")
    args = ap.parse_args(argv)
    return show(args.target, args.tracking_uri)


if __name__ == "__main__":
    sys.exit(main())
