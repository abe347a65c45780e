"""The block every run ends with: what ran, its headline numbers, where its files are, and how to look at it in
MLflow (the run's URL on a server; the exact `mlflow ui` command and the run's page otherwise). A sweep ends
with its own: the best trial and the parent run."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Mapping

# Metrics shown after the objective, by prefix, at most this many in all.
HEADLINE_PREFIXES = ("test/", "val/", "cv/", "eval/", "report/")
N_HEADLINE = 5


def headline(metrics: Mapping[str, float], objective: str, wanted=None, n: int = N_HEADLINE) -> dict[str, float]:
    """The objective, then `wanted` (a task's `summary_metrics`) or the first test/val/cv... metrics; no *_std,
    time/ or data/ counts."""
    picked = [objective] if objective in metrics else []
    pool = list(wanted) if wanted else [k for p in HEADLINE_PREFIXES for k in metrics if k.startswith(p)
                                        and not k.endswith("_std")]
    pool.sort(key=lambda k: "loss" in k)  # the scores first, a loss only if room is left (stable otherwise)
    for k in pool:
        if len(picked) >= n:
            break
        if k in metrics and k not in picked:
            picked.append(k)
    return {k: metrics[k] for k in picked}


def ui_lines(tracking_uri: str | None, experiment_id: str | None, run_id: str | None) -> list[str]:
    """How to open a run: its URL on a server, else the command that serves this store and the run's page."""
    if not (tracking_uri and run_id):
        return []
    page = f"#/experiments/{experiment_id}/runs/{run_id}"
    if tracking_uri.startswith(("http://", "https://")):
        return [f"MLflow     {tracking_uri.rstrip('/')}/{page}"]
    return [f"MLflow     run {run_id}: mlflow ui --backend-store-uri {shlex.quote(tracking_uri)} --port 5000",
            f"           then open http://127.0.0.1:5000/{page}"]


def _fmt(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"


def run_block(*, task: str, dataset: str, model: str, status: str, objective: str, direction: str,
              metrics: Mapping[str, float], output_dir: str | Path, tracking_uri: str | None = None,
              experiment_id: str | None = None, run_id: str | None = None, wanted=None) -> str:
    shown = headline(metrics, objective, wanted)
    lines = [f"== {task} | dataset={dataset} | model={model} | {status} =="]
    if objective in shown:
        lines.append(f"objective  {objective} = {_fmt(shown.pop(objective))} ({direction})")
    if shown:
        lines.append("metrics    " + "   ".join(f"{k} {_fmt(v)}" for k, v in shown.items()))
    lines.append(f"output     {output_dir}")
    lines += ui_lines(tracking_uri, experiment_id, run_id) or ["MLflow     not tracked (logger=none): the files "
                                                                "above are the run's results"]
    return "\n".join(lines)


def sweep_block(*, name: str, n_complete: int, n_total: int, best_trial, best_value, objective: str,
                direction: str, best_run_id: str | None, best_dir: str | None, parent_id: str, tracking_uri: str,
                experiment_id: str, sweep_dir: str | Path | None = None, unit: str = "trial") -> str:
    lines = [f"== sweep {name} | {n_complete}/{n_total} {unit}s complete =="]
    if best_trial is not None:
        lines.append(f"best       {unit} #{best_trial}: {objective} = {_fmt(float(best_value))} ({direction})")
        if best_dir:
            lines.append(f"           its files: {best_dir}")
    if sweep_dir:
        lines.append(f"output     {sweep_dir}")
    lines += [f"parent run {parent_id} (the trials are nested under it)"]
    lines += ui_lines(tracking_uri, experiment_id, parent_id)[-2:] if not tracking_uri.startswith("http") else \
        ui_lines(tracking_uri, experiment_id, parent_id)
    if best_run_id:
        page = f"#/experiments/{experiment_id}/runs/{best_run_id}"
        lines.append(f"best run   {tracking_uri.rstrip('/')}/{page}" if tracking_uri.startswith("http")
                     else f"best run   http://127.0.0.1:5000/{page}")
    return "\n".join(lines)
