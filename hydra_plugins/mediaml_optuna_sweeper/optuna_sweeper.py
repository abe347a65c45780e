"""The Sweeper plugin class Hydra finds; the work lives in `_core` (imported only when sweeping)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


class OptunaSweeper(Sweeper):
    def __init__(self, n_trials: int, direction: str, storage: Optional[str], study_name: Optional[str],
                 n_jobs: int, sampler: DictConfig, params: Optional[DictConfig] = None,
                 pruner: Optional[DictConfig] = None, heartbeat_interval: float = 10.0,
                 grace_period: float = 60.0) -> None:
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"hydra.sweeper.direction must be minimize or maximize, not {direction!r}")
        if n_jobs < 1:
            raise ValueError(f"hydra.sweeper.n_jobs must be >= 1, not {n_jobs}")
        if not 0 < heartbeat_interval < grace_period:
            raise ValueError(f"hydra.sweeper: need 0 < heartbeat_interval < grace_period, not {heartbeat_interval} "
                             f"and {grace_period}")
        self.n_trials = n_trials
        self.direction = direction
        self.storage = storage
        self.study_name = study_name
        self.n_jobs = n_jobs
        self.sampler = OmegaConf.to_container(sampler, resolve=True)
        self.params = OmegaConf.to_container(params, resolve=True) if params else {}
        self.pruner = OmegaConf.to_container(pruner, resolve=True) if pruner else None
        self.heartbeat_interval = float(heartbeat_interval)
        self.grace_period = float(grace_period)
        self.hydra_context: Optional[HydraContext] = None
        self.config: Optional[DictConfig] = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    @property
    def sweep_dir(self) -> Path:
        assert self.config is not None
        return Path(self.config.hydra.sweep.dir)

    def sweep(self, arguments: List[str]) -> Any:
        from ._core import run_sweep

        return run_sweep(self, arguments)
