"""Shared fixtures: compose the real config tree, point tracking and outputs at tmp folders."""
from __future__ import annotations

import os
from pathlib import Path

# Thread caps first, before numpy / torch load their pools: the suite and the train.py processes it starts
# use the one setting jobs use (mediaml/threads.py). Default here 1, not the machine's cores: the suite shares
# the machine with its own subprocesses and whatever else runs, and next to one busy process a 2-thread
# HistGB run took 2.3x as long as a 1-thread one (benchmarks/bench_threads.py; 1.15x faster only when idle).
os.environ.setdefault("MEDIAML_N_THREADS", "1")

from mediaml.threads import cap_threads, default_threads  # noqa: E402

cap_threads(default_threads())

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import mediaml  # noqa: F401  (registers the ${mediaml.*} resolvers)
from mediaml.config import PROJECT_ROOT

CONF_DIR = PROJECT_ROOT / "conf"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


def data_dir() -> Path | None:
    """The real data folder (MEDIAML_DATA_DIR), or None when it is not there."""
    d = os.environ.get("MEDIAML_DATA_DIR")
    return Path(d).resolve() if d and Path(d).is_dir() else None


NOT_SET = "MEDIAML_DATA_DIR is not set"


def require_real(relative: str) -> Path:
    """The real data folder holding `relative`. MEDIAML_DATA_DIR unset: the test is skipped (and counted); set but
    not holding `relative`: the test fails, naming what it looked for -- a wrong path must not look green."""
    raw = os.environ.get("MEDIAML_DATA_DIR")
    if not raw:
        pytest.skip(f"real data {relative}: {NOT_SET}")
    d = Path(raw).resolve()
    if not (d / relative).exists():
        pytest.fail(f"real data {relative} is not under MEDIAML_DATA_DIR={raw} (resolved {d}, from {Path.cwd()}): "
                    "point MEDIAML_DATA_DIR at the folder that holds the shared data sets (its README lists them), "
                    "or unset it to skip the real-data tests", pytrace=False)
    return d


def pytest_terminal_summary(terminalreporter):
    # From the reports, so the count holds under pytest-xdist too (the skips happen in the workers).
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if NOT_SET in str(getattr(r, "longrepr", ""))]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} real-data test(s) skipped: MEDIAML_DATA_DIR is not set (set it to the folder with "
            f"the shared data sets, e.g. MEDIAML_DATA_DIR=/path/to/shared/data pytest)", yellow=True)


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (the default, pyproject addopts): a worker per MEDIAML_N_THREADS threads of this machine's cores,
    at most 4 (each worker imports mlflow, sklearn and often torch: ~1 GB)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cores // max(1, int(os.environ.get("MEDIAML_N_THREADS", "1")))))


def user_dataset(folder: Path, name: str, yaml_text: str) -> str:
    """A dataset YAML in a user's own config folder (`folder/dataset/<name>.yaml`), as a researcher adds new data by
    config alone; returns the override that puts the folder on Hydra's search path."""
    (folder / "dataset").mkdir(parents=True, exist_ok=True)
    (folder / "dataset" / f"{name}.yaml").write_text(yaml_text)
    return f"hydra.searchpath=[file://{folder}]"


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    """A fresh MLflow sqlite store for this test (MLFLOW_TRACKING_URI is what the project honours)."""
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def make_cfg(tmp_path):
    """compose(overrides) -> the job config, with Hydra's runtime info set as in a real `train.py` run."""

    def _compose(overrides: list[str] = ()) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="train", overrides=[f"paths.output_root={tmp_path / 'outputs'}", *overrides],
                          return_hydra_config=True)
        out = tmp_path / "outputs" / "run"
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(out)
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


# tests/ holds fake tasks selected by `task._target_=fake_tasks.X`.
import sys  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
