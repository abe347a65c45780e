"""The sweep loop: open (or join, or resume) the study, ask a batch, launch it through Hydra's launcher, tell.

One study, any number of workers: the same command started in N shells or on N machines with the same
`hydra.sweeper.storage` and `study_name` runs N workers of the study (a shared sqlite file on one machine,
PostgreSQL across machines, a journal file on NFS; see storage.py). Rules, for one worker as for many:

* `n_trials` counts COMPLETE + PRUNED trials of the study, all workers together. A worker asks a trial
  only while COMPLETE + PRUNED + RUNNING is below it, and after asking checks its trial's place: a trial
  with `n_trials` COMPLETE/PRUNED trials plus RUNNING/WAITING ones numbered below it is surplus (two workers
  asked at the same moment for the last slot): it is failed unrun, tagged `mediaml.surplus`. So the study
  never gets more than `n_trials`, and no trial is run twice.
* A worker marks its running trials alive (`mediaml.worker`, `mediaml.heartbeat` user attrs, every
  `heartbeat_interval` s; Optuna's own heartbeat exists for RDB storages only). A RUNNING trial whose worker
  process on this host is gone, or whose heartbeat is older than `grace_period`, was lost with its worker:
  the first worker to see it fails it and queues its params to run first. So a worker killed at any moment
  loses only its running trials, which another worker (or a rerun of the command) runs again.
* A worker whose study is full but not finished (others' trials still running) waits for them, and takes
  over a trial whose worker dies; it returns once the study has its `n_trials`.
* A rerun of the same command after every worker stopped resumes: only the missing trials run.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import optuna
from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.utils import JobReturn
from hydra.types import HydraContext
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import OmegaConf
from optuna.distributions import check_distribution_compatibility
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, Trial, TrialState

from .config import PRUNER_ENV, STORAGE_ENV, STUDY_ENV, SURPLUS_ATTR, TRIAL_ENV, TRIAL_NUMBER_ENV
from ._search_space import SearchSpace, params_to_overrides, parse_search_space
from .storage import open_storage

if TYPE_CHECKING:
    from .optuna_sweeper import OptunaSweeper

log = logging.getLogger(__name__)

FIXED_ATTR = "fixed_overrides"
WORKER_ATTR = "mediaml.worker"        # "host:pid" of the worker running the trial
HEARTBEAT_ATTR = "mediaml.heartbeat"  # unix time of its last sign of life
RETRY_ATTR = "mediaml.retry_of"       # a lost trial's number, on the trial queued to run its params again
DONE = (TrialState.COMPLETE, TrialState.PRUNED)


def run_sweep(sweeper: OptunaSweeper, arguments: list[str]) -> list[Sequence[JobReturn]]:
    assert sweeper.hydra_context is not None and sweeper.config is not None
    from mediaml.ranks import distributed_rank

    if distributed_rank() != 0:
        raise HydraException(
            f"this sweep runs as distributed rank {distributed_rank()} (started by torchrun or srun with several "
            "tasks): every rank would be a worker of the study whose jobs are not tracked. Start the sweep once per "
            "worker (e.g. `srun --ntasks=1`, an sbatch array, N shells) and use trainer=ddp for DDP inside its jobs.")
    space = parse_search_space(params_to_overrides(sweeper.params) + list(arguments),
                               sweeper.hydra_context.config_loader)
    sweeper.sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(sweeper.config, sweeper.sweep_dir / "multirun.yaml")
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
    pruner = instantiate(sweeper.pruner) if sweeper.pruner else None
    study = optuna.create_study(storage=open_storage(sweeper.storage), study_name=sweeper.study_name,
                                direction=sweeper.direction, load_if_exists=True, pruner=pruner)
    check_same_study(sweeper, study, space)
    if study.user_attrs.get(FIXED_ATTR) is None:
        study.set_user_attr(FIXED_ATTR, sorted(space.fixed))
    study.sampler = make_sampler(sweeper.sampler)
    fail_lost_trials(study, sweeper.grace_period)
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


def make_sampler(config: dict[str, Any]) -> optuna.samplers.BaseSampler:
    """The configured sampler; a seeded one is seeded by its worker's first trial, see SeededFromFirstTrial."""
    config = dict(config)
    if config.get("seed") is None:
        return _instantiate_sampler(config)
    return SeededFromFirstTrial(config)


def _instantiate_sampler(config: dict[str, Any]) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():  # constant_liar etc. are "experimental" in Optuna 4: noise on every sweep
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return instantiate(config)


