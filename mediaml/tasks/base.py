"""The interface every task implements. `mediaml.run` builds the class named by `task._target_`."""
from __future__ import annotations

import abc
import contextlib
import functools
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from mediaml.config import PROJECT_ROOT
from mediaml.errors import ConfigError, DataError
from mediaml.tracking.run import hydra_info
from mediaml.tracking.tracker import Tracker

# Keys of a model config that describe it rather than the estimator: not passed to its _target_.
MODEL_META_KEYS = ("tasks",)


def models_of_task(task: str, conf_dir: Path = PROJECT_ROOT / "conf") -> list[str]:
    """The model= choices whose config lists `task` in its `tasks` (children inherit it from their parent)."""
    import yaml

    raw: dict[str, dict] = {}
    for p in sorted((conf_dir / "model").glob("*.yaml")):
        raw[p.stem] = yaml.safe_load(p.read_text()) or {}

    def tasks_of(name: str, seen: tuple = ()) -> list:
        node = raw.get(name, {})
        if "tasks" in node:
            return list(node["tasks"] or [])
        for parent in node.get("defaults") or []:
            if isinstance(parent, str) and parent != "_self_" and parent in raw and parent not in seen:
                found = tasks_of(parent, seen + (name,))
                if found:
                    return found
        return []

    return [name for name in raw if task in tasks_of(name)]


# -- values typed on the command line ------------------------------------------------------------------
CHECKED_GROUPS = ("task", "dataset", "model")  # our configs; trainer keys take Lightning's mixed types ("auto", 16)


def check_override_types(cfg: DictConfig, overrides: list[str], choices: dict[str, str]) -> None:
    """A value given on the command line for a task, dataset or model key that cannot be what the chosen
    config file has there (a number, a true/false) stops the job before its run opens, as the user's error:
    `task.cv_folds=abc: expected an integer (conf/task/genre.yaml has cv_folds: 5)` instead of a traceback from
    deep inside the task or scikit-learn, after a run opened. Numbers stay numbers (an int key takes a float:
    scikit-learn reads min_samples_split=0.1 as a fraction), null is left to the task, and a key the file does
    not set is not checked."""
    for override in overrides:
        key, eq, _ = override.partition("=")
        key = key.lstrip("+")
        group = key.split(".", 1)[0]
        if not eq or key.startswith("~") or "." not in key or group not in CHECKED_GROUPS or not choices.get(group):
            continue
        ref = _reference(group, str(choices[group]))
        if ref is None:
            continue
        file, values = ref
        default = values
        for part in key.split("."):
            default = default.get(part) if isinstance(default, dict) else None
        value = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
        expected = _type_mismatch(default, value)
        if expected:
            raise ConfigError(f"{key}={value!r}: expected {expected} ({file} has "
                              f"{key.rsplit('.', 1)[-1]}: {OmegaConf.to_yaml({'v': default}).strip()[3:]})")


def _type_mismatch(default: Any, value: Any) -> str | None:
    """What `value` should have been, or None when it can stand where the file has `default`."""
    if value is None or default is None or isinstance(default, str) and "${" in default:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, (int, float)):
        kind = "an integer" if isinstance(default, int) else "a number"
        if isinstance(value, (bool, list, dict, DictConfig, ListConfig)):
            return kind
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                return kind
    return None


@functools.lru_cache(maxsize=None)
def _reference(group: str, choice: str, conf_dir: Path = PROJECT_ROOT / "conf") -> tuple[str, dict] | None:
    """(`conf/<group>/<choice>.yaml`, its values as the job's config nests them), unresolved; None when the
    option is not one of ours (a user's config folder on hydra.searchpath). Read once per process."""
    path = conf_dir / group / f"{choice}.yaml"
    if not path.is_file():
        return None
    text = path.read_text()
    data = OmegaConf.to_container(OmegaConf.create(text), resolve=False) or {}
    data.pop("defaults", None)
    return f"conf/{group}/{choice}.yaml", data if "@package _global_" in text else {group: data}


@contextlib.contextmanager
def user_errors_unwrapped():
    """Hydra's instantiate wraps what a class raises in an InstantiationException: a config value the class
    refuses (its ConfigError / DataError) is the user's error, and is raised as such (one message, exit 2)."""
    from hydra.errors import InstantiationException

    try:
        yield
    except InstantiationException as e:
        if isinstance(e.__cause__, (ConfigError, DataError)):
            raise e.__cause__ from None
        raise


