"""Config of `hydra/sweeper=optuna`: the official plugin's keys, registered in Hydra's ConfigStore."""
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore

# What the sweeper hands its jobs through the environment (read by mediaml.pruning): the study's storage,
# name and pruner config for the whole sweep (joblib / submitit workers inherit them), and each job's own
# trial id (hydra.job.env_set, applied in the job's process).
STORAGE_ENV = "MEDIAML_OPTUNA_STORAGE"
STUDY_ENV = "MEDIAML_OPTUNA_STUDY"
PRUNER_ENV = "MEDIAML_OPTUNA_PRUNER"  # hydra.sweeper.pruner as JSON (null: never prune)
TRIAL_ENV = "MEDIAML_OPTUNA_TRIAL_ID"
TRIAL_NUMBER_ENV = "MEDIAML_OPTUNA_TRIAL_NUMBER"  # the job's number in the sweep (its folder, `sweep.job_num`)
# A trial's user attr: asked beyond n_trials by a racing worker and failed unrun (no job, no run; not listed).
SURPLUS_ATTR = "mediaml.surplus"


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.mediaml_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    # Hand `sampler` over as a config, not an object: the sweeper builds it once it knows how many
    # trials the study already has (see _core.make_sampler).
    _recursive_: bool = False

    # Search space: dotted key -> Hydra sweep syntax (choice/range/interval/tag(log, ...)/int(...)),
    # or a plain value fixed for every trial. Sweep overrides on the command line join it.
    params: Optional[Dict[str, Any]] = None
    # Total COMPLETE (+ PRUNED) trials wanted in the study, by all its workers together; a rerun only runs
    # the missing ones.
    n_trials: int = 20
    direction: str = "minimize"  # minimize | maximize
    # Where the study lives (see storage.py): sqlite:///path/optuna.db, postgresql+psycopg2://…,
    # journal:///shared/fs/study.log; null keeps the study in memory. The same command started with the same
    # storage and study_name in N shells or on N machines makes N workers of one study.
    storage: Optional[str] = None
    study_name: Optional[str] = None
    # Trials asked and launched together (run in parallel by a parallel launcher such as joblib).
    n_jobs: int = 1
    sampler: Dict[str, Any] = field(
        default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": None}
    )
    # A `_target_` config of an Optuna pruner (optuna.pruners.MedianPruner, HyperbandPruner,
    # SuccessiveHalvingPruner, ...); empty or null: no pruning. Jobs report through mediaml.pruning.
    #   ++hydra.sweeper.pruner._target_=optuna.pruners.MedianPruner
    pruner: Optional[Dict[str, Any]] = field(default_factory=dict)
    # Workers of one study: each marks its running trials alive every `heartbeat_interval` seconds; a RUNNING
    # trial not marked for `grace_period` seconds (or whose worker process on this host is gone) was lost
    # with its worker: another worker fails it and queues its params to run first.
    heartbeat_interval: float = 10.0
    grace_period: float = 60.0


ConfigStore.instance().store(
    group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="mediaml_optuna_sweeper"
)