class SeededFromFirstTrial(optuna.samplers.BaseSampler):
    """The configured seeded sampler, built when this worker asks its first trial, with the seed derived
    from (seed, that trial's number); trial 0 takes the seed as given.

    One seed for every process would make a resumed study replay its first draws, and two workers started
    at the same moment draw the same params: trial numbers are unique in a study, so deriving from the
    first one keeps a seeded sweep repeatable while no two workers (or reruns) share a stream. SeedSequence
    mixes the two: nearby integer seeds can start with near-identical draws."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._inner: optuna.samplers.BaseSampler | None = None

    def before_trial(self, study, trial) -> None:
        if self._inner is None:
            seed = int(self._config["seed"])
            if trial.number:
                seed = int(np.random.SeedSequence([seed, trial.number]).generate_state(1)[0])
            self._inner = _instantiate_sampler({**self._config, "seed": seed})
        self._inner.before_trial(study, trial)

    @property
    def inner(self) -> optuna.samplers.BaseSampler:
        if self._inner is None:  # used before any trial (e.g. by a visualisation): the plain seed
            self._inner = _instantiate_sampler(self._config)
        return self._inner

    def infer_relative_search_space(self, study, trial):
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


# -- workers of one study ------------------------------------------------------------------------------
def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def lost_because(trial: FrozenTrial, grace_period: float, now: float | None = None) -> str | None:
    """Why a RUNNING trial is lost with its worker (None: its worker is alive as far as we can tell)."""
    now = time.time() if now is None else now
    worker = str(trial.user_attrs.get(WORKER_ATTR, ""))
    host, _, pid = worker.rpartition(":")
    if worker == this_worker():
        return None
    if host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid)):
        return f"its worker {worker} is gone"
    beat = trial.user_attrs.get(HEARTBEAT_ATTR)
    if beat is None and trial.datetime_start is not None:
        beat = trial.datetime_start.timestamp()
    if beat is not None and now - float(beat) > grace_period:
        return f"no heartbeat from {worker or 'its worker'} for {now - float(beat):.0f} s (grace {grace_period:g} s)"
    return None


def fail_lost_trials(study: optuna.Study, grace_period: float) -> list[int]:
    """Fail the RUNNING trials lost with their workers and queue their params to run first. With many
    workers checking at once, the storage lets exactly one fail a trial, and only that one queues it."""
    requeued = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        why = lost_because(trial, grace_period)
        if why is None:
            continue
        try:
            if not study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:  # it finished, or another worker failed it first
            continue
        study.enqueue_trial(trial.params, user_attrs={RETRY_ATTR: trial.number})
        requeued.append(trial.number)
        log.warning("trial %d was lost (%s): marked FAIL, its params %s queued to run first",
                    trial.number, why, trial.params)
    return requeued


class Heartbeat:
    """Marks this worker's running trials alive in the study every `interval` seconds (a daemon thread)."""

    def __init__(self, study: optuna.Study, interval: float) -> None:
        self.study, self.interval = study, interval
        self.trial_ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="optuna-heartbeat", daemon=True)
        self._thread.start()

    def claim(self, trial: Trial) -> None:
        storage = self.study._storage
        storage.set_trial_user_attr(trial._trial_id, WORKER_ATTR, this_worker())
        storage.set_trial_user_attr(trial._trial_id, HEARTBEAT_ATTR, time.time())
        with self._lock:
            self.trial_ids.add(trial._trial_id)

    def release(self, trials: list[Trial]) -> None:
        with self._lock:
            self.trial_ids.difference_update(t._trial_id for t in trials)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                ids = list(self.trial_ids)
            for trial_id in ids:
                try:
                    self.study._storage.set_trial_user_attr(trial_id, HEARTBEAT_ATTR, time.time())
                except UpdateFinishedTrialError:  # its job told the result: nothing left to mark
                    with self._lock:
                        self.trial_ids.discard(trial_id)
                except Exception as e:  # noqa: BLE001 - a storage hiccup: the next beat tries again
                    log.warning("heartbeat of trial id %d not written: %s", trial_id, e)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def is_surplus(study: optuna.Study, trial: Trial, n_trials: int) -> bool:
    """Whether `trial` lies beyond `n_trials`: the study's COMPLETE/PRUNED trials plus the RUNNING/WAITING
    ones numbered below it already fill it. Every worker applies the same rule to the same storage, so of
    two trials asked at once for the last slot the lower-numbered one runs."""
    trials = study.get_trials(deepcopy=False)
    taken = sum(t.state in DONE for t in trials)
    taken += sum(t.state in (TrialState.RUNNING, TrialState.WAITING) and t.number < trial.number for t in trials)
    return taken >= n_trials


