"""The lifecycle of one tracked run: open it, tag it, log the config, close it with the right status.

FINISHED when the task returns, FAILED (with the traceback as an artifact) when it raises,
KILLED on Ctrl-C or SIGTERM. Nothing is left RUNNING by anything short of SIGKILL.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import shlex
import socket
import signal
import subprocess
import threading
import traceback
from pathlib import Path
from typing import Iterator

from omegaconf import DictConfig, OmegaConf

from mediaml.config import PROJECT_ROOT, flatten
from mediaml.errors import ConfigError
from mediaml.ranks import distributed_rank  # noqa: F401 - also imported from here
from mediaml.threads import resolve as resolve_threads
from mediaml.tracking import agent
from mediaml.tracking.store import ensure_experiment, resolve_tracking_uri, restore_uri_env, store_errors_named
from mediaml.tracking.tracker import POLICIES, Tracker
from hydra_plugins.mediaml_optuna_sweeper.config import TRIAL_NUMBER_ENV

log = logging.getLogger(__name__)


class RunInterrupted(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so a terminated run ends KILLED like Ctrl-C."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise RunInterrupted(f"received signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str, bool | None]:
    """(commit, dirty) of the project checkout; ("unknown", None) outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        return (commit or "unknown", bool(status) if commit else None)
    except (OSError, subprocess.SubprocessError):
        return ("unknown", None)


def hydra_info() -> dict:
    """Choices, overrides, output dir and multirun info of the current Hydra job (empty outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    global _hydra_info
    if not HydraConfig.initialized():
        return {}
    hc = HydraConfig.get()
    trial_number = os.environ.get(TRIAL_NUMBER_ENV)
    # Read several times a job (tags, policies, names): once per job's Hydra config (a new, read-only one each job)
    if _hydra_info is None or _hydra_info[0] is not hc or _hydra_info[1] != trial_number:
        _hydra_info = (hc, trial_number, {
            "choices": dict(hc.runtime.choices),
            "overrides": list(hc.overrides.task),
            "output_dir": hc.runtime.output_dir,
            "mode": str(hc.mode).split(".")[-1] if hc.mode is not None else "RUN",
            # An Optuna trial's job is numbered by its trial (its folder too), whichever worker launched it.
            "job_num": trial_number or hc.job.get("num"),
            "sweep_dir": hc.sweep.dir,
        })
    info = _hydra_info[2]
    return {**info, "choices": dict(info["choices"]), "overrides": list(info["overrides"])}


_hydra_info: tuple | None = None  # (Hydra's config, trial number, what hydra_info read from it)


def sweep_id(sweep_dir: str | Path, output_root: str | Path) -> str:
    """A multirun's id: its sweep folder relative to paths.output_root (the folder itself if outside it)."""
    sweep_dir = Path(sweep_dir).resolve()
    try:
        return str(sweep_dir.relative_to(Path(output_root).resolve()))
    except ValueError:
        return str(sweep_dir)


def run_tags(cfg: DictConfig, output_dir: Path) -> dict[str, str]:
    info = hydra_info()
    choices = info.get("choices", {})
    model_choice = choices.get("model") or str(cfg.get("model", {}).get("_target_", "none")).rsplit(".", 1)[-1]
    dataset_choice = choices.get("dataset") or cfg.get("dataset", {}).get("name", "none")
    commit, dirty = git_state()
    overrides = info.get("overrides", [])
    tags = {
        "mediaml.task": cfg.task.name,
        "mediaml.model": model_choice,
        "mediaml.dataset": dataset_choice,
        "mediaml.seed": cfg.get("seed"),
        # Float results depend on the thread count (reduction order): a seed repeats a run at the same count.
        "mediaml.n_threads": resolve_threads(cfg.get("n_threads")),
        "git.commit": commit,
        "git.dirty": dirty,
        "hydra.output_dir": str(output_dir),
        # The exact command that repeats this job (a sweep job's own overrides included).
        "command": "python train.py " + " ".join(shlex.quote(o) for o in overrides),
        # Who runs it: lets a later run close this one if its process dies without ending it.
        "mediaml.host": socket.gethostname(),
        "mediaml.pid": os.getpid(),
    }
    if choices.get("hparams_search"):
        tags["mediaml.hparams_search"] = choices["hparams_search"]
    if choices.get("experiment"):
        tags["mediaml.experiment"] = choices["experiment"]
    if info.get("mode") == "MULTIRUN":
        sweep_dir = Path(info["sweep_dir"]).resolve()
        tags.update({"sweep.id": sweep_id(sweep_dir, cfg.paths.output_root), "sweep.dir": str(sweep_dir),
                     "sweep.job_num": info.get("job_num")})
        from mediaml.tracking.sweep import PARENT_ENV

        if os.environ.get(PARENT_ENV):  # the sweep's parent run (mediaml.tracking.sweep): the UI nests this job
            tags["mlflow.parentRunId"] = os.environ[PARENT_ENV]
    return {k: str(v) for k, v in tags.items()}


