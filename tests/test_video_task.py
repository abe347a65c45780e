"""task=video end to end on synthetic clips: learning, MLflow in one run, resume, predict, models."""
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from mlflow.tracking import MlflowClient

from conftest import PROJECT_ROOT, user_dataset
from mediaml.run import run
from mediaml.tasks.video.task import VideoTask
from mediaml.tracking.tracker import Tracker

FAST = ["trainer.enable_progress_bar=false", "trainer.accumulate_grad_batches=1", "trainer=cpu"]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """Synthetic clips and their cache, written once for this module."""
    return tmp_path_factory.mktemp("video_cache")


def video_cfg(make_cfg, shared_cache, *overrides):
    return make_cfg(["task=video", "dataset=synthetic_clips", f"paths.cache_dir={shared_cache}", *FAST, *overrides])


def artifacts(client, run_id, path=None):
    out = []
    for a in client.list_artifacts(run_id, path):
        out += artifacts(client, run_id, a.path) if a.is_dir else [a.path]
    return out


@pytest.mark.slow  # long: CI runs it with -m slow
def test_learns_the_planted_motion_classes(make_cfg, shared_cache, tmp_path):
    cfg = video_cfg(make_cfg, shared_cache, "logger=none", "trainer.max_epochs=10")
    m = VideoTask(cfg).run(Tracker(tmp_path / "out"))
    # Horizontal vs vertical motion of a random square: chance is 0.5; measured 1.0 from epoch 5 on.
    assert m["val/acc_best"] >= 0.9
    assert m["test/acc"] >= 0.85 and m["test/auroc"] >= 0.9
    assert m["data/skipped_clips"] == 0 and m["data/n_train"] == 32


def test_one_mlflow_run_with_metrics_checkpoints_and_confusion_matrix(make_cfg, shared_cache, store):
    value = run(video_cfg(make_cfg, shared_cache, "trainer.max_epochs=2", "dataset.corrupt=1",
                          "dataset.n_per_class={train: 6, val: 4, test: 4}"))
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("video").experiment_id])
    assert len(runs) == 1  # Lightning's MLFlowLogger wrote into the spine's run
    r = runs[0]
    assert r.info.status == "FINISHED"
    m = r.data.metrics
    assert value == pytest.approx(m["val/acc_best"])
    for k in ["train/loss_epoch", "train/acc", "val/acc", "val/f1", "val/auroc", "val/loss", "test/acc",
              "test/f1", "test/precision", "test/recall", "test/auroc", "lr-AdamW", "time/train_epoch_s"]:
        assert k in m, k
    assert m["data/skipped_clips"] == 1  # the truncated mp4
    assert len(client.get_metric_history(r.info.run_id, "val/acc")) == 2
    files = artifacts(client, r.info.run_id)
    assert "checkpoints/last.ckpt" in files and any(f.startswith("checkpoints/epoch") for f in files)
    assert {"test/confusion_matrix.png", "test/confusion_matrix.csv", "data/skipped_clips.tsv"} <= set(files)
    assert r.data.params["model._target_"] == "mediaml.tasks.video.nets.C3D"


@pytest.mark.slow  # long: CI runs it with -m slow
def test_resume_from_last_ckpt_continues_the_epoch_count(make_cfg, shared_cache, tmp_path):
    cfg = video_cfg(make_cfg, shared_cache, "logger=none", "trainer.max_epochs=2")
    first = VideoTask(cfg).run(Tracker(tmp_path / "a"))
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    assert last.is_file() and first["train/epochs"] == 2
    import torch

    assert torch.load(last, weights_only=False)["epoch"] == 1
    cfg = video_cfg(make_cfg, shared_cache, "logger=none", "trainer.max_epochs=3", f"task.ckpt_path={last}")
    second = VideoTask(cfg).run(Tracker(tmp_path / "b"))
    assert second["train/epochs"] == 3
    resumed = tmp_path / "b" / "checkpoints" / "last.ckpt"
    assert torch.load(resumed, weights_only=False)["epoch"] == 2  # one more epoch, not three from scratch
    # `last` finds the run folder's own last.ckpt (a rerun into the same folder)
    cfg = video_cfg(make_cfg, shared_cache, "logger=none", "trainer.max_epochs=4", "task.ckpt_path=last")
    assert VideoTask(cfg).run(Tracker(tmp_path / "b"))["train/epochs"] == 4


