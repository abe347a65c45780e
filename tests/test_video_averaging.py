"""callbacks.weight_averaging.kind (ema / swa) on synthetic clips: the averaged weights are validated, checkpointed,
tested and predicted; the raw ones only travel in the checkpoint for resuming."""
import pytest
import torch

from mediaml.tasks.video.task import VideoTask
from mediaml.tracking.tracker import Tracker

SMALL = ["task=video", "dataset=synthetic_clips", "logger=none", "trainer=cpu", "trainer.enable_progress_bar=false",
         "trainer.accumulate_grad_batches=1", "dataset.n_per_class={train: 6, val: 4, test: 4}",
         "callbacks.model_checkpoint.monitor=val/loss", "callbacks.model_checkpoint.mode=min"]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("video_avg_cache")


def _cfg(make_cfg, shared_cache, *overrides):
    return make_cfg([*SMALL, f"paths.cache_dir={shared_cache}", *overrides])


def _differs(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


def _test_loss(cfg, state_dict, out):
    """test/loss of a fresh module holding `state_dict`, through a Trainer with no averaging callback."""
    import lightning.pytorch as pl
    from hydra.utils import instantiate

    from mediaml.tasks.video.cache import VideoData
    from mediaml.tasks.video.module import VideoClassifier

    ckpt = next((out / "checkpoints").glob("epoch*.ckpt"))
    model = VideoClassifier.load_from_checkpoint(ckpt, map_location="cpu")
    model.load_state_dict(state_dict)
    data = VideoData(instantiate(cfg.dataset, _convert_="all"), out / "eval").setup()
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False)
    return trainer.test(model, data.loader("test"), verbose=False)[0]["test/loss"]


@pytest.mark.slow  # long: CI runs it with -m slow
def test_ema_weights_are_validated_checkpointed_tested_and_predicted(make_cfg, shared_cache, tmp_path):
    cfg = _cfg(make_cfg, shared_cache, "trainer.max_epochs=2", "callbacks.weight_averaging.kind=ema", "callbacks.weight_averaging.ema_decay=0.9",
               "task.optimizer.lr=0.01")
    out = tmp_path / "out"
    m = VideoTask(cfg).run(Tracker(out))
    assert m["train/averaged_updates"] == 4  # 12 clips / batch 8 -> 2 optimizer steps per epoch
    best = next((out / "checkpoints").glob("epoch*.ckpt"))
    ck = torch.load(best, weights_only=False, map_location="cpu")
    averaged, raw = ck["state_dict"], ck["current_model_state"]
    assert _differs(averaged, raw)
    # BatchNorm statistics are averaged too
    bn = next(k for k in averaged if k.endswith("running_mean"))
    assert not torch.equal(averaged[bn], raw[bn])
    # the run's test score is the averaged weights', not the raw ones'
    assert m["test/loss"] == pytest.approx(_test_loss(cfg, averaged, out), rel=1e-6)
    assert m["test/loss"] != pytest.approx(_test_loss(cfg, raw, out), rel=1e-6)
    # checkpoint selection saw the averaged weights: the file's score is the selected epoch's val/loss
    assert f"{m['val/selected_loss']:.4f}" in best.name
    # predict_video loads the averaged weights
    from mediaml.tasks.video.predict import load_model

    model, _ = load_model(str(best), "cpu")
    assert all(torch.equal(v, averaged[k]) for k, v in model.state_dict().items())


@pytest.mark.slow  # long: CI runs it with -m slow
def test_swa_starts_at_its_epoch_and_resumes(make_cfg, shared_cache, tmp_path):
    cfg = _cfg(make_cfg, shared_cache, "trainer.max_epochs=3", "callbacks.weight_averaging.kind=swa", "callbacks.weight_averaging.swa_start_epoch=1",
               "callbacks.model_checkpoint.save_top_k=-1", "task.test_checkpoint=last", "task.optimizer.lr=0.01")
    out = tmp_path / "out"
    m = VideoTask(cfg).run(Tracker(out))
    assert m["train/averaged_updates"] == 2  # the ends of epochs 1 and 2
    # test_checkpoint=last: the final SWA weights are tested
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False, map_location="cpu")
    assert m["test/loss"] == pytest.approx(_test_loss(cfg, last["state_dict"], out), rel=1e-6)
    cks = {int(p.name[5:8]): torch.load(p, weights_only=False, map_location="cpu")
           for p in (out / "checkpoints").glob("epoch*.ckpt")}
    assert set(cks) == {0, 1, 2}
    assert not _differs(cks[0]["state_dict"], cks[0]["current_model_state"])  # before the start: raw weights
    assert not _differs(cks[1]["state_dict"], cks[1]["current_model_state"])  # one weight set averaged
    assert _differs(cks[2]["state_dict"], cks[2]["current_model_state"])
    # resume from last.ckpt: both weight sets come back and averaging goes on
    cfg = _cfg(make_cfg, shared_cache, "trainer.max_epochs=4", "callbacks.weight_averaging.kind=swa", "callbacks.weight_averaging.swa_start_epoch=1",
               f"task.ckpt_path={out / 'checkpoints' / 'last.ckpt'}")
    m2 = VideoTask(cfg).run(Tracker(tmp_path / "resumed"))
    assert m2["train/epochs"] == 4 and m2["train/averaged_updates"] == 3


def test_none_is_the_default_and_unknown_kinds_fail(make_cfg):
    from mediaml.tasks.video.module import weight_averaging_callback

    assert make_cfg(["task=video"]).callbacks.weight_averaging.kind == "none"
    assert weight_averaging_callback("none") is None
    with pytest.raises(ValueError, match="ema or swa"):
        weight_averaging_callback("polyak")


def test_motion_ema_experiment_composes(make_cfg):
    cfg = make_cfg(["task=video", "experiment=video_fight_c3d_motion_ema"])
    assert cfg.callbacks.weight_averaging.kind == "ema" and cfg.callbacks.weight_averaging.ema_decay == 0.99 and cfg.model.motion is True
    assert (cfg.callbacks.model_checkpoint.monitor, cfg.callbacks.model_checkpoint.mode) == ("val/loss", "min")
    assert cfg.trainer.max_epochs == 40 and cfg.dataset.clip_duration == 1.6