def run_name(tags: dict[str, str], job_overrides: list[str] | None = None) -> str:
    """What differs first: `#03 random_forest` for an Optuna trial, the swept values (`svc`) for a grid job,
    `random_forest-spotify_cs98x` for a single run."""
    if "sweep.job_num" not in tags:
        return f"{tags['mediaml.model']}-{tags['mediaml.dataset']}"
    from mediaml.tracking.sweep import SWEPT_ENV

    swept = [k for k in os.environ.get(SWEPT_ENV, "").split(",") if k]
    if swept:  # a grid: the values this job takes for the swept keys
        values = dict(o.split("=", 1) for o in (job_overrides or []) if "=" in o)
        return " ".join(values.get(k, "?") for k in swept)
    return f"#{int(tags['sweep.job_num']):02d} {tags['mediaml.model']}"


# Config keys whose values depend on the machine, not the experiment: tags, not params.
MACHINE_KEYS = ("paths.", "logger.tracking_uri", "logger.store_dir")


def experiment_params(job_cfg: DictConfig) -> tuple[dict, dict[str, str]]:
    """(params, tags): every resolved config value as a param, except machine-specific ones (absolute paths,
    the tracking URI), which become `config.<key>` tags; a param value under one of the `paths.*` folders
    is written relative to it (`${paths.data_dir}/spotify/CS98X.csv`), so sibling runs on other machines
    log the same values."""
    flat = flatten(job_cfg)
    roots = sorted(((k, str(v)) for k, v in flat.items() if k.startswith("paths.") and isinstance(v, str) and v),
                   key=lambda kv: -len(kv[1]))
    params, tags = {}, {}
    for k, v in flat.items():
        if k.startswith(MACHINE_KEYS):
            tags[f"config.{k}"] = str(v)
            continue
        if isinstance(v, str):
            for rk, rv in roots:
                if v == rv or v.startswith(rv.rstrip("/") + "/"):
                    v = "${" + rk + "}" + v[len(rv.rstrip("/")):]
                    break
        params[k] = v
    return params, tags


IDENTITY_PREFIXES = ("dataset.", "model.")


def experiment_identity(cfg: DictConfig) -> str:
    """What makes two jobs the same experiment, so that one may resume the other's checkpoint: the task, the
    seed, and every dataset and model value (the data and the network), written as in the params (paths
    relative to `paths.*`), minus the keys in `task.identity_ignore` (how data is loaded, not what it is:
    batch size, loader workers, cache). Trainer, optimizer and epoch settings are not part of it: resuming
    with more epochs or another learning rate is a user's choice. A 12-hex digest, tagged `mediaml.identity`."""
    return identity_of(experiment_params(job_config(cfg))[0], cfg)


def job_config(cfg: DictConfig) -> DictConfig:
    """The job's own resolved config, without Hydra's node."""
    return OmegaConf.create({k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k != "hydra"})


def identity_of(params: dict, cfg: DictConfig) -> str:
    """experiment_identity from the params `experiment_params` made already."""
    import hashlib
    import json

    ignore = set(cfg.task.get("identity_ignore") or [])
    spec = {k: v for k, v in params.items() if k.startswith(IDENTITY_PREFIXES) and k not in ignore}
    spec.update({"task.name": cfg.task.name, "seed": cfg.get("seed")})
    return hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:12]


def policy(cfg: DictConfig, key: str) -> str:
    """`logger.log_model` / `logger.figures`: `all` (every run logs its model / figures), `best` (a sweep logs
    its best trial's when it ends), `none`; `auto` is `best` in a tracked sweep (-m), `all` otherwise.
    true / false: all / none."""
    value = cfg.logger.get(key, "auto")
    if isinstance(value, bool) or value is None:
        return "all" if value else "none"
    value = str(value).strip().lower()
    if value == "auto":
        return "best" if hydra_info().get("mode") == "MULTIRUN" and cfg.logger.enabled else "all"
    if value not in POLICIES:
        raise ConfigError(f"logger.{key}={value!r}: expected one of {', '.join(POLICIES)} or auto "
                          "(best in a sweep, all for a single run)")
    return value


