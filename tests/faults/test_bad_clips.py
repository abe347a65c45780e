"""Issue 15, bad input for task=video: every corrupt clip is skipped with a specific reason and counted,
never accepted silently and never a crash; the good clips of the same folder are kept; a split with
no usable clip is a DataError naming its folder. Real files, built in tmp_path from a good synthetic
clip, through the real index + decode + cache path (VideoData.setup), cached and decode-every-epoch."""
import re

import numpy as np
import pytest

from mediaml.errors import DataError

FPS, N = 10, 20   # good clips: 2.0 s, 64x48, mpeg4
OPEN_FAILED = "cannot decode (InvalidDataError: Invalid data found when processing input)"
SPLITS = {"train": "Train", "val": "Validation", "test": "Test"}


def frames(seed: int, n: int = N):
    from mediaml.tasks.video.data import synthetic_frames

    # noise 40: P-frames cost bytes, so a cut file still holds a few whole frames
    return synthetic_frames("horizontal", np.random.default_rng(seed), 64, 48, n, 40.0)


def write(path, seed=0, n=N, faststart=False):
    from mediaml.tasks.video.data import write_mp4

    write_mp4(path, frames(seed, n), FPS, faststart=faststart)
    return path.read_bytes()


def write_audio_only(path):
    import av

    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("aac", rate=16000)
        for i in range(8):
            a = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            a.sample_rate, a.pts = 16000, i * 1024
            for p in stream.encode(a):
                out.mux(p)
        for p in stream.encode():
            out.mux(p)


def packet_sizes(path):
    import av

    with av.open(str(path)) as c:
        return [p.size for p in c.demux(video=0) if p.size]


def n_decoded(path) -> int:
    """Frames plain PyAV decodes (it opens a cut faststart file without complaint)."""
    import av

    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def good_layout(root, seed=0):
    """Two good clips per class and split."""
    for i, (split, cls) in enumerate((s, c) for s in SPLITS.values() for c in ("a", "b")):
        for k in range(2):
            write(root / split / cls / f"good_{k}.mp4", seed=seed + 10 * i + k)


def dataset(root, tmp_path, cache=True):
    from mediaml.tasks.video.data import VideoFolderDataset

    return VideoFolderDataset(name="bad_clips", root=str(root), splits=SPLITS, clip_duration=1.0, num_frames=4,
                              train_short_side=[32, 32], eval_short_side=32, crop=32, eval_clips_per_video=1,
                              batch_size=2, cache=cache, cache_dir=str(tmp_path / "cache"), cache_workers=1)


