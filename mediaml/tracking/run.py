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
from mediaml.tracking.store import ensure_experiment, resolve_tracking_uri
from mediaml.tracking.tracker import Tracker

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

    if not HydraConfig.initialized():
        return {}
    hc = HydraConfig.get()
    info = {
        "choices": dict(hc.runtime.choices),
        "overrides": list(hc.overrides.task),
        "output_dir": hc.runtime.output_dir,
        "mode": str(hc.mode).split(".")[-1] if hc.mode is not None else "RUN",
        "job_num": hc.job.get("num"),
        "sweep_dir": hc.sweep.dir,
    }
    return info


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


def distributed_rank() -> int:
    """This process's rank in a distributed job (RANK / LOCAL_RANK, set by Lightning's DDP launcher
    and torchrun for the processes it starts); 0 outside one."""
    for var in ("RANK", "LOCAL_RANK"):
        value = os.environ.get(var, "").strip()
        if value and value != "0":
            return int(value)
    return 0


@contextlib.contextmanager
def tracked_run(cfg: DictConfig, output_dir: Path, description: str | None = None) -> Iterator[Tracker]:
    """Open the MLflow run for this job (one experiment per task) and yield its Tracker.

    `description` (the study, its seed write-up, its objective) becomes the experiment's note.

    A non-zero DDP rank (Lightning re-runs train.py once per extra device) opens no run: it gets an
    inactive Tracker, and rank 0's run is the job's only run.
    """
    output_dir = Path(output_dir)
    if distributed_rank() != 0:
        log.info("distributed rank %d: no MLflow run of its own (rank 0 tracks the job)", distributed_rank())
        yield Tracker(output_dir, None)
        return
    # The job's own config: Hydra's node is logged as the .hydra/ folder, not as params.
    job_cfg = OmegaConf.create({k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k != "hydra"})
    config_yaml = OmegaConf.to_yaml(job_cfg)
    if not cfg.logger.enabled:
        tracker = Tracker(output_dir, None)
        tracker.log_text(config_yaml, "config/config.yaml")
        yield tracker
        return

    import mlflow

    uri = resolve_tracking_uri(cfg.logger.tracking_uri, cfg.logger.store_dir)
    # mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI; restored at the end, so the next in-process
    # sweep job composes the same config (and params) as the first.
    env_uri = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    experiment_id = ensure_experiment(uri, cfg.logger.store_dir, cfg.logger.experiment_name, description)
    close_dead_runs(uri, experiment_id)
    tags = run_tags(cfg, output_dir)
    params, machine_tags = experiment_params(job_cfg)
    tags.update(machine_tags)
    run = mlflow.start_run(experiment_id=experiment_id, tags=tags,
                           run_name=cfg.logger.run_name or run_name(tags, hydra_info().get("overrides")))
    tracker = Tracker(output_dir, run.info.run_id, tracking_uri=uri, experiment_name=cfg.logger.experiment_name)
    tracker.defer = True  # scalar metrics go out when the run ends, the objective first (Tracker.flush)
    log.info("MLflow run %s in experiment %r at %s", run.info.run_id, cfg.logger.experiment_name, uri)
    status = "FAILED"
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
            _log_traceback(tracker)
        raise
    finally:
        try:
            tracker.flush(first=[str(cfg.task.objective.metric), "objective"])
        except Exception:  # the store itself may be what failed; the run still ends with its status
            log.exception("could not log the run's metrics")
            status = "FAILED"
        mlflow.end_run(status=status)
        if env_uri is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env_uri
        log.info("MLflow run %s ended %s", run.info.run_id, status)


def close_dead_runs(uri: str, experiment_id: str) -> list[str]:
    """End as KILLED the runs still RUNNING whose process, on this host, no longer exists.

    SIGKILL cannot be caught: joblib kills its workers that way when a parallel sweep is
    interrupted, and an OOM kill does too. Those runs would stay RUNNING forever; the next run of
    the experiment closes them. Runs of live processes and of other hosts are left alone.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    host, closed = socket.gethostname(), []
    for r in client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=1000):
        tags = r.data.tags
        if tags.get("mediaml.host") != host or not tags.get("mediaml.pid", "").isdigit():
            continue
        if _process_alive(int(tags["mediaml.pid"])):
            continue
        client.set_tag(r.info.run_id, "mediaml.closed_by", "a later run: its process had died")
        client.set_terminated(r.info.run_id, status="KILLED")
        closed.append(r.info.run_id)
    if closed:
        log.warning("closed %d run(s) left RUNNING by dead processes as KILLED: %s", len(closed), closed)
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
    try:
        tracker.log_text(traceback.format_exc(), "error/traceback.txt")
    except Exception:  # the store itself may be what failed; never hide the original error
        log.exception("could not log the traceback")