def model_policy(cfg: DictConfig) -> str:
    return policy(cfg, "log_model")


@contextlib.contextmanager
def tracked_run(cfg: DictConfig, output_dir: Path, description: str | None = None,
                resume_run_id: str | None = None) -> Iterator[Tracker]:
    """Open the MLflow run for this job (one experiment per task) and yield its Tracker.

    `description` (the study, its seed write-up, its objective) becomes the experiment's note.
    `resume_run_id` (the run of a checkpoint the task resumes, `Task.resume_run_id`) reopens that run, so
    its history goes on in one run; params it already has keep their value (a changed one is listed in the
    `mediaml.resume.changed` tag).

    A non-zero DDP rank (Lightning re-runs train.py once per extra device) opens no run: it gets an
    inactive Tracker, and rank 0's run is the job's only run.
    """
    output_dir = Path(output_dir)
    # Bad values stop the job before any run opens.
    models, figures = policy(cfg, "log_model"), policy(cfg, "figures")
    from mediaml.tracking.sweep import check_sweep_figures

    check_sweep_figures(cfg.logger.get("sweep_figures", "png"))
    agent.check_setting(cfg.logger.get("agent", "auto"))
    if distributed_rank() != 0:
        log.info("distributed rank %d: no MLflow run of its own (rank 0 tracks the job)", distributed_rank())
        yield Tracker(output_dir, None)
        return
    # The job's own config: Hydra's node is logged as the .hydra/ folder, not as params.
    job_cfg = job_config(cfg)
    config_yaml = OmegaConf.to_yaml(job_cfg)
    if not cfg.logger.enabled:
        tracker = Tracker(output_dir, None)
        tracker.model_policy, tracker.figure_policy = models, figures
        tracker.log_text(config_yaml, "config/config.yaml")
        yield tracker
        return

    uri = resolve_tracking_uri(cfg.logger.tracking_uri, cfg.logger.store_dir)
    # mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI; restored at the end, so the next in-process
    # sweep job composes the same config (and params) as the first.
    env_uri = os.environ.get("MLFLOW_TRACKING_URI")
    tags = run_tags(cfg, output_dir)
    params, machine_tags = experiment_params(job_cfg)
    tags.update(machine_tags)
    tags["mediaml.identity"] = identity_of(params, cfg)  # from the params: one flattening per run
    name = cfg.logger.run_name or run_name(tags, hydra_info().get("overrides"))
    with store_errors_named(uri):  # a store that cannot be opened or written stops the job here, named
        # Here, or in the sweep's tracking process (mediaml.tracking.agent): there the run opens while the job
        # starts its work (MLflow's import and the sweep's parent run take ~1 s before the first), the job goes on
        # with a Later that stands for the run's id, and an error of the opening is raised by its next tracking
        # call, or at its end. A resumed run's params depend on what the run has: waited for.
        opened = agent.call_later(uri, open_run, uri, cfg.logger.store_dir, cfg.logger.experiment_name, description,
                                  tags, params, name, resume_run_id)
        if resume_run_id:
            opened = agent.resolve(opened)
            params = opened[3]
    tracker = Tracker(output_dir, opened[0], tracking_uri=uri, experiment_name=cfg.logger.experiment_name)
    tracker.model_policy, tracker.figure_policy = models, figures
    tracker.experiment_id = opened[1]
    tracker.artifact_uri = opened[2]
    tracker.defer = True  # scalar metrics go out when the run ends, the objective first (Tracker.flush)
    agent.job_started(uri)  # a sweep's tracking process may do its work ahead now, while this job works
    status, error = "FAILED", None
    try:
        with _sigterm_raises():
            tracker.log_params(params)
            tracker.log_text(config_yaml, "config/config.yaml")
            hydra_dir = output_dir / ".hydra"
            if hydra_dir.is_dir():
                tracker.log_artifact(hydra_dir, "config/hydra")
            yield tracker
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        _log_traceback(tracker)
        raise
    except BaseException as e:
        from mediaml.pruning import is_pruned

        if is_pruned(e):  # stopped on purpose by the sweep's pruner: KILLED, and the tag says why
            status = "KILLED"
            tracker.set_tags({"optuna.state": "PRUNED", "optuna.pruned": str(e)})
        else:
            error = _one_line(e)
            _log_traceback(tracker)
        raise
    finally:
        try:
            with store_errors_named(uri):
                run_id = tracker.run_id  # at the latest here: the run is open, or its error is raised (no run to end)
        except BaseException:
            restore_uri_env(env_uri)
            raise
        flush_error = None
        try:
            tracker.flush(first=[str(cfg.task.objective.metric), "objective"])
        except Exception as e:  # the store itself may be what failed; the run still ends with its status
            # (in a sweep's tracking process, also a call sent earlier that failed there: a file to log...)
            log.error("could not log the run's results: %s", e)
            flush_error = e if status == "FINISHED" else None  # else the task's own error is on its way
            if status == "FINISHED":
                _log_traceback(tracker)
            status, error = "FAILED", error or _one_line(e)
        try:
            agent.call_after_errors(uri, _end_run, run_id, status, output_dir, error)
            if status == "FINISHED" and figures == "best":  # the sweep's best so far: its figures drawn ahead
                from mediaml.tracking.sweep import draw_if_best

                agent.do_ahead(uri, draw_if_best, run_id)
        except Exception as e:  # noqa: BLE001 - an earlier call's error, or the tracking process gone
            log.error("could not end MLflow run %s: %s", run_id, e)
        restore_uri_env(env_uri)
        if flush_error is not None:  # the task finished but its results did not reach the store: not a success
            raise flush_error


