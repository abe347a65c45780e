"""DDP: Lightning re-runs train.py for rank 1; the job is still one MLflow run (mediaml.tracking.run)."""
import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from conftest import PROJECT_ROOT
from mediaml.tracking.run import distributed_rank, tracked_run


def test_nonzero_rank_opens_no_mlflow_run(make_cfg, store, tmp_path, monkeypatch):
    cfg = make_cfg([])
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed_rank() == 1
    with tracked_run(cfg, tmp_path / "out") as tracker:
        assert not tracker.active
        tracker.log_metrics({"x": 1.0})  # kept locally, not sent anywhere
    monkeypatch.setenv("LOCAL_RANK", "0")
    with tracked_run(cfg, tmp_path / "out") as tracker:
        assert tracker.active
    client = MlflowClient(store)
    assert len(client.search_runs([client.get_experiment_by_name("genre").experiment_id])) == 1


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_is_one_mlflow_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri)
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        env.pop(var, None)
    cmd = [sys.executable, "train.py", "task=video", "dataset=synthetic_clips", "trainer=ddp", "trainer.devices=2",
           "trainer.accelerator=cpu", "debug=fdr", "model.width=0.0625", "trainer.enable_progress_bar=false",
           f"paths.cache_dir={tmp_path / 'cache'}", f"paths.output_root={tmp_path / 'out'}"]
    r = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    log = r.stdout + r.stderr
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in log
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("video").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert "data/n_train" in runs[0].data.metrics
