"""Decode throughput on the real fight clips, by frame height.

    MEDIAML_DATA_DIR=../shared/data python benchmarks/bench_video_decode.py [--per-class 6]

For --per-class videos of each height class (<=240p, 360p, 480p, 720p+), wall time of
  seed       PyTorchVideo EncodedVideo.from_path(...).get_clip(t, t + 1) for a random 1-s clip, then
             seed 002's transform (UniformTemporalSubsample(10), x/255, Normalize, RandomShortSideScale(248, 256),
             centre crop 112, flip) on full-resolution float frames: one training clip of the seed's loader
  decode     mediaml.tasks.video.decode.decode_video: every frame of the 2-s video decoded once (YUV; RGB on demand)
  cache      what the cache adds per video (RGB of the frames it keeps + resize): train role (10 fps, short side 144) or
             eval role (3 constant clips, 10 frames, short side 128)
and the dataset-weighted clips/s (each class weighted by its share of the 250 videos).
"""
from __future__ import annotations

import argparse
import os
import random
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]


def height_class(h: int) -> str:
    return "<=240p" if h <= 240 else "360p" if h <= 360 else "480p" if h <= 480 else "720p+"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-class", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import av
    import torch

    from mediaml.tasks.video.compat import install_torchvision_alias

    install_torchvision_alias()
    from pytorchvideo.data.encoded_video import EncodedVideo
    from pytorchvideo.transforms import Normalize, RandomShortSideScale, UniformTemporalSubsample
    from torchvision.transforms import Compose, RandomHorizontalFlip

    from mediaml.tasks.video.data import VideoFolderDataset
    from mediaml.tasks.video.cache import build_entry
    from mediaml.tasks.video.decode import decode_video

    data_dir = Path(os.environ.get("MEDIAML_DATA_DIR", ROOT / "data")).resolve()
    root = data_dir / "video_clips" / "surveillance_fight_akti2019"
    files = sorted(root.rglob("*.mp4"))
    if not files:
        raise SystemExit(f"no mp4 under {root} (set MEDIAML_DATA_DIR)")
    ds = VideoFolderDataset(name="bench", root=str(root), splits={"train": "Train"})
    by_class = defaultdict(list)
    for f in files:
        with av.open(str(f)) as c:
            by_class[height_class(c.streams.video[0].codec_context.height)].append(f)
    rng = random.Random(args.seed)
    from mediaml.tasks.video.cache import center_crop

    seed_tf = Compose([UniformTemporalSubsample(10), lambda x: x / 255.0, Normalize((0.45,) * 3, (0.225,) * 3),
                       RandomShortSideScale(248, 256), lambda x: center_crop(x, 112), RandomHorizontalFlip(0.5)])
    print(f"{len(files)} videos; load1 {Path('/proc/loadavg').read_text().split()[0]}; "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'class':7s} {'videos':>6s} {'n':>3s} | {'seed clip s':>11s} {'clips/s':>7s} | {'decode s':>8s} "
          f"{'+cache s':>8s} {'videos/s':>8s}")
    totals = {"seed": 0.0, "ours": 0.0}
    for cls in ("<=240p", "360p", "480p", "720p+"):
        sample = rng.sample(by_class[cls], min(args.per_class, len(by_class[cls]))) if by_class[cls] else []
        if not sample:
            continue
        t_seed = t_dec = t_cache = 0.0
        for f in sample:
            t = time.perf_counter()
            v = EncodedVideo.from_path(str(f), decode_audio=False)
            start = rng.uniform(0, max(float(v.duration) - 1, 0))
            seed_tf(v.get_clip(start, start + 1)["video"])
            v.close()
            t_seed += time.perf_counter() - t
            t = time.perf_counter()
            decode_video(f)
            t_dec += time.perf_counter() - t
            role = "train" if "/Train/" in str(f) else "eval"
            t = time.perf_counter()
            build_entry(str(f), role, ds)  # decodes again + the cache conversion
            t_cache += time.perf_counter() - t
        n = len(sample)
        share = len(by_class[cls]) / len(files)
        totals["seed"] += share * t_seed / n
        totals["ours"] += share * t_cache / n
        print(f"{cls:7s} {len(by_class[cls]):6d} {n:3d} | {t_seed / n:11.3f} {n / t_seed:7.2f} | {t_dec / n:8.3f} "
              f"{(t_cache - t_dec) / n:8.3f} {n / t_cache:8.2f}")
    print(f"dataset-weighted: seed {1 / totals['seed']:.2f} training clips/s (decoded again every epoch); "
          f"cache build {1 / totals['ours']:.2f} videos/s (once; a cached epoch then decodes nothing)")


if __name__ == "__main__":
    main()
