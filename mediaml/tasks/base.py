"""The interface every task implements. `mediaml.run` builds the class named by `task._target_`."""
from __future__ import annotations

import abc

from omegaconf import DictConfig

from mediaml.tracking.tracker import Tracker


class Task(abc.ABC):
    """One study. Subclasses read what they need from `cfg` (task, dataset, model, trainer, paths)."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        allowed = cfg.dataset.get("tasks") if cfg.get("dataset") is not None else None
        if allowed is not None and cfg.task.name not in allowed:
            raise ValueError(f"dataset={cfg.dataset.name} is for task(s) {list(allowed)}, "
                             f"not task={cfg.task.name}")

    def check_inputs(self) -> None:
        """Raise a clear error (missing file, ...) before any work is done. Default: nothing to check."""

    @abc.abstractmethod
    def run(self, tracker: Tracker) -> dict[str, float]:
        """Load data, fit, evaluate, log through `tracker`; return the metrics (objective included)."""


class DatasetTask(Task):
    """A task whose input is one dataset object built from `cfg.dataset` (its `_target_`), with `check()`."""

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        from hydra.utils import instantiate

        self.dataset = instantiate(cfg.dataset, _convert_="all")

    def check_inputs(self) -> None:
        self.dataset.check()