@pytest.mark.slow  # long: CI runs it with -m slow
def test_predict_a_file_and_a_folder(make_cfg, shared_cache, tmp_path):
    cfg = video_cfg(make_cfg, shared_cache, "logger=none", "trainer.max_epochs=8")
    VideoTask(cfg).run(Tracker(tmp_path / "out"))
    ckpt = next((tmp_path / "out" / "checkpoints").glob("epoch*.ckpt"))
    from hydra.utils import instantiate

    ds = instantiate(cfg.dataset, _convert_="all")
    folder = ds.root / "Test"
    one = next((folder / "vertical").glob("*.mp4"))
    cmd = [sys.executable, "-m", "mediaml.tasks.video.predict", str(ckpt)]
    r = subprocess.run(cmd + [str(one)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    path, label, prob, clips = r.stdout.strip().split("\t")
    assert path == str(one) and label == "vertical" and 0.5 < float(prob) <= 1 and clips == "2 clips"
    out_json = tmp_path / "pred.json"
    r = subprocess.run(cmd + [str(folder), "--stride", "0.5", "--json", str(out_json)], cwd=PROJECT_ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [line.split("\t") for line in r.stdout.strip().splitlines()]
    assert len(lines) == 16 and all(c == "3 clips" for *_, c in lines)  # 1-s windows every 0.5 s over 2 s
    right = sum(Path(p).parent.name == label for p, label, *_ in lines)
    assert right >= 14

    # A checkpoint written before the move names its network mediaml.models.c3d.C3D (and has no `tasks` key):
    # it still loads, through the old command name too, and predicts the same.
    import torch

    state = torch.load(ckpt, weights_only=False)
    net = state["hyper_parameters"]["net"]
    assert net["_target_"] == "mediaml.tasks.video.nets.C3D"
    state["hyper_parameters"]["net"] = {k: v for k, v in net.items() if k != "tasks"} | {"_target_": "mediaml.models.c3d.C3D"}
    old = tmp_path / "old-style.ckpt"
    torch.save(state, old)
    assert torch.load(old, weights_only=False)["hyper_parameters"]["net"]["_target_"] == "mediaml.models.c3d.C3D"
    r_old = subprocess.run([sys.executable, "-m", "mediaml.predict_video", str(old), str(one)], cwd=PROJECT_ROOT,
                           capture_output=True, text=True, timeout=300)
    assert r_old.returncode == 0, r_old.stderr[-2000:]
    assert r_old.stdout.strip().split("\t") == [path, label, prob, clips]
    assert "moved to mediaml.tasks.video.predict" in r_old.stderr


def test_decode_every_epoch_pipeline_runs(make_cfg, shared_cache, tmp_path):
    cfg = video_cfg(make_cfg, shared_cache, "logger=none", "dataset.cache=false", "trainer.max_epochs=1",
                    "dataset.n_per_class={train: 4, val: 2, test: 2}")
    m = VideoTask(cfg).run(Tracker(tmp_path / "out"))
    assert m["data/n_train"] == 8 and "test/acc" in m


def test_three_classes_use_cross_entropy_and_macro_metrics(make_cfg, shared_cache, tmp_path):
    cfg = video_cfg(make_cfg, shared_cache, "logger=none", "trainer.max_epochs=1", "model=c3d_seed",
                    "dataset.classes=[horizontal,vertical,static]", "dataset.n_per_class={train: 4, val: 2, test: 2}")
    m = VideoTask(cfg).run(Tracker(tmp_path / "out"))
    assert m["data/n_classes"] == 3 and 0 <= m["test/acc"] <= 1 and "test/auroc" in m


@pytest.mark.parametrize("model", ["c3d", "c3d_seed", "x3d_xs", "r2plus1d", "c3d model.motion=true"])
def test_models_build_from_config_and_give_one_logit(make_cfg, model):
    import torch

    from mediaml.tasks.video.module import build_net

    cfg = make_cfg(["task=video", *f"model={model}".split()])
    net = build_net(OmegaConf.to_container(cfg.model, resolve=True), num_outputs=1, num_frames=8, crop=64).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 3, 8, 64, 64)).shape == (2, 1)


def test_seed_model_has_a_nonlinearity_and_eval_is_deterministic():
    import torch

    from mediaml.tasks.video.nets import SeedVideo3DCNN

    net = SeedVideo3DCNN(num_outputs=1, num_frames=8, crop=64)
    assert sum(isinstance(m, torch.nn.ReLU) for m in net.features) == 8
    net.eval()
    x = torch.randn(2, 3, 8, 64, 64)
    with torch.no_grad():
        assert torch.equal(net(x), net(x))  # the seed's F.dropout stayed on at evaluation


def test_video_optuna_sweep_config_composes(make_cfg):
    pytest.importorskip("hydra_plugins.mediaml_optuna_sweeper")
    cfg = make_cfg(["task=video", "hparams_search=video_optuna"])
    params = cfg.hydra.sweeper.params
    assert {"task.optimizer.lr", "task.optimizer.weight_decay", "dataset.num_frames", "model.width"} <= set(params)
    assert cfg.hydra.sweeper.direction == "maximize"


def test_genre_still_does_not_import_torch():
    r = subprocess.run([sys.executable, "-c", "import sys, mediaml.run, mediaml.tracking.run; "
                        "assert 'torch' not in sys.modules; print('ok')"],
                       cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_debug_fdr_is_one_batch_per_stage(make_cfg, shared_cache, tmp_path):
    cfg = video_cfg(make_cfg, shared_cache, "logger=none", "debug=fdr", "trainer.max_epochs=5")
    m = VideoTask(cfg).run(Tracker(tmp_path / "out"))
    assert m["train/epochs"] == 1 and "test/acc" in m  # one batch each, whatever max_epochs says
    assert not list((tmp_path / "out").rglob("*.ckpt"))  # fast_dev_run writes no checkpoint
    assert "trainer" not in make_cfg(["task=genre", "debug=fdr"])  # no Lightning keys in a genre debug run


@pytest.mark.slow
def test_a_pruned_video_trial_stops_after_its_first_validation(tmp_path):
    """video_optuna on synthetic clips with a pruner that prunes any value below 1.1: every trial reports
    val/acc_best after epoch 0 and stops there (3 epochs asked); its run ends KILLED, optuna.state=PRUNED."""
    import os

    import optuna

    out = tmp_path / "out"
    cmd = [sys.executable, "train.py", "-m", "task=video", "hparams_search=video_optuna", "dataset=synthetic_clips",
           "hydra.sweeper.n_trials=2", *FAST, "trainer.max_epochs=3", "dataset.n_per_class={train: 6, val: 4, test: 4}",
           "++hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner", "++hydra.sweeper.pruner.lower=1.1",
           f"paths.output_root={out}", f"paths.cache_dir={tmp_path / 'cache'}"]
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db")
    r = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    study = optuna.load_study(study_name="video_optuna_synthetic_clips",
                              storage=f"sqlite:///{out}/video/sweeps/video_optuna_synthetic_clips/optuna.db")
    assert [t.state.name for t in study.trials] == ["PRUNED", "PRUNED"]
    assert all(list(t.intermediate_values) == [0] for t in study.trials)  # one epoch of three
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    kids = [x for x in client.search_runs([client.get_experiment_by_name("video").experiment_id])
            if x.data.tags.get("mediaml.role") != "sweep"]
    assert sorted(x.info.status for x in kids) == ["KILLED", "KILLED"]
    assert {x.data.tags["optuna.state"] for x in kids} == {"PRUNED"}


def _flat_folder(ds, dest: Path, classes=("horizontal", "vertical"), splits=("Validation", "Test")) -> Path:
    """One folder of class folders (no Train/Validation/Test), from the synthetic clips."""
    import shutil

    for cls in classes:
        (dest / cls).mkdir(parents=True, exist_ok=True)
        for split in splits:
            for f in sorted((ds.root / split / cls).glob("*.mp4")):
                shutil.copy(f, dest / cls / f"{split}_{f.name}")
    return dest


def test_one_folder_of_class_folders_is_cut_into_seeded_stratified_splits(make_cfg, shared_cache, tmp_path):
    from hydra.utils import instantiate

    from mediaml.tasks.video.data import VideoFolderDataset

    ds = instantiate(video_cfg(make_cfg, shared_cache).dataset, _convert_="all")
    ds.prepare()
    flat = _flat_folder(ds, tmp_path / "flat")  # 16 clips per class
    kw = dict(name="flat", root=str(flat), splits=None, split_fractions={"train": 0.5, "val": 0.25, "test": 0.25},
              clip_duration=1.0, train_short_side=[56, 64], eval_short_side=56, crop=48)
    a = VideoFolderDataset(**kw, split_seed=3)
    parts = {s: a.index(s) for s in ("train", "val", "test")}
    paths = {s: {c.path for c in ix.clips} for s, ix in parts.items()}
    assert not (paths["train"] & paths["val"]) and not (paths["train"] & paths["test"]) and not (paths["val"] & paths["test"])
    assert set().union(*paths.values()) == {str(f) for f in flat.rglob("*.mp4")}
    for s, n in (("train", 8), ("val", 4), ("test", 4)):  # per class: stratified
        assert sorted(sum(c.label == k for c in parts[s].clips) for k in (0, 1)) == [n, n], s
    again = VideoFolderDataset(**kw, split_seed=3)
    assert {c.path for c in again.index("test").clips} == paths["test"]  # the seed repeats the split
    other = VideoFolderDataset(**kw, split_seed=4)
    assert {c.path for c in other.index("test").clips} != paths["test"]
    from mediaml.errors import DataError

    with pytest.raises(DataError, match="split_fractions"):
        VideoFolderDataset(**{**kw, "split_fractions": {"train": 0.9, "test": 0.3}})


@pytest.mark.slow  # long: CI runs it with -m slow
def test_evaluate_mode_scores_a_trained_checkpoint_on_any_clip_folder(make_cfg, shared_cache, tmp_path, store):
    """task.mode=evaluate task.ckpt_path=<file>: no training; the test metrics and confusion matrix of the checkpoint
    on a folder described by a YAML alone (one folder of class folders, all of it the test split), in a run of its
    own; a folder with only one of the classes keeps the model's label numbering."""
    from hydra.utils import instantiate

    from mediaml.errors import ConfigError

    VideoTask(video_cfg(make_cfg, shared_cache, "logger=none", "trainer.max_epochs=8")).run(Tracker(tmp_path / "out"))
    ckpt = next((tmp_path / "out" / "checkpoints").glob("epoch*.ckpt"))
    ds = instantiate(video_cfg(make_cfg, shared_cache).dataset, _convert_="all")
    for name, classes in (("my_clips", ("horizontal", "vertical")), ("only_vertical", ("vertical",))):
        flat = _flat_folder(ds, tmp_path / name, classes)
        search = user_dataset(tmp_path / "myconf", name, f"""
defaults:
  - synthetic_clips
  - _self_
_target_: mediaml.tasks.video.data.VideoFolderDataset
name: {name}
root: {flat}
splits: null
split_fractions: {{test: 1.0}}
cache_dir: {tmp_path / 'cache'}
""")

    def evaluate(dataset, *more):
        return video_cfg(make_cfg, shared_cache, search,
                         f"dataset={dataset}", "task.mode=evaluate", f"task.ckpt_path={ckpt}", *more)

    value = run(evaluate("my_clips"))
    client = MlflowClient(store)
    (r,) = client.search_runs([client.get_experiment_by_name("video").experiment_id])
    m = r.data.metrics
    assert r.info.status == "FINISHED" and value == pytest.approx(m["test/acc"]) and m["objective"] == value
    assert m["data/n_test"] == 32 and m["test/acc"] >= 0.85 and "val/acc_best" not in m and "train/loss_epoch" not in m
    assert r.data.tags["mediaml.evaluated_checkpoint"] == str(ckpt) and r.data.tags["mediaml.mode"] == "evaluate"
    assert {"test/confusion_matrix.csv", "test/confusion_matrix.png", "checkpoints/evaluated_path.txt"} <= set(
        artifacts(client, r.info.run_id))
    assert not list((tmp_path / "outputs" / "run").glob("checkpoints/epoch*.ckpt"))  # nothing trained
    run(evaluate("only_vertical"))
    one = next(x for x in client.search_runs([r.info.experiment_id]) if x.info.run_id != r.info.run_id)
    assert one.data.metrics["data/n_test"] == 16 and one.data.metrics["test/acc"] >= 0.85  # vertical is label 1
    with pytest.raises(ConfigError, match="task.mode=evaluate scores a trained checkpoint"):
        run(video_cfg(make_cfg, shared_cache, "task.mode=evaluate"))
    assert len(client.search_runs([r.info.experiment_id])) == 2  # stopped before a run opened