def setup(root, tmp_path, cache=True):
    from mediaml.tasks.video.cache import VideoData

    return VideoData(dataset(root, tmp_path, cache), tmp_path / "run").setup()


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory):
    """Good clips everywhere, and in Train/a one file of each bad kind next to them.
    Returns (root, {file name: (reason on the cached path, reason on the probe path, kind)})."""
    root = tmp_path_factory.mktemp("bad_clips")
    good_layout(root)
    a = root / "Train" / "a"
    expected = {}

    (a / "empty.mp4").write_bytes(b"")
    expected["empty.mp4"] = ("empty file (0 bytes)",) * 2 + ("empty_file",)

    # moov at the end (PyAV's default): cut to 30 % the index is gone and the mdat box runs past the end
    good = write(a / "x.mp4", seed=100)
    (a / "x.mp4").unlink()
    cut = good[: len(good) * 3 // 10]
    (a / "truncated.mp4").write_bytes(cut)
    off = good.index(b"mdat") - 4
    size = int.from_bytes(good[off:off + 4], "big")
    why = (f"{OPEN_FAILED}: truncated mp4: its 'mdat' box at byte {off} claims {size} bytes, "
           f"the file ends {off + size - len(cut)} bytes short; no 'moov' index box")
    expected["truncated.mp4"] = (why, why, "truncated")

    (a / "not_a_video.mp4").write_text("this is a text file, not a video\n")
    expected["not_a_video.mp4"] = (OPEN_FAILED, OPEN_FAILED, "unreadable")

    write_audio_only(a / "audio_only.mp4")
    expected["audio_only.mp4"] = ("no video stream (streams: audio)",) * 2 + ("no_video_stream",)

    # one frame is 0.1 s: shorter than one clip, skipped (PyTorchVideo would repeat it num_frames times)
    write(a / "one_frame.mp4", seed=101, n=1)
    expected["one_frame.mp4"] = ("0.100 s is shorter than dataset.clip_duration=1.0 s",) * 2 + ("too_short",)

    # the defect: the index is at the front (-movflags faststart), so a cut file still opens
    fast = write(a / "x.mp4", seed=103, faststart=True)
    (a / "x.mp4").unlink()
    assert fast.index(b"moov") < fast.index(b"mdat")
    f = a / "faststart_truncated.mp4"
    f.write_bytes(fast[: len(fast) * 3 // 10])
    k = n_decoded(f)                       # PyAV decodes a few frames, no error: once accepted silently
    packets = len(packet_sizes(f))         # the probe (cache=false) reads packets, decodes one frame
    assert 1 < k <= packets < N
    claim = f"of the {N / FPS:.2f} s the container claims"
    expected[f.name] = (f"truncated: decoded {k / FPS:.2f} s {claim} ({k} of {N} frames)",
                        f"truncated: found packets for {packets / FPS:.2f} s {claim} ({packets} of {N} frames)",
                        "truncated")
    return root, expected


@pytest.mark.parametrize("cache", [True, False], ids=["cached", "decode_every_epoch"])
def test_each_bad_clip_is_skipped_with_its_reason_and_counted(bad_folder, tmp_path, cache):
    root, expected = bad_folder
    data = setup(root, tmp_path, cache)
    reasons = {p.rsplit("/", 1)[-1]: r for p, r in data.skipped}
    assert reasons == {name: e[0 if cache else 1] for name, e in expected.items()}
    assert all(p.startswith(str(root / "Train" / "a")) for p, _ in data.skipped)
    kinds = {}
    for _, _, kind in expected.values():
        kinds[kind] = kinds.get(kind, 0) + 1
    assert kinds == {"empty_file": 1, "truncated": 2, "unreadable": 1, "no_video_stream": 1, "too_short": 1}
    assert data.stats["data/skipped_clips"] == 6
    assert {k: v for k, v in data.stats.items() if k.startswith("data/skipped_clips_")} == \
        {f"data/skipped_clips_{k}": v for k, v in kinds.items()}
    # the good clips of the same folder (and every other) are kept, and the run proceeds on them
    assert [p.rsplit("/", 2)[-2:] for p in data.paths["train"]] == \
        [["a", "good_0.mp4"], ["a", "good_1.mp4"], ["b", "good_0.mp4"], ["b", "good_1.mp4"]]
    assert data.stats["data/n_train"] == data.stats["data/n_val"] == data.stats["data/n_test"] == 4
    batch = next(iter(data.loader("train")))
    assert tuple(batch["video"].shape) == (2, 3, 4, 32, 32)
    if cache:  # skip records are cached too: a second run reads the same reasons without decoding
        again = setup(root, tmp_path, cache)
        assert again.skipped == data.skipped and again.stats["data/cache_built_train"] == 0


def test_short_by_more_than_two_frames_is_truncated_up_to_two_is_kept(tmp_path):
    """The tolerance (decode.SHORT_TOLERANCE_FRAMES = 2): a clip whose last 2 frames are cut off is used,
    one missing 3 frames is skipped."""
    from mediaml.tasks.video.decode import SHORT_TOLERANCE_FRAMES

    assert SHORT_TOLERANCE_FRAMES == 2
    root = tmp_path / "clips"
    good_layout(root)
    a = root / "Train" / "a"
    fast = write(a / "x.mp4", seed=200, faststart=True)
    sizes = packet_sizes(a / "x.mp4")   # mpeg4 without B-frames: the last packets are the last frames
    (a / "x.mp4").unlink()
    (a / "minus2.mp4").write_bytes(fast[: len(fast) - sum(sizes[-2:])])
    (a / "minus3.mp4").write_bytes(fast[: len(fast) - sum(sizes[-3:])])
    for cache in (True, False):
        data = setup(root, tmp_path / str(cache), cache)
        assert [(p.rsplit("/", 1)[-1], r) for p, r in data.skipped] == [
            ("minus3.mp4", f"truncated: {'decoded' if cache else 'found packets for'} 1.70 s of the 2.00 s "
                           "the container claims (17 of 20 frames)")]
        assert str(a / "minus2.mp4") in data.paths["train"] and data.stats["data/skipped_clips_truncated"] == 1


@pytest.mark.parametrize("cache", [True, False], ids=["cached", "decode_every_epoch"])
def test_a_split_of_bad_clips_only_is_a_data_error_naming_its_folder(tmp_path, cache):
    root = tmp_path / "clips"
    good_layout(root)
    for cls in ("a", "b"):
        for f in (root / "Test" / cls).iterdir():
            f.unlink()
    (root / "Test" / "a" / "empty.mp4").write_bytes(b"")
    (root / "Test" / "b" / "notes.mp4").write_text("not a video")
    d = root / "Test"
    with pytest.raises(DataError, match=re.escape(
            f"{d}: the test split has no usable video (2 skipped: empty.mp4: empty file (0 bytes); "
            f"notes.mp4: {OPEN_FAILED}; empty class folders: []); expected {d}/<label>/*.mp4")):
        setup(root, tmp_path, cache)


def test_real_clip_remuxed_faststart_and_cut_to_30_percent_is_truncated(tmp_path):
    """The issue's case on a real fight clip (fi049: 1.94 s, 58 frames at 29.97 fps): once cached with 14
    decoded frames and a frozen copy of the last one up to 1.94 s; now skipped with what it lost."""
    import av

    from conftest import require_real
    from mediaml.tasks.video.cache import build_entry

    src = require_real("video_clips") / "video_clips/surveillance_fight_akti2019/Train/fight/fi049.mp4"
    fast = tmp_path / "fi049_faststart.mp4"
    with av.open(str(src)) as i, av.open(str(fast), "w", options={"movflags": "faststart"}) as o:
        out = o.add_stream_from_template(i.streams.video[0])
        for p in i.demux(i.streams.video[0]):
            if p.dts is not None:
                p.stream = out
                o.mux(p)
    cut = tmp_path / "fi049_cut.mp4"
    cut.write_bytes(fast.read_bytes()[: fast.stat().st_size * 3 // 10])
    ds = dataset(tmp_path, tmp_path)
    assert "frames" in build_entry(str(fast), "train", ds)
    assert build_entry(str(cut), "train", ds) == {
        "skipped": "truncated: decoded 0.47 s of the 1.94 s the container claims (14 of 58 frames)",
        "kind": "truncated", "path": str(cut)}
