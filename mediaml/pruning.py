"""The job's side of an Optuna trial: report intermediate values, stop when the pruner says so, and tell the
study the job's result as soon as the job ends.

Our sweeper (hydra_plugins/mediaml_optuna_sweeper) puts the study's storage and name in the environment of
the sweep (`MEDIAML_OPTUNA_STORAGE`, `MEDIAML_OPTUNA_STUDY`, `MEDIAML_OPTUNA_PRUNER`, inherited by joblib /
submitit workers) and
each job's trial id in that job's environment (`hydra.job.env_set.MEDIAML_OPTUNA_TRIAL_ID`), so a job reaches
its trial through the storage, in the sweep's process or in another. Outside an Optuna sweep every
function here does nothing.

    trial = current_trial()                   # None outside a sweep
    report(value, step)                       # raises optuna.TrialPruned when the pruner says stop
    mediaml.training.optuna_pruning(monitor)  # the same as a Lightning callback (callbacks.optuna_pruning)

In a DDP job only rank 0 talks to the study (mediaml.ranks.distributed_rank): `current_trial()` is None on
the other ranks, so `report`, `tell_result` and `tell_pruned` do nothing there, while `pruner_enabled()` is true
on every rank of a trial (the Lightning callback runs on all ranks and follows rank 0's decision).

Pruned trials: Optuna state PRUNED (they count toward n_trials, their value is never the best); the job's
MLflow run ends KILLED with the tag `optuna.state=PRUNED` (KILLED: stopped before its end on purpose).
"""
from __future__ import annotations

import functools
import logging
import os

from hydra_plugins.mediaml_optuna_sweeper.config import PRUNER_ENV, STORAGE_ENV, STUDY_ENV, TRIAL_ENV

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def _study(storage: str, name: str, pruner_json: str = "null"):
    import json

    import optuna
    from hydra.utils import instantiate

    spec = json.loads(pruner_json or "null")
    # A loaded study does not know the sweep's pruner (Optuna does not store it): build the same one.
    pruner = instantiate(spec) if spec else optuna.pruners.NopPruner()
    from hydra_plugins.mediaml_optuna_sweeper.storage import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(storage), pruner=pruner)


def _job_study():
    return _study(os.environ[STORAGE_ENV], os.environ[STUDY_ENV], os.environ.get(PRUNER_ENV, "null"))


def in_trial() -> bool:
    """Whether this process runs a job of an Optuna sweep with a storage (on any DDP rank)."""
    storage, name, trial_id = (os.environ.get(v) for v in (STORAGE_ENV, STUDY_ENV, TRIAL_ENV))
    return bool(storage and name and trial_id and trial_id.isdigit())


def current_trial():
    """This job's `optuna.Trial`, or None outside an Optuna sweep with a storage and on DDP ranks other than 0."""
    from mediaml.ranks import distributed_rank

    if not in_trial() or distributed_rank() != 0:
        return None
    import optuna

    return optuna.trial.Trial(_job_study(), int(os.environ[TRIAL_ENV]))


def is_pruned(exc: BaseException) -> bool:
    """Whether `exc` is Optuna's TrialPruned (without importing Optuna in a run that never used it)."""
    import sys

    optuna = sys.modules.get("optuna")
    return optuna is not None and isinstance(exc, optuna.TrialPruned)


def report(value: float, step: int) -> None:
    """Report an intermediate objective value; raise optuna.TrialPruned if the study's pruner prunes. Without a
    pruner (`hydra.sweeper.pruner` null) nothing could act on it: not written (two storage round trips a step,
    0.28 s of a 10-trial, 5-fold genre sweep)."""
    if not has_pruner():
        return
    trial = current_trial()
    if trial is None:
        return
    import optuna

    trial.report(float(value), int(step))
    if trial.should_prune():
        log.info("trial %d pruned at step %d (value %.4f)", trial.number, step, value)
        raise optuna.TrialPruned(f"trial {trial.number} pruned at step {step} (value {value:.6g})")


def _tell(**result) -> None:
    """Tell this job's trial `result` (a value, or a state) unless it is already finished."""
    trial = current_trial()
    if trial is not None:
        trial.study.tell(trial.number, skip_if_finished=True, **result)


def tell_result(value: float) -> None:
    """Tell the study this job's objective now (the sweeper then finds the trial finished), so a sweep
    interrupted later keeps it whatever its launcher batches."""
    _tell(values=float(value))


def tell_pruned() -> None:
    """Mark this job's trial PRUNED now (a job that raised optuna.TrialPruned)."""
    import optuna

    _tell(state=optuna.trial.TrialState.PRUNED)


def has_pruner() -> bool:
    """Whether this job's sweep has a pruner (`hydra.sweeper.pruner`, passed to its jobs as JSON)."""
    return (os.environ.get(PRUNER_ENV) or "null").strip() != "null"


def pruner_enabled() -> bool:
    """Whether this job runs as an Optuna trial that can report (any pruner; Optuna's default NopPruner
    never prunes), on any DDP rank (only rank 0 reports)."""
    return in_trial()
