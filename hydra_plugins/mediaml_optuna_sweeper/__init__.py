"""Optuna sweeper for Hydra (`hydra/sweeper=optuna`) on Optuna 4, with resumable studies.

The official hydra-optuna-sweeper pins optuna<3, which breaks beside the SQLAlchemy 2 that MLflow
needs; this plugin keeps its config keys (params, n_trials, direction, storage, study_name,
sampler, n_jobs) and adds resume: rerunning the same command continues the same study.

Hydra imports every public module of this package at each start-up, so only `config.py` and the
thin `optuna_sweeper.py` are public; Optuna itself is imported when a sweep starts.
"""
