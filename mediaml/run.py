"""The spine of every run: seed, check inputs, open the tracked run, run the task, return the objective.

Nothing here knows which task it runs: the task is the class named by `task._target_`.
"""
from __future__ import annotations

import importlib
import logging
import os
import random
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
from hydra.utils import get_class
from omegaconf import DictConfig

from mediaml import quiet
from mediaml.pruning import is_pruned, tell_pruned, tell_result
from mediaml.tasks.base import Task
from mediaml.threads import cap_threads, resolve as resolve_threads
from mediaml.tracking.run import hydra_info, tracked_run

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and (only if a task has already imported it) torch."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)


def output_dir_for(cfg: DictConfig) -> Path:
    """Hydra's job folder, or a fresh folder under outputs/ when called outside Hydra."""
    out = hydra_info().get("output_dir")
    if not out:
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
        out = Path(cfg.paths.output_root) / cfg.task.name / "runs" / stamp
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def build_task(cfg: DictConfig) -> Task:
    # Import the task's module first: a task package whose pip extra is missing raises MissingExtraError
    # (with the install command) here, which get_class would wrap in a generic ImportError.
    importlib.import_module(str(cfg.task._target_).rpartition(".")[0])
    cls = get_class(cfg.task._target_)
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"task._target_={cfg.task._target_!r} is not a mediaml.tasks.base.Task subclass")
    return cls(cfg)


def describe(task: Task, cfg: DictConfig) -> str:
    """The experiment's note: the task module's docstring (the study and its seed write-up) and its objective."""
    import inspect

    doc = inspect.getdoc(sys.modules.get(type(task).__module__)) or cfg.task.name
    obj = cfg.task.objective
    return f"{doc}\n\nObjective: {obj.metric} ({obj.direction}). Write-ups and commands: README.md, experiments/."


def run(cfg: DictConfig) -> float:
    """Run one job and return its objective value (`task.objective.metric`) for sweepers."""
    # Before the task imports torch / numba (they read the variables), after numpy (threadpoolctl).
    cap_threads(resolve_threads(cfg.get("n_threads")))
    quiet.install()  # third-party lines known not to apply to a run: filtered, each with its reason
    seed_everything(int(cfg.seed))
    task = build_task(cfg)
    task.check_inputs()  # missing files stop the run here, before any work or tracking
    resume = task.resume_run_id()  # a resumed checkpoint's run goes on, one history
    metric = task.objective_metric()
    try:
        with tracked_run(cfg, output_dir_for(cfg), description=describe(task, cfg), resume_run_id=resume) as tracker:
            task.log_input(tracker)
            metrics = task.run(tracker)
            # Inside the run: a job that does not report its objective ends FAILED, not FINISHED.
            if metric not in metrics:
                raise KeyError(f"task {cfg.task.name!r} did not report its objective metric {metric!r}; "
                               f"it reported {sorted(metrics)}")
            value = float(metrics[metric])
            tracker.log_metrics({"objective": value})  # the same name in every task, for the run table
        # The run is FINISHED; an Optuna trial's result reaches its study now, before its batch ends
        # (mediaml.pruning). Killed in between, the sweep's rerun reads the value from this run.
        tell_result(value)
    except BaseException as e:
        if is_pruned(e):
            tell_pruned()
        raise
    log.info("objective %s = %.4f", metric, value)
    if hydra_info().get("mode") != "MULTIRUN":  # a sweep prints its own block when it ends
        print("\n" + summary(cfg, tracker, metrics, metric), flush=True)
    return value


def summary(cfg: DictConfig, tracker, metrics: dict, objective: str) -> str:
    """The block a run ends with (mediaml.tracking.summary): task, dataset, model, objective and headline
    metrics, output folder, and how to open the run in MLflow."""
    from mediaml.tracking.summary import run_block

    choices = hydra_info().get("choices", {})
    return run_block(task=cfg.task.name, dataset=choices.get("dataset") or cfg.dataset.get("name", "?"),
                     model=choices.get("model") or str(cfg.model.get("_target_", "?")).rsplit(".", 1)[-1],
                     status="FINISHED", objective=objective,
                     direction=str(cfg.task.objective.direction), metrics=metrics,
                     output_dir=tracker.output_dir, tracking_uri=tracker.tracking_uri,
                     experiment_id=tracker.experiment_id, run_id=tracker.run_id,
                     wanted=cfg.task.get("summary_metrics"))
