"""The config tree: every task and every group option composes; bad choices fail with Hydra's list."""
import pytest
from hydra.errors import HydraException
from omegaconf import OmegaConf

from conftest import CONF_DIR
from mediaml.run import run

TASKS = ["genre", "video", "listening", "personas", "catalog"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("task", TASKS)
def test_every_task_composes_with_its_default_dataset_and_model(make_cfg, task):
    cfg = make_cfg([f"task={task}"])
    assert cfg.task.name == task
    assert cfg.task.objective.direction in ("maximize", "minimize")
    assert cfg.task.objective.metric
    assert task in cfg.dataset.tasks
    assert cfg.model._target_
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves


# Groups composed by every task, and those only tasks that train with Lightning compose (task=video).
@pytest.mark.parametrize("group,task", [("dataset", "genre"), ("model", "genre"), ("logger", "genre"),
                                        ("experiment", "genre"), ("debug", "genre"), ("hparams_search", "genre"),
                                        ("trainer", "video"), ("callbacks", "video")])
def test_every_group_option_composes(make_cfg, group, task):
    names = options(group)
    assert names, f"conf/{group}/ is empty"
    for name in names:
        cfg = make_cfg([f"task={task}", f"{group}={name}"])
        OmegaConf.to_container(cfg, resolve=True)


def test_only_lightning_tasks_compose_trainer_and_callbacks(make_cfg):
    for task in ("genre", "listening", "personas", "catalog"):
        cfg = make_cfg([f"task={task}"])
        assert "trainer" not in cfg and "callbacks" not in cfg, task
    cfg = make_cfg(["task=video"])
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer" and cfg.hydra.runtime.choices.trainer == "auto"
    assert all("_target_" in c for c in cfg.callbacks.values())


def test_trainer_children_change_only_what_differs(make_cfg):
    base = OmegaConf.to_container(make_cfg(["task=video", "trainer=auto"]).trainer)
    for child, diff in {"cpu": {"accelerator": "cpu", "precision": "32-true"},
                        "gpu": {"accelerator": "gpu", "precision": "16-mixed"},
                        "ddp": {"devices": 2, "strategy": "ddp", "sync_batchnorm": False}}.items():
        cfg = OmegaConf.to_container(make_cfg(["task=video", f"trainer={child}"]).trainer)
        assert {k: v for k, v in cfg.items() if base.get(k, "<absent>") != v} == diff, child
        text = (CONF_DIR / "trainer" / f"{child}.yaml").read_text()
        assert "max_epochs" not in text and "_target_" not in text  # stated once, in default.yaml


def test_every_model_names_its_tasks_and_composes_with_them(make_cfg):
    from mediaml.tasks.base import models_of_task

    by_task = {task: models_of_task(task) for task in TASKS}
    assert sorted(m for ms in by_task.values() for m in ms) == options("model")  # each model in exactly one task
    for task, models in by_task.items():
        assert models, task
        for model in models:
            cfg = make_cfg([f"task={task}", f"model={model}"])
            assert task in cfg.model.tasks


def test_model_of_another_task_is_refused_before_any_run(make_cfg, store):
    from mlflow.tracking import MlflowClient

    from mediaml.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        run(make_cfg(["task=genre", "model=deepwalk"]))
    msg = str(err.value)
    assert "model=deepwalk is for task(s) ['listening']" in msg
    assert "random_forest" in msg and "svc" in msg and "c3d" not in msg  # the genre models, only them
    assert MlflowClient(store).search_experiments(filter_string="name = 'genre'") == []  # no run was opened


def test_hparams_searches_share_one_sweeper_base(make_cfg):
    for name in options("hparams_search"):
        text = (CONF_DIR / "hparams_search" / f"{name}.yaml").read_text()
        assert "base/optuna" in text and "storage:" not in text and "mode: MULTIRUN" not in text, name
        task = name.split("_")[0]
        cfg = make_cfg([f"task={task}", f"hparams_search={name}"])
        assert cfg.hydra.sweeper.direction == cfg.task.objective.direction
        assert cfg.hydra.sweeper.storage.endswith(f"/{cfg.hydra.sweeper.study_name}/optuna.db")
        assert cfg.hydra.sweeper.params


def test_group_choice_switches_within_a_task(make_cfg):
    cfg = make_cfg(["task=genre", "dataset=spotify_cs98x", "model=svc"])
    assert cfg.dataset.name == "spotify_cs98x"
    assert cfg.model._target_ == "sklearn.svm.SVC"


def test_unknown_choice_lists_the_valid_options(make_cfg):
    with pytest.raises(HydraException) as err:
        make_cfg(["model=no_such_model"])
    msg = str(err.value)
    assert "no_such_model" in msg and "random_forest" in msg and "Available options" in msg


def test_data_dir_comes_from_the_environment(make_cfg, monkeypatch, tmp_path):
    monkeypatch.setenv("MEDIAML_DATA_DIR", str(tmp_path / "somewhere"))
    assert make_cfg().paths.data_dir == str(tmp_path / "somewhere")


def test_dataset_of_another_task_is_refused(make_cfg, store):
    with pytest.raises(ValueError, match="dataset=netflix is for task"):
        run(make_cfg(["task=genre", "dataset=netflix"]))


def test_the_slurm_launcher_config_renders_into_sbatch_lines(tmp_path, monkeypatch):
    """conf/hydra/launcher/slurm.yaml: every documented key is one submitit knows, and lands in the job array's
    sbatch script (rendered by submitit from the keys as Hydra's SlurmLauncher hands them over, without a SLURM
    to submit to)."""
    import submitit
    from hydra import compose, initialize_config_dir
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    import mediaml  # noqa: F401  (the ${mediaml.*} resolvers)

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True, overrides=[
            "hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=2",
            "hydra.launcher.tasks_per_node=2", "hydra.launcher.array_parallelism=4", "hydra.launcher.timeout_min=90",
            "hydra.launcher.setup=[source .venv/bin/activate]", "hydra.launcher.name=sweep"])
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    assert params.pop("_target_").endswith("SlurmLauncher")
    # submitit refuses to build a SLURM executor where `srun` is missing; rendering the script needs none.
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))
    executor = submitit.AutoExecutor(cluster="slurm", folder=tmp_path)
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()
                                  if k not in ("submitit_folder", "max_num_timeout")})
    executor._executor.parameters["map_count"] = 8  # a batch of eight trials
    text = executor._executor._make_submission_file_text("python -u -m submitit.core._submit", "uid")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=2", "#SBATCH --ntasks-per-node=2",
                 "#SBATCH --time=90", "#SBATCH --array=0-7%4", "#SBATCH --cpus-per-task=4", "#SBATCH --mem=16GB",
                 "source .venv/bin/activate"):
        assert line in text, (line, text)