def open_run(uri: str, store_dir: str, experiment_name: str, description: str | None, tags: dict[str, str],
             params: dict, name: str, resume_run_id: str | None = None) -> tuple:
    """Start the job's run (the experiment made if needed, runs of dead processes closed first, a checkpoint's
    run resumed): (run id, experiment id, artifact URI, the params still to log, resumed?). Run by
    mediaml.tracking.agent: in the job's process, or in its sweep's tracking process."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    from mediaml.tracking.sweep import PARENT_ENV

    if "sweep.id" in tags and "mlflow.parentRunId" not in tags and os.environ.get(PARENT_ENV):
        tags = {**tags, "mlflow.parentRunId": os.environ[PARENT_ENV]}  # the sweep's parent, made in this process
    experiment_id = ensure_experiment(uri, store_dir, experiment_name, description)
    close_dead_runs(uri, experiment_id)
    if resume_run_id:
        wanted, resume_run_id = resume_run_id, _resumable(uri, experiment_id, resume_run_id)
        if resume_run_id is None:
            tags = {**tags, "mediaml.resumed_from": wanted}
    if resume_run_id:
        params, tags = _resumed(uri, resume_run_id, params, tags)
        run = mlflow.start_run(run_id=resume_run_id, tags=tags)
    else:
        run = mlflow.start_run(experiment_id=experiment_id, tags=tags, run_name=name)
    log.info("MLflow run %s%s in experiment %r at %s", run.info.run_id, " (resumed)" if resume_run_id else "",
             experiment_name, uri)
    return run.info.run_id, experiment_id, run.info.artifact_uri, params, bool(resume_run_id)


def _resumable(uri: str, experiment_id: str, run_id: str) -> str | None:
    """`run_id` if this store has it in this experiment and no live process holds it; None (a new run, tagged
    `mediaml.resumed_from`) when the checkpoint's run is in another store."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        r = MlflowClient(uri).get_run(run_id)
    except MlflowException:
        log.warning("the checkpoint's MLflow run %s is not in %s: this job opens a new run", run_id, uri)
        return None
    if r.info.experiment_id != experiment_id:
        log.warning("the checkpoint's MLflow run %s is in another experiment: this job opens a new run", run_id)
        return None
    pid = r.data.tags.get("mediaml.pid", "")
    if (r.info.status == "RUNNING" and r.data.tags.get("mediaml.host") == socket.gethostname()
            and pid.isdigit() and _process_alive(int(pid)) and int(pid) != os.getpid()):
        raise ConfigError(f"cannot resume MLflow run {run_id}: it is still running (pid {pid}); stop it first")
    return run_id