class Task(abc.ABC):
    """One study. Subclasses read what they need from `cfg` (task, dataset, model, trainer, paths)."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        info = hydra_info()
        check_override_types(cfg, info.get("overrides", []), info.get("choices", {}))  # the user's typing
        allowed = cfg.dataset.get("tasks") if cfg.get("dataset") is not None else None
        if allowed is not None and cfg.task.name not in allowed:
            raise ConfigError(f"dataset={cfg.dataset.name} is for task(s) {list(allowed)}, "
                              f"not task={cfg.task.name}")
        model_tasks = cfg.model.get("tasks") if cfg.get("model") is not None else None
        if model_tasks is not None and cfg.task.name not in model_tasks:
            choice = info.get("choices", {}).get("model") or cfg.model.get("_target_")
            raise ConfigError(f"model={choice} is for task(s) {list(model_tasks)}, not task={cfg.task.name}; "
                              f"the models of task={cfg.task.name}: {', '.join(models_of_task(cfg.task.name))}")

    def objective_metric(self) -> str:
        """The metric this job returns to a sweeper: `task.objective.metric` (a task may pick another for a mode
        that does not compute it, e.g. video's evaluate-only mode has no validation)."""
        return str(self.cfg.task.objective.metric)

    def instantiate_model(self, **kwargs: Any) -> Any:
        """The estimator of `cfg.model` (its `_target_` with the config's values; keyword args override them)."""
        from hydra.utils import instantiate

        spec = {k: v for k, v in OmegaConf.to_container(self.cfg.model, resolve=True).items()
                if k not in MODEL_META_KEYS}
        with user_errors_unwrapped():
            return instantiate(spec, _convert_="all", **kwargs)

    def check_inputs(self) -> None:
        """Raise a clear error (missing file, ...) before any work is done. Default: nothing to check."""

    def log_input(self, tracker: Tracker) -> None:
        """Record which data the run reads (MLflow's Datasets column). Default: nothing."""

    def resume_run_id(self) -> str | None:
        """The MLflow run this job continues (the run of a checkpoint it resumes), or None for a new run.
        Called after check_inputs, before the run opens."""
        return None

    @abc.abstractmethod
    def run(self, tracker: Tracker) -> dict[str, float]:
        """Load data, fit, evaluate, log through `tracker`; return the metrics (objective included)."""


class DatasetTask(Task):
    """A task whose input is one dataset object built from `cfg.dataset` (its `_target_`), with `check()`."""

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        from hydra.utils import instantiate

        with user_errors_unwrapped():
            self.dataset = instantiate(cfg.dataset, _convert_="all")

    def check_inputs(self) -> None:
        self.dataset.check()

    def log_input(self, tracker: Tracker) -> None:
        """The dataset config's name, the files it names under `data_dir` (or its generator for a synthetic
        set) and a digest of the experiment-relevant config and those files' sizes."""
        import hashlib
        import json

        spec = OmegaConf.to_container(self.cfg.dataset, resolve=True)
        data_dir = Path(str(spec.get("data_dir"))) if spec.get("data_dir") else None
        files = []
        if data_dir is not None:
            for k, v in spec.items():
                # the files it names relative to data_dir (absolute values are caches and outputs, not input)
                if isinstance(v, str) and k != "data_dir" and v and not Path(v).is_absolute() and (data_dir / v).exists():
                    files.append(data_dir / v)
        h = hashlib.sha256(json.dumps({k: v for k, v in spec.items() if k != "data_dir"}, sort_keys=True,
                                      default=str).encode())
        for f in files:
            sizes = [f.stat().st_size] if f.is_file() else sorted(q.stat().st_size for q in f.rglob("*") if q.is_file())
            h.update(f"{f.relative_to(data_dir)}:{sum(sizes)}:{len(sizes)}".encode())
        tracker.log_input(name=str(spec.get("name", "dataset")), digest=h.hexdigest()[:16],
                          source=os.path.commonpath([str(f) for f in files]) if files else None,
                          generator=None if files else str(spec.get("_target_")))
