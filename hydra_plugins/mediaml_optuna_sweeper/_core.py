"""The sweep loop: open (or resume) the study, ask a batch, launch it through Hydra's launcher, tell.

Resume rule: the study wants `n_trials` COMPLETE trials; a rerun of the same command runs only
the missing ones. A trial that never reported a result (its sweep was killed, interrupted or its
launcher crashed) is marked FAIL and its params are queued to run first next time. One sweep
process per study at a time (a lock file in the sweep dir enforces it), so RUNNING trials found at
start-up are stale by construction.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import optuna
from filelock import FileLock, Timeout
from hydra.core.utils import JobReturn
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import OmegaConf
from optuna.distributions import check_distribution_compatibility
from optuna.trial import Trial, TrialState

from .config import PRUNER_ENV, STORAGE_ENV, STUDY_ENV, TRIAL_ENV
from ._search_space import SearchSpace, params_to_overrides, parse_search_space

if TYPE_CHECKING:
    from .optuna_sweeper import OptunaSweeper

log = logging.getLogger(__name__)

FIXED_ATTR = "fixed_overrides"


def run_sweep(sweeper: OptunaSweeper, arguments: list[str]) -> list[Sequence[JobReturn]]:
    assert sweeper.hydra_context is not None and sweeper.config is not None
    space = parse_search_space(params_to_overrides(sweeper.params) + list(arguments),
                               sweeper.hydra_context.config_loader)
    sweeper.sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(sweeper.config, sweeper.sweep_dir / "multirun.yaml")
    try:
        lock = FileLock(str(sweeper.sweep_dir / ".optuna_sweeper.lock")).acquire(timeout=0)
    except Timeout:
        raise HydraException(f"another sweep is running in {sweeper.sweep_dir}; wait for it or stop it") from None
    with lock:
        study = open_study(sweeper, space)
        if sweeper.storage:  # jobs reach their trial through the storage (mediaml.pruning), in any process
            os.environ.update({STORAGE_ENV: sweeper.storage, STUDY_ENV: study.study_name,
                               PRUNER_ENV: json.dumps(sweeper.pruner)})
        returns, n_launched, n_failed = run_trials(sweeper, study, space)
        write_results(sweeper, study)
    if n_launched and n_failed == n_launched:
        raise HydraException(f"all {n_launched} trials of this sweep failed; see the errors logged above")
    return returns


def open_study(sweeper: OptunaSweeper, space: SearchSpace) -> optuna.Study:
    if sweeper.storage and sweeper.storage.startswith("sqlite:///"):
        Path(sweeper.storage[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    pruner = instantiate(sweeper.pruner) if sweeper.pruner else None
    study = optuna.create_study(storage=sweeper.storage, study_name=sweeper.study_name,
                                direction=sweeper.direction, load_if_exists=True, pruner=pruner)
    check_same_study(sweeper, study, space)
    study.set_user_attr(FIXED_ATTR, sorted(space.fixed))
    study.sampler = make_sampler(sweeper.sampler, n_previous=len(study.trials))

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        log.warning("trial %d was left RUNNING by a sweep that died: marking it FAIL and queueing its params %s",
                    trial.number, trial.params)
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(trial.params)
    return study


def check_same_study(sweeper: OptunaSweeper, study: optuna.Study, space: SearchSpace) -> None:
    """A rerun must ask the same question: same direction, fixed overrides and search space."""
    def refuse(what: str) -> None:
        raise HydraException(
            f"study {study.study_name!r} in {sweeper.storage} was run with {what}\nTo run this sweep, "
            f"give it another study: hydra.sweeper.study_name=<new name> (or rerun the original command).")

    if study.direction.name.lower() != sweeper.direction:
        refuse(f"direction {study.direction.name.lower()}, not {sweeper.direction}.")
    previous = study.user_attrs.get(FIXED_ATTR)
    if previous is not None and previous != sorted(space.fixed):
        refuse(f"other fixed overrides:\n  before: {previous}\n  now:    {sorted(space.fixed)}")
    for trial in study.get_trials(deepcopy=False):
        for name, dist in trial.distributions.items():
            if name in space.dimensions:
                try:
                    check_distribution_compatibility(dist, space.dimensions[name].distribution)
                except ValueError:
                    refuse(f"another search space for {name}: {dist}.")


def make_sampler(config: dict[str, Any], n_previous: int) -> optuna.samplers.BaseSampler:
    # A seeded sampler restarted on a resumed study would replay its first random draws and
    # re-evaluate params it already tried. Deriving the seed from (seed, trials so far) keeps a
    # rerun deterministic without repeating them (SeedSequence mixes the two: nearby integer seeds
    # can start with near-identical draws).
    config = dict(config)
    if config.get("seed") is not None and n_previous:
        config["seed"] = int(np.random.SeedSequence([int(config["seed"]), n_previous]).generate_state(1)[0])
    with warnings.catch_warnings():  # constant_liar etc. are "experimental" in Optuna 4: noise on every sweep
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return instantiate(config)


def run_trials(sweeper: OptunaSweeper, study: optuna.Study,
               space: SearchSpace) -> tuple[list[Sequence[JobReturn]], int, int]:
    n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
    n_todo = max(sweeper.n_trials - n_complete, 0)
    log.info("Study %r (%s): %d/%d trials complete, running %d, %d at a time. Sweep dir: %s",
             study.study_name, sweeper.storage or "in memory", n_complete, sweeper.n_trials, n_todo,
             sweeper.n_jobs, sweeper.sweep_dir)
    returns: list[Sequence[JobReturn]] = []
    n_launched = n_failed = 0
    while n_launched < n_todo:
        trials: list[Trial] = []
        try:
            for _ in range(min(sweeper.n_jobs, n_todo - n_launched)):
                trials.append(study.ask(space.distributions))
            results = launch(sweeper, trials, space)
        except BaseException:  # Ctrl-C, or the launcher itself failed
            # Trials whose job already told its result (mediaml.pruning) keep it; only the others never
            # reported: FAIL, and their params queued to run first next time.
            lost = [t for t in trials if not study._storage.get_trial(t._trial_id).state.is_finished()]
            for trial in lost:
                study.tell(trial, state=TrialState.FAIL)
                study.enqueue_trial(trial.params)
            log.warning("sweep stopped: trials %s marked FAIL and queued to run first on the next run",
                        [t.number for t in lost])
            raise
        for trial, result in zip(trials, results):
            n_failed += tell(study, trial, result) not in (TrialState.COMPLETE, TrialState.PRUNED)
        n_launched += len(trials)
        returns.append(results)
    return returns, n_launched, n_failed


def launch(sweeper: OptunaSweeper, trials: list[Trial], space: SearchSpace) -> list[JobReturn]:
    """Launch the trials as Hydra jobs numbered by trial number, so job folders never collide
    across reruns. Trial numbers of a batch are normally consecutive; if not (trials queued by
    hand), each run of consecutive numbers is its own launch."""
    sweeper.validate_batch_is_legal([space.overrides(t.params) for t in trials])
    results: list[JobReturn] = []
    for _, group in itertools.groupby(enumerate(trials), key=lambda it: it[1].number - it[0]):
        run = [trial for _, trial in group]
        # Each job's trial id in its own environment (Hydra applies hydra.job.env_set in the job's process).
        results += sweeper.launcher.launch([space.overrides(t.params) + [f"++hydra.job.env_set.{TRIAL_ENV}={t._trial_id}"]
                                            for t in run], initial_job_idx=run[0].number)
    return results


def tell(study: optuna.Study, trial: Trial, result: JobReturn) -> TrialState:
    """The job's result to the study, unless the job already told it (mediaml.pruning: COMPLETE or PRUNED
    as soon as the job ended, whatever the launcher's batching)."""
    done = study._storage.get_trial(trial._trial_id).state
    if done.is_finished():
        return done
    try:
        value = float(result.return_value)  # return_value re-raises the job's exception
    except optuna.TrialPruned:
        return study.tell(trial, state=TrialState.PRUNED).state
    except Exception as e:
        log.error("trial %d failed (%s: %s); the sweep goes on", trial.number, type(e).__name__, e)
        trial.set_user_attr("error", f"{type(e).__name__}: {e}"[:1000])
        return study.tell(trial, state=TrialState.FAIL).state
    return study.tell(trial, value).state  # a NaN value makes Optuna mark it FAIL


def write_results(sweeper: OptunaSweeper, study: optuna.Study) -> None:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        log.warning("no trial of study %r has completed: no optimization_results.yaml", study.study_name)
        return
    best = study.best_trial
    results = {
        "name": "optuna",
        "study_name": study.study_name,
        "storage": sweeper.storage,
        "direction": sweeper.direction,
        "best_value": best.value,
        "best_params": best.params,
        "best_trial": best.number,  # also its job folder in the sweep dir
        "n_complete_trials": len(complete),
        "n_trials": len(study.trials),
    }
    OmegaConf.save(OmegaConf.create(results), sweeper.sweep_dir / "optimization_results.yaml")
    log.info("Best trial #%d of %d complete: value %s with %s", best.number, len(complete), best.value, best.params)
