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


@pytest.mark.parametrize("group", ["dataset", "model", "trainer", "logger", "experiment", "debug", "hparams_search"])
def test_every_group_option_composes(make_cfg, group):
    names = options(group)
    assert names, f"conf/{group}/ is empty"
    for name in names:
        cfg = make_cfg([f"{group}={name}"])
        OmegaConf.to_container(cfg, resolve=True)


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