def run_trials(sweeper: OptunaSweeper, study: optuna.Study,
               space: SearchSpace) -> tuple[list[Sequence[JobReturn]], int, int]:
    def counts() -> tuple[int, int]:
        trials = study.get_trials(deepcopy=False, states=(*DONE, TrialState.RUNNING))
        return sum(t.state in DONE for t in trials), sum(t.state == TrialState.RUNNING for t in trials)

    n_done, n_running = counts()
    # This worker launches at most the trials missing when it started: a failed trial is not retried in the
    # same invocation (a rerun runs what is still missing).
    budget = max(sweeper.n_trials - n_done, 0)
    log.info("Study %r (%s): %d/%d trials complete, %d running elsewhere; running up to %d here, %d at a time. "
             "Sweep dir: %s", study.study_name, sweeper.storage or "in memory", n_done, sweeper.n_trials, n_running,
             budget, sweeper.n_jobs, sweeper.sweep_dir)
    returns: list[Sequence[JobReturn]] = []
    n_launched = n_failed = 0
    heartbeat = Heartbeat(study, sweeper.heartbeat_interval) if sweeper.storage else None
    waiting_since = None
    try:
        while n_launched < budget:
            if heartbeat is not None:
                fail_lost_trials(study, sweeper.grace_period)
            n_done, n_running = counts()
            free = sweeper.n_trials - n_done - n_running
            if n_done >= sweeper.n_trials:
                break
            if free <= 0:  # the rest is running in other workers: wait, and take over a lost one
                if waiting_since is None:
                    waiting_since = time.time()
                    log.info("study %r: %d/%d complete, the other %d running in other workers: waiting for them",
                             study.study_name, n_done, sweeper.n_trials, n_running)
                time.sleep(min(sweeper.heartbeat_interval, 5.0))
                continue
            waiting_since = None
            trials = ask_batch(sweeper, study, space, min(sweeper.n_jobs, free, budget - n_launched), heartbeat)
            if not trials:
                continue
            try:
                results = launch(sweeper, trials, space)
            except BaseException:  # Ctrl-C, or the launcher itself failed
                # Trials whose job already told its result (mediaml.pruning) keep it; only the others never
                # reported: FAIL, and their params queued to run first next time.
                lost = [t for t in trials if not study._storage.get_trial(t._trial_id).state.is_finished()]
                for trial in lost:
                    study.tell(trial, state=TrialState.FAIL)
                    study.enqueue_trial(trial.params, user_attrs={RETRY_ATTR: trial.number})
                log.warning("sweep stopped: trials %s marked FAIL and queued to run first on the next run",
                            [t.number for t in lost])
                raise
            finally:
                if heartbeat is not None:
                    heartbeat.release(trials)
            for trial, result in zip(trials, results):
                n_failed += tell(study, trial, result) not in DONE
            n_launched += len(trials)
            returns.append(results)
    finally:
        if heartbeat is not None:
            heartbeat.stop()
    return returns, n_launched, n_failed


def ask_batch(sweeper: OptunaSweeper, study: optuna.Study, space: SearchSpace, n: int,
              heartbeat: Heartbeat | None) -> list[Trial]:
    """Up to `n` trials this worker may run: asked, claimed, and checked against the global cap."""
    trials: list[Trial] = []
    try:
        for _ in range(n):
            trial = study.ask(space.distributions)
            if heartbeat is not None:
                heartbeat.claim(trial)
            trials.append(trial)
        keep = []
        for trial in trials:
            if heartbeat is not None and is_surplus(study, trial, sweeper.n_trials):
                heartbeat.release([trial])
                study._storage.set_trial_user_attr(trial._trial_id, SURPLUS_ATTR, True)
                study.tell(trial, state=TrialState.FAIL)
                frozen = study._storage.get_trial(trial._trial_id)
                if frozen.system_attrs.get("fixed_params"):  # it came from the queue: queue it again
                    study.enqueue_trial(frozen.params, user_attrs={k: v for k, v in frozen.user_attrs.items()
                                                                   if k == RETRY_ATTR})
                log.info("trial %d not run: the study's %d trials are taken by other workers",
                         trial.number, sweeper.n_trials)
            else:
                keep.append(trial)
        return keep
    except BaseException:
        for trial in trials:
            if not study._storage.get_trial(trial._trial_id).state.is_finished():
                study.tell(trial, state=TrialState.FAIL)
                study.enqueue_trial(trial.params)
        raise


def launch(sweeper: OptunaSweeper, trials: list[Trial], space: SearchSpace) -> list[JobReturn]:
    """Launch a batch as Hydra jobs (one launcher call: a parallel launcher runs them together, submitit
    as one job array). Each job's folder and number are its trial's number, so folders never collide
    across reruns and workers, and its trial id reaches its process through hydra.job.env_set."""
    # Hydra's basic launcher composes each job's config itself, in this process, before it runs it, and a bad
    # override stops the sweep there as here: checking first composed every trial twice (0.3 s a trial).
    # Other launchers run jobs elsewhere, several at once: a bad batch is refused before any of it starts.
    if not isinstance(sweeper.launcher, BasicLauncher):
        sweeper.validate_batch_is_legal([space.overrides(t.params) for t in trials])
    else:
        reuse_compositions(sweeper.launcher)
    jobs = [space.overrides(t.params) + [f"hydra.sweep.subdir={t.number}",
                                         f"++hydra.job.env_set.{TRIAL_ENV}={t._trial_id}",
                                         f"++hydra.job.env_set.{TRIAL_NUMBER_ENV}={t.number}"]
            for t in trials]
    return sweeper.launcher.launch(jobs, initial_job_idx=trials[0].number)


def reuse_compositions(launcher: BasicLauncher) -> None:
    """The basic launcher composes each trial from the one before when only sampled values differ (_compose)."""
    from ._compose import ReusingLoader

    ctx = launcher.hydra_context
    if ctx is not None and not isinstance(ctx.config_loader, ReusingLoader):
        launcher.hydra_context = HydraContext(config_loader=ReusingLoader(ctx.config_loader), callbacks=ctx.callbacks)


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
