"""`python train.py --help`: mediaml's own page, written from conf/, printed before Hydra is imported."""
import subprocess
import sys
from pathlib import Path

from conftest import PROJECT_ROOT

CONF = Path(PROJECT_ROOT) / "conf"


def _train(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, capture_output=True, text=True, env=env)


def test_help_lists_every_task_dataset_model_sweep_and_experiment_without_importing_hydra(tmp_path):
    import os

    env = {**os.environ, "MEDIAML_DATA_DIR": str(tmp_path)}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = _train("-X", "importtime", "train.py", "--help", env=env)
    assert proc.returncode == 0, proc.stderr
    page = proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.split(".")[0] in ("hydra", "mlflow", "sklearn", "numpy", "pandas")}
    for group in ("task", "dataset", "model", "hparams_search", "experiment"):
        for option in sorted(p.stem for p in (CONF / group).glob("*.yaml")):
            assert option in page, (group, option)
    genre = page[page.index("  genre "):page.index("  listening ")]
    assert "synthetic_genre*" in genre and "random_forest*" in genre and "spotify_cs98x" in genre
    assert "c3d" not in genre  # a model of another task is not offered for this one
    assert f"now: {tmp_path}" in page  # where data is read, as set
    assert "mlflow ui --backend-store-uri sqlite:///" in page and "hparams_search=genre_optuna" in page


def test_help_with_overrides_is_the_same_page_then_their_config():
    proc = _train("train.py", "task=listening", "--help")
    assert proc.returncode == 0, proc.stderr
    head, config = proc.stdout.split("== The config these overrides compose ==")
    assert head.startswith("mediaml: one train.py") and "Tasks (task=NAME)" in head
    assert "_target_: mediaml.tasks.listening.task.ListeningTask" in config
