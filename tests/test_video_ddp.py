"""DDP for task=video (mediaml/tasks/video/distributed.py): a job is one MLflow run and one job folder whichever
way its ranks start — by the job itself (trainer=ddp, also inside a multirun: never a re-run of the sweep) or by
torchrun on two "nodes" — and only rank 0 talks to MLflow and to the Optuna trial."""
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mlflow.tracking import MlflowClient

from conftest import PROJECT_ROOT
from mediaml.tracking.run import distributed_rank, tracked_run

TINY = ["task=video", "dataset=synthetic_clips", "trainer.accelerator=cpu", "model.width=0.0625",
        "trainer.enable_progress_bar=false"]
RANK_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "GROUP_RANK", "MASTER_ADDR",
             "MASTER_PORT", "TORCHELASTIC_RUN_ID", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_JOB_ID")


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    for var in RANK_VARS:
        env.pop(var, None)
    return env


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


def trial_env(monkeypatch, tmp_path):
    """A study with one RUNNING trial, and the environment our sweeper gives that trial's job."""
    import optuna

    from hydra_plugins.mediaml_optuna_sweeper.config import STORAGE_ENV, STUDY_ENV, TRIAL_ENV

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    trial = study.ask()
    monkeypatch.setenv(STORAGE_ENV, storage)
    monkeypatch.setenv(STUDY_ENV, "s")
    monkeypatch.setenv(TRIAL_ENV, str(trial._trial_id))
    for var in RANK_VARS:
        monkeypatch.delenv(var, raising=False)
    return study, trial


def test_only_rank_zero_tells_the_trial(monkeypatch, tmp_path):
    from mediaml import pruning

    study, trial = trial_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RANK", "1")
    assert pruning.pruner_enabled() and pruning.current_trial() is None
    pruning.report(0.1, 0)
    pruning.tell_result(0.25)  # rank 1: nothing reaches the study
    assert study.trials[0].state.name == "RUNNING" and not study.trials[0].intermediate_values
    monkeypatch.setenv("RANK", "0")
    assert pruning.current_trial().number == trial.number
    pruning.tell_result(0.75)
    assert study.trials[0].state.name == "COMPLETE" and study.trials[0].value == 0.75


@pytest.mark.parametrize("rank0_prunes", [True, False])
def test_every_rank_follows_rank_zeros_pruning_decision(monkeypatch, tmp_path, rank0_prunes):
    import optuna

    from mediaml.training import optuna_pruning

    trial_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RANK", "1")
    callback = optuna_pruning("val/acc")
    assert callback is not None  # on every rank of a trial
    said = []
    strategy = SimpleNamespace(broadcast=lambda obj, src=0: said.append((obj, src)) or rank0_prunes)
    trainer = SimpleNamespace(sanity_checking=False, callback_metrics={"val/acc": torch.tensor(0.5)},
                              is_global_zero=False, world_size=2, strategy=strategy, current_epoch=3,
                              should_stop=False)
    callback.on_validation_end(trainer, None)
    assert said == [(False, 0)]  # rank 1 never reports; it takes rank 0's word
    assert trainer.should_stop is rank0_prunes
    assert isinstance(callback.pruned, optuna.TrialPruned) if rank0_prunes else callback.pruned is None


