"""A sweep in the real MLflow UI: `mlflow server` on 127.0.0.1 (a free port, stopped by its PID), a 4-trial
genre sweep tracked against it, and headless Chromium on the experiment page and the compare view."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.chromium import Chromium, find_chromium
from support.mlflow_server import start_server, stop_server

REPO = Path(__file__).resolve().parents[1]
STUDY = "genre_optuna_synthetic_genre"


@pytest.fixture
def server(tmp_path):
    url, proc = start_server(tmp_path)
    yield url
    stop_server(proc)


@pytest.mark.slow
def test_sweep_is_a_tree_in_the_ui_and_compares_its_swept_params(server, tmp_path):
    if not find_chromium():
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does)")
    from mlflow.tracking import MlflowClient

    env = dict(os.environ, MLFLOW_TRACKING_URI=server)
    cmd = [sys.executable, "train.py", "-m", "hparams_search=genre_optuna", "hydra.sweeper.n_trials=4",
           "logger.log_model=false", "task.cv_folds=3", f"paths.output_root={tmp_path / 'out'}"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(server)
    exp = client.get_experiment_by_name("genre").experiment_id
    runs = client.search_runs([exp])
    (parent,) = [r for r in runs if r.data.tags.get("mediaml.role") == "sweep"]
    kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(kids) == 4
    shots = tmp_path / "screenshots"
    shots.mkdir()
    swept = {"model.n_estimators", "model.min_samples_split", "model.max_depth", "model.max_features",
             "model.class_weight"}
    with Chromium(width=1400, height=900, log_path=tmp_path / "chromium.log") as b:
        # the experiment page: one row for the sweep; expanded, its four trials
        b.open(f"{server}/#/experiments/{exp}/runs")
        b.wait_for(f"(document.body && document.body.innerText.includes('sweep {STUDY}')) ? 1 : null", timeout=60)
        names = "Array.from(document.querySelectorAll('a[href*=\"/runs/\"] span')).map(e => e.innerText)"
        assert b.eval(names) == [f"sweep {STUDY}"]  # children folded under their parent
        b.eval(f"(() => {{ const a = Array.from(document.querySelectorAll('a')).find(e => e.innerText === 'sweep {STUDY}');"
               " a.closest('.ag-cell-value').querySelector('button').click(); return 1; })()")
        b.wait_for("document.body.innerText.includes('#00 random_forest') ? 1 : null", timeout=30)
        assert sorted(b.eval(names)) == sorted([f"sweep {STUDY}"] + [f"#0{i} random_forest" for i in range(4)])
        b.screenshot(shots / "experiment_tree.png", full_page=False)

        # the parent's page shows the objective's best value
        b.open(f"{server}/#/experiments/{exp}/runs/{parent.info.run_id}")
        b.wait_for("(document.body && document.body.innerText.includes('cv/acc_mean')) ? 1 : null", timeout=60)
        best = parent.data.metrics["cv/acc_mean"]
        text = b.eval("document.body.innerText")
        assert f"{best:.4f}"[:5] in text, text[:2000]
        b.screenshot(shots / "parent_run.png", full_page=False)

        # the compare view of the four trials: with "Show diff only", the params are the swept ones
        ids = json.dumps([r.info.run_id for r in kids])
        b.open(f"{server}/#/compare-runs?runs={ids}&experiments=[\"{exp}\"]")
        b.wait_for("document.querySelector('button[aria-label=\"Parameters - Show diff only\"]') ? 1 : null", timeout=60)
        # the parallel-coordinates plot leads with the objective, not with a data/* count
        b.wait_for("document.body.innerText.includes('Metrics:') ? 1 : null", timeout=30)
        text = b.eval("document.body.innerText")
        assert text.split("Metrics:", 1)[1].split()[0] == "cv/acc_mean", text.split("Metrics:", 1)[1][:200]
        b.eval("document.querySelector('button[aria-label=\"Parameters - Show diff only\"]').click()")
        b.pump(1)
        rows = b.eval("Array.from(document.querySelectorAll('table.mlflow-compare-run-table')[1].rows)"
                      ".map(r => r.cells[0].innerText.trim())")
        assert rows and set(rows) <= swept, rows
        differing = {k for k in swept if len({r.data.params.get(k) for r in kids}) > 1}
        assert set(rows) == differing
        b.screenshot(shots / "compare.png", full_page=False)
