"""task=video data: synthetic clips, PyTorchVideo loading, the decode-once cache, unusable input."""
from pathlib import Path

import pytest
import torch

from conftest import require_real
from mediaml.errors import DataError, DataNotFoundError

REAL = "video_clips/surveillance_fight_akti2019"


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("video_clips")


def synthetic(cache_root, **kw):
    from mediaml.tasks.video.data import SyntheticClipsDataset

    args = dict(name="synthetic_clips", root=str(cache_root / "synthetic_clips"), seed=0,
                n_per_class={"train": 4, "val": 3, "test": 2}, clip_duration=1.0, num_frames=8,
                eval_clips_per_video=2, train_short_side=[56, 64], eval_short_side=56, crop=48, hflip=0.0)
    args.update(kw)
    return SyntheticClipsDataset(**args)


def test_synthetic_clips_are_mp4_in_the_real_layout_and_seeded(clips_dir):
    from mediaml.tasks.video.decode import decode_video

    a, b = synthetic(clips_dir), synthetic(clips_dir / "again")
    a.prepare()
    b.prepare()
    files = sorted(p.relative_to(a.root) for p in a.root.rglob("*.mp4"))
    assert len(files) == 2 * (4 + 3 + 2)
    assert {f.parts[0] for f in files} == {"Train", "Validation", "Test"}
    assert {f.parts[1] for f in files} == {"horizontal", "vertical"}
    va, vb = decode_video(a.root / files[0]), decode_video(b.root / files[0])
    assert len(va.frames) == 20 and va.rgb(0).shape == (64, 80, 3)
    assert all((va.rgb(i) == vb.rgb(i)).all() for i in range(20))  # same seed, same pixels
    assert va.duration == pytest.approx(2.0, abs=0.11)


@pytest.mark.parametrize("fps,duration", [(10, 2.0), (15, 2.2)])
def test_cache_gives_the_tensors_of_a_fresh_pytorchvideo_decode(clips_dir, tmp_path, fps, duration):
    from mediaml.tasks.video.cache import CachedEvalClips, ClipCache, DecodedEvalClips

    # 2.2 s is not a float-exact duration: clip starts must use PyTorchVideo's Fraction arithmetic
    kw = dict(fps=fps, duration=duration, eval_clips_per_video=3 if fps == 15 else 2)
    ds = synthetic(clips_dir, **kw)
    ds.prepare()
    for split in ("val", "test"):
        index = ds.index(split)
        fresh = list(DecodedEvalClips(ds.write_list(index, tmp_path / f"{split}.txt"), ds, len(index.clips)))
        items, stats = ClipCache(ds).build(ds.index(split, probe=False), "eval")
        cached = [CachedEvalClips(items, ds)[i] for i in range(len(items))]
        assert len(fresh) == len(cached) == len(index.clips)
        for f, c in zip(fresh, cached):
            assert f["label"] == c["label"]
            assert f["video"].shape == c["video"].shape == (ds.eval_clips_per_video, 3, 8, 48, 48)
            assert torch.equal(f["video"], c["video"])  # bit for bit, through labeled_video_dataset
    # second build reads the cache; a pixel setting changes the key
    _, again = ClipCache(ds).build(ds.index("val", probe=False), "eval")
    assert again["built"] == 0
    assert synthetic(clips_dir, **kw, eval_short_side=64).cache_key() != ds.cache_key()
    assert synthetic(clips_dir, **kw, num_frames=4).cache_key() != ds.cache_key()
    assert synthetic(clips_dir, **kw, batch_size=3).cache_key() == ds.cache_key()


def test_cached_training_clips_are_random_crops_of_the_stored_video(clips_dir):
    from mediaml.tasks.video.cache import CachedTrainClips, ClipCache

    ds = synthetic(clips_dir)
    ds.prepare()
    items, _ = ClipCache(ds).build(ds.index("train", probe=False), "train")
    entry = torch.load(items[0][0], weights_only=True)
    assert entry["frames"].dtype == torch.uint8 and entry["frames"].shape[:2] == (3, 20)  # 2 s at 10 fps
    assert min(entry["frames"].shape[-2:]) == 64  # max of train_short_side
    data = CachedTrainClips(items, ds)
    x = data[0]["video"]
    assert x.shape == (3, 8, 48, 48) and x.dtype == torch.float32
    assert -2.1 < float(x.min()) and float(x.max()) < 2.5  # (x/255 - 0.45) / 0.225


@pytest.mark.parametrize("cache", [True, False])
def test_corrupt_and_short_clips_are_skipped_and_counted(clips_dir, tmp_path, cache):
    from mediaml.tasks.video.cache import VideoData

    ds = synthetic(clips_dir, corrupt=2, short=1, cache=cache)
    data = VideoData(ds, tmp_path).setup()
    assert data.stats["data/skipped_clips"] == 3
    reasons = " ".join(r for _, r in data.skipped)
    assert "cannot decode" in reasons and "shorter than dataset.clip_duration" in reasons
    assert data.stats["data/n_train"] == 8
    batch = next(iter(data.loader("train")))
    assert batch["video"].shape[1:] == (3, 8, 48, 48)
    assert sum(len(b["label"]) for b in data.loader("val")) == 6


def test_empty_class_folder_is_counted_and_empty_split_is_an_error(clips_dir, tmp_path):
    import shutil

    from mediaml.tasks.video.cache import VideoData

    ds = synthetic(clips_dir)
    ds.prepare()
    root = tmp_path / "copy"
    shutil.copytree(ds.root, root, ignore=shutil.ignore_patterns(".cache"))
    for f in (root / "Test" / "vertical").iterdir():
        f.unlink()
    from mediaml.tasks.video.data import VideoFolderDataset

    kw = dict(name="copy", root=str(root), splits={"train": "Train", "val": "Validation", "test": "Test"},
              num_frames=8, train_short_side=[56, 64], eval_short_side=56, crop=48, eval_clips_per_video=1,
              cache_dir=str(tmp_path / "cache"))
    data = VideoData(VideoFolderDataset(**kw), tmp_path).setup()
    assert data.stats["data/empty_class_dirs"] == 1 and data.stats["data/n_test"] == 2
    for f in (root / "Test" / "horizontal").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="the test split has no usable video"):
        VideoData(VideoFolderDataset(**kw), tmp_path).setup()


def test_missing_real_folder_is_named_before_any_work(make_cfg, tmp_path, monkeypatch):
    from mediaml.tasks.video.task import VideoTask

    monkeypatch.setenv("MEDIAML_DATA_DIR", str(tmp_path))
    cfg = make_cfg(["task=video", "logger=none"])
    assert cfg.dataset.name == "surveillance_fight"  # the default; fast tests pick synthetic_clips
    with pytest.raises(DataNotFoundError, match="surveillance_fight_akti2019/Train"):
        VideoTask(cfg).check_inputs()


def test_real_fight_clips_index(make_cfg):
    d = require_real(REAL)
    from hydra.utils import instantiate

    ds = instantiate(make_cfg(["task=video", "logger=none", f"paths.data_dir={d}"]).dataset, _convert_="all")
    assert ds.classes == ["fight", "noFight"]
    counts = {s: len(ds.index(s, probe=False).clips) for s in ("train", "val", "test")}
    assert counts == {"train": 174, "val": 38, "test": 38}