def _resumed(uri: str, run_id: str, params: dict, tags: dict[str, str]) -> tuple[dict, dict[str, str]]:
    """The params still to log into a resumed run (MLflow params are write-once) and its tags."""
    from mlflow.tracking import MlflowClient

    from mediaml.tracking.tracker import _param_value

    old = MlflowClient(uri).get_run(run_id).data
    changed = [f"{k}: {old.params[k]} -> {_param_value(v)}" for k, v in params.items()
               if k in old.params and old.params[k] != _param_value(v)]
    tags = {**tags, "mediaml.resumed": str(int(old.tags.get("mediaml.resumed", "0")) + 1)}
    if changed:
        tags["mediaml.resume.changed"] = "; ".join(changed)[:5000]
    return {k: v for k, v in params.items() if k not in old.params}, tags


# Where a run whose store stopped answering leaves its status, for the next run of the experiment.
UNCLOSED_MARKER = Path(".mediaml") / "unclosed_run.json"


def _one_line(e: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(e), e)).strip()[:1000]


def _end_run(run_id: str, status: str, output_dir: Path, error: str | None = None) -> None:
    """End the active run with `status`. If the store no longer answers (full disk, write limit, server
    gone), leave a marker in the job folder: the next run of the experiment ends this one with that status
    and the error (close_dead_runs), instead of KILLED."""
    import json

    import mlflow
    from mlflow.tracking.fluent import _active_run_stack

    try:
        if status == "FAILED" and error:  # why, in the run table (the traceback: error/traceback.txt)
            mlflow.set_tag("mediaml.error", error[:5000])
        mlflow.end_run(status=status)
        log.info("MLflow run %s ended %s", run_id, status)
        return
    except Exception as e:
        stack = _active_run_stack.get()
        if stack and stack[-1].info.run_id == run_id:
            stack.pop()  # mlflow pops only after a successful write; this process is done with the run
        store_error = _one_line(e)
        marker = output_dir / UNCLOSED_MARKER
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"run_id": run_id, "status": "FAILED", "error": error or store_error,
                                          "store_error": store_error}))
            where = f"; the next run of this experiment will end it FAILED (marker {marker})"
        except OSError:
            where = "; it will be closed KILLED by the next run of this experiment"
        log.error("could not end MLflow run %s (%s)%s", run_id, store_error, where)


def close_dead_runs(uri: str, experiment_id: str) -> list[str]:
    """End the runs still RUNNING that their process has given up on: FAILED with the error when the process
    left a marker in its job folder (its store stopped answering, `_end_run`), else KILLED when its process,
    on this host, no longer exists.

    SIGKILL cannot be caught: joblib kills its workers that way when a parallel sweep is
    interrupted, and an OOM kill does too. Those runs would stay RUNNING forever; the next run of
    the experiment closes them. Runs of live processes and of other hosts are left alone.
    """
    import json

    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    host, closed = socket.gethostname(), []
    for r in client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=1000):
        tags = r.data.tags
        marker = Path(tags.get("hydra.output_dir", "")) / UNCLOSED_MARKER
        try:
            left = json.loads(marker.read_text()) if tags.get("hydra.output_dir") and marker.is_file() else None
        except (OSError, ValueError):
            left = None
        if left is not None and left.get("run_id") == r.info.run_id:
            client.set_tag(r.info.run_id, "mediaml.error", str(left.get("error"))[:5000])
            client.set_tag(r.info.run_id, "mediaml.closed_by",
                           f"a later run: its store failed ({str(left.get('store_error'))[:500]})")
            client.set_terminated(r.info.run_id, status=left.get("status", "FAILED"))
            marker.unlink(missing_ok=True)
            closed.append(r.info.run_id)
            continue
        if tags.get("mediaml.host") != host or not tags.get("mediaml.pid", "").isdigit():
            continue
        if _process_alive(int(tags["mediaml.pid"])):
            continue
        client.set_tag(r.info.run_id, "mediaml.closed_by", "a later run: its process had died")
        client.set_terminated(r.info.run_id, status="KILLED")
        closed.append(r.info.run_id)
    if closed:
        log.warning("closed %d run(s) left RUNNING by processes that ended without closing them: %s",
                    len(closed), closed)
    return closed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _log_traceback(tracker: Tracker) -> None:
    if agent.failed(tracker._run_id):  # the run could not be opened: nothing to log it into
        return
    try:
        tracker.log_text(traceback.format_exc(), "error/traceback.txt")
    except Exception:  # the store itself may be what failed; never hide the original error
        log.exception("could not log the traceback")