def test_training_batches_are_the_same_for_any_number_of_ranks(tmp_path):
    from mediaml.tasks.video.cache import CachedTrainClips, EpochShuffle

    n, batch = 20, 8
    for epoch in (0, 1):
        one = EpochShuffle(range(n), seed=3)
        one.set_epoch(epoch)
        order = [i for i, e in one]
        assert sorted(order) == list(range(n)) and all(e == epoch for _, e in one)
        ranks = []
        for rank in (0, 1):
            s = EpochShuffle(range(n), seed=3, num_replicas=2, rank=rank)
            s.set_epoch(epoch)
            assert len(s) == n // 2
            ranks.append([i for i, _ in s])
        for k in range(n // batch + 1):  # global batch k of 2 ranks x batch/2 == batch k of one process
            half = batch // 2
            assert sorted(ranks[0][k * half:(k + 1) * half] + ranks[1][k * half:(k + 1) * half]) == \
                sorted(order[k * batch:(k + 1) * batch])
    other = EpochShuffle(range(n), seed=3)
    other.set_epoch(1)
    assert [i for i, _ in other] != [i for i, _ in EpochShuffle(range(n), seed=3)]

    # An item's clip window / scale / crop / flip come from (seed, epoch, index), not the process's generator.
    torch.save({"frames": torch.randint(0, 255, (3, 20, 64, 80), dtype=torch.uint8), "duration": 2.0},
               tmp_path / "v.pt")
    ds = SimpleNamespace(train_short_side=[40, 64], crop=32, hflip=0.5, mean=[0.45] * 3, std=[0.225] * 3,
                         clip_duration=1.0, cache_fps=10, num_frames=8)
    data = CachedTrainClips([(tmp_path / "v.pt", 0)] * 4, ds, seed=3)
    import random

    random.seed(1)
    a = data[(2, 1)]["video"]
    random.seed(2)
    assert torch.equal(a, data[(2, 1)]["video"])
    assert not torch.equal(a, data[(2, 0)]["video"]) and not torch.equal(a, data[(3, 1)]["video"])


def test_a_rank_runs_the_job_not_the_sweep(make_cfg, monkeypatch):
    from mediaml.tasks.video.distributed import rank_command

    cfg = make_cfg(["task=video", "seed=2"])
    monkeypatch.setattr(sys, "argv", [str(PROJECT_ROOT / "train.py"), "-m", "task=video", "seed=1,2"])
    cmd, cwd = rank_command(1)
    assert cmd[:2] == [sys.executable, str(PROJECT_ROOT / "train.py")]
    args = cmd[2:]
    assert args[:4] == ["--config-path", str(PROJECT_ROOT / "conf"), "--config-name", "train"]
    assert "-m" not in args and "seed=1,2" not in args and "task=video" in args and "seed=2" in args
    assert "hydra.mode=RUN" in args and "hydra.output_subdir=null" in args
    assert f'hydra.run.dir="{cfg.hydra.runtime.output_dir}"' in args
    assert "hydra.job.name=train_ddp_process_1" in args and Path(cwd).is_dir()


def processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and text in (proc / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
def test_ddp_inside_an_optuna_sweep_is_one_child_run_and_one_folder_per_trial(tmp_path):
    """Two trials with trainer=ddp trainer.devices=2: each trial's rank 1 is started as that job (not a second
    sweep), the study gets exactly 2 COMPLETE trials with rank 0's objective, the sweep one parent with exactly 2
    FINISHED children (no third run), and the sweep folder exactly 2 job folders, with rank 1's log in each."""
    import optuna

    sweep_dir, storage = tmp_path / "sweep", f"sqlite:///{tmp_path / 'optuna.db'}"
    cmd = [sys.executable, "train.py", "-m", *TINY, "hparams_search=video_optuna", "hydra.sweeper.n_trials=2",
           "hydra.sweeper.study_name=ddp", f"hydra.sweeper.storage={storage}", f"hydra.sweep.dir={sweep_dir}",
           "trainer=ddp", "trainer.devices=2", "debug=fdr",
           f"paths.cache_dir={tmp_path / 'cache'}", f"paths.output_root={tmp_path / 'out'}"]
    r = subprocess.run(cmd, cwd=PROJECT_ROOT, env=clean_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    log = r.stdout + r.stderr
    assert log.count("Launching 1 jobs") == 2  # one sweep: rank 1 never launched jobs of its own

    study = optuna.load_study(study_name="ddp", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("video").experiment_id])
    parents = [run for run in runs if run.data.tags.get("mediaml.role") == "sweep"]
    assert len(parents) == 1 and len(runs) == 3
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(run.data.tags["sweep.job_num"] for run in children) == ["0", "1"]
    assert all(run.info.status == "FINISHED" and "data/n_train" in run.data.metrics for run in children)
    for trial in study.trials:  # the objective the study holds is rank 0's, the child run's
        child = next(run for run in children if run.data.tags["sweep.job_num"] == str(trial.number))
        assert trial.value == child.data.metrics["objective"]

    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1"]
    for job in ("0", "1"):
        rank1 = (sweep_dir / job / "train_ddp_process_1.log").read_text()
        assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in rank1
        assert "no MLflow run of its own" in rank1
        assert (sweep_dir / job / ".hydra" / "config.yaml").is_file()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob(".hydra"))  # no other job folder
    assert not processes_mentioning(str(sweep_dir))  # every rank has exited


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_torchrun_nodes_train_like_one_process(tmp_path):
    """Two torchrun "nodes" (one process each, gloo) with batch 4 against one process with batch 8: one MLflow
    run and one job folder for the two nodes, and the same metrics, epoch by epoch.

    Tolerance 1e-4 (absolute; the values are ~0.1-1): both runs see the same global batches (EpochShuffle: DDP's order, asked
    of the single process by dataset.train_order=epoch) and
    average the same gradients, so what differs is float32 reduction order (two half-batch means averaged by the
    all-reduce vs one mean): measured <= 3e-6. A batch of other samples moves these losses by 1e-2 or more.
    BatchNorm is off: its statistics are per rank (4 samples, not 8), which changed val/loss 1.6 -> 5.6 in a
    3-epoch run; torch's SyncBatchNorm, the fix, runs on GPUs only. Dropout is off: its masks come from each
    process's generator."""
    # dataset.train_order=epoch: the single process takes the ranks' order rule (EpochShuffle), not torch's shuffle
    common = [*TINY, "+dataset.train_order=epoch", "model.batchnorm=false", "model.dropout=0", "task.optimizer.lr=0.01",
              "trainer.accumulate_grad_batches=1", "trainer.max_epochs=3",
              f"paths.cache_dir={tmp_path / 'cache'}", f"paths.output_root={tmp_path / 'out'}"]
    env, job_dir, port = clean_env(tmp_path), tmp_path / "out" / "two_nodes", free_port()
    nodes = []
    for node in (0, 1):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
               f"--node_rank={node}", "--master_addr=127.0.0.1", f"--master_port={port}", "train.py", *common,
               "trainer=ddp_multinode", "trainer.devices=1", "trainer.num_nodes=2", "dataset.batch_size=4",
               f"hydra.run.dir={job_dir}"] + (["hydra.output_subdir=null"] if node else [])
        nodes.append(subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, start_new_session=True))
    try:
        outs = [p.communicate(timeout=600)[0] for p in nodes]
    finally:
        for p in nodes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    assert [p.returncode for p in nodes] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    single = subprocess.run([sys.executable, "train.py", *common, "trainer.devices=1", "dataset.batch_size=8",
                             f"hydra.run.dir={tmp_path / 'out' / 'single'}"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("video").experiment_id])
    assert len(runs) == 2 and all(run.info.status == "FINISHED" for run in runs)
    by_dir = {Path(run.data.tags["hydra.output_dir"]).name: run for run in runs}
    ddp, one = by_dir["two_nodes"], by_dir["single"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["single", "two_nodes"]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in (job_dir / "train_rank1.log").read_text()
    assert ddp.data.metrics["data/n_train"] == one.data.metrics["data/n_train"] == 32

    # Losses are continuous in the weights: 1e-4. Accuracy and AUROC are not: this tiny net's scores lie within
    # ~1e-6 of each other for some clips, so the reduction order can reorder a near-tied pair or move a clip across
    # 0.5 (measured once: val/auroc 0.71875 vs 0.6875 with every loss equal to 1e-4 -- 8 of 256 clip pairs).
    # They may differ by 2 of the 32 eval clips (acc) or 1/16 of the pairs (AUROC), no more.
    tolerance = {"train/loss_epoch": 1e-4, "val/loss": 1e-4, "test/loss": 1e-4, "val/auroc": 1 / 16, "val/acc": 2 / 32,
                 "test/auroc": 1 / 16, "test/acc": 2 / 32, "val/acc_best": 2 / 32, "objective": 2 / 32}
    compared = 0
    for key in ("train/loss_epoch", "val/loss", "val/auroc", "val/acc"):
        a = [(m.step, m.value) for m in client.get_metric_history(ddp.info.run_id, key)]
        b = [(m.step, m.value) for m in client.get_metric_history(one.info.run_id, key)]
        assert [s for s, _ in a] == [s for s, _ in b] and len(a) == 3, key
        assert max(abs(x - y) for (_, x), (_, y) in zip(a, b)) <= tolerance[key], (key, a, b)
        compared += len(a)
    moved = [m.value for m in client.get_metric_history(one.info.run_id, "train/loss_epoch")]
    assert max(moved) - min(moved) > 0.05  # the weights moved: equal numbers are not a model that stood still
    for key in ("test/loss", "test/auroc", "test/acc", "val/acc_best", "objective"):
        assert abs(ddp.data.metrics[key] - one.data.metrics[key]) <= tolerance[key], key
    assert compared == 12
