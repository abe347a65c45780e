"""task=personas: the personas_optuna search (composition and a two-trial sweep)."""
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]


# -- personas_optuna ---------------------------------------------------------------------------------
def test_personas_optuna_composes(make_cfg):
    cfg = make_cfg(["task=personas", "dataset=cmu_personas", "hparams_search=personas_optuna"])
    assert cfg.task.objective.metric == "val/vi_gain" and cfg.hydra.sweeper.direction == "maximize"
    assert cfg.model._target_.endswith("PersonaLDA") and cfg.task.revenue is False
    assert cfg.hydra.sweeper.study_name == "personas_optuna_cmu_personas"
    assert {"model.n_topics", "model.n_personas", "model.min_freq", "model.max_freq",
            "model.vector_size", "model.window"} <= set(cfg.hydra.sweeper.params)


@pytest.mark.slow  # long: CI runs it with -m slow
def test_personas_optuna_two_trials_on_synthetic(tmp_path):
    import optuna

    # max_freq fixed on the command line (it replaces the config's dimension): the synthetic words
    # are uniformly frequent, so a low cap would empty the vocabulary.
    args = ["-m", "task=personas", "hparams_search=personas_optuna", "hydra.sweeper.n_trials=2", "logger=none",
            "model.max_freq=0.9", "model.n_topics=int(interval(8,16))", "model.n_personas=int(interval(4,8))",
            f"paths.output_root={tmp_path}"]
    proc = subprocess.run([sys.executable, "train.py", *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    db = tmp_path / "personas/sweeps/personas_optuna_synthetic_personas/optuna.db"
    study = optuna.load_study(study_name="personas_optuna_synthetic_personas", storage=f"sqlite:///{db}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2 and study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert all(t.value > 1.0 for t in done)  # vi_gain in nats: planted personas, far above random
    assert 8 <= done[0].params["model.n_topics"] <= 16
