"""Decode every epoch (seed 002) against the decode-once cache, same real clips, same model and loop, one run.

    MEDIAML_DATA_DIR=../shared/data python benchmarks/bench_video_cache.py [--decode-batches 12] [--epochs 2]

Three training loaders feed the same two models, seed 002's network (conf/model/c3d_seed.yaml) and
C3D at 1/8 width (conf/model/c3d.yaml), through the same plain fwd + bwd + AdamW loop, batch 5; each
batch is loaded once and both models step on it, so the data time is shared and the model time is
kept per model. An epoch of a model = data time + its step time:
  seed    seed 002's loader exactly: labeled_video_dataset on Train/, make_clip_sampler("random", 1),
          UniformTemporalSubsample(10) -> x/255 -> Normalize -> RandomShortSideScale(248, 256)
          -> CenterCropVideo(112) -> RandomHorizontalFlip, all on full-resolution float frames
  decode  this project with dataset.cache=false: labeled_video_dataset, the project's transforms
  cache   this project with dataset.cache=true (the default): uint8 clips decoded once
`decode`/`seed` run --decode-batches batches (an epoch is 35); `cache` runs --epochs whole epochs.
Prints per batch data and step times, per model the epoch time (35 batches), clips/s and the ratios.

Equal accuracy: the cache holds the very tensors the decode pipeline produces for evaluation (checked
here on every validation clip, bit for bit), so one model scores the same through both; training
clips differ only in which random window is drawn (the cache keeps each video at 10 fps).
Timings depend on the machine's load (printed); compare the ratios, which are taken within one run.
"""
from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see mediaml/tasks/video.py

ROOT = Path(__file__).resolve().parents[1]


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def dataset_from_config(overrides):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    import mediaml  # noqa: F401

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["task=video", *overrides])
    return instantiate(cfg.dataset, _convert_="all")


def seed_loader(train_dir: Path):
    """Seed 002's training loader, transform for transform (CenterCropVideo from torchvision's private module)."""
    import torch
    from pytorchvideo.data import labeled_video_dataset, make_clip_sampler
    from pytorchvideo.transforms import (ApplyTransformToKey, Normalize, RandomShortSideScale,
                                         UniformTemporalSubsample)
    from torchvision.transforms import Compose, RandomHorizontalFlip

    class Div255(torch.nn.Module):
        def forward(self, x):
            return x / 255.0

    def center_crop(x, size=112):
        h, w = x.shape[-2:]
        i, j = (h - size) // 2, (w - size) // 2
        return x[..., i:i + size, j:j + size]

    class CenterCropVideo(torch.nn.Module):
        def forward(self, x):
            return center_crop(x)

    transform = ApplyTransformToKey("video", Compose([UniformTemporalSubsample(10), Div255(),
                                                      Normalize((0.45,) * 3, (0.225,) * 3),
                                                      RandomShortSideScale(248, 256), CenterCropVideo(),
                                                      RandomHorizontalFlip(p=0.5)]))
    ds = labeled_video_dataset(str(train_dir), clip_sampler=make_clip_sampler("random", 1), transform=transform,
                               decode_audio=False)
    return torch.utils.data.DataLoader(ds, batch_size=5, num_workers=0)


def run_batches(loader, models, n_batches: int | None):
    """Train every model on each batch; the data time is shared, the model time is kept per model."""
    import torch

    stats = {"batches": 0, "data": 0.0, "data_cpu": 0.0, "clips": 0,
             **{f"model_{k}": 0.0 for k in models}, **{f"cpu_{k}": 0.0 for k in models}}
    it = iter(loader)
    while n_batches is None or stats["batches"] < n_batches:
        td, cd = time.perf_counter(), cpu_s()
        try:
            batch = next(it)
        except StopIteration:
            break
        stats["data"] += time.perf_counter() - td
        stats["data_cpu"] += cpu_s() - cd
        x, y = batch["video"], batch["label"].float()
        for name, (model, opt) in models.items():
            tm, cm = time.perf_counter(), cpu_s()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(-1), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            stats[f"model_{name}"] += time.perf_counter() - tm
            stats[f"cpu_{name}"] += cpu_s() - cm
        stats["batches"] += 1
        stats["clips"] += len(y)
    return stats


def per_batch(r, name):
    """(wall, CPU) seconds per batch for one model: shared data time + that model's step."""
    b = max(r["batches"], 1)
    return (r["data"] + r[f"model_{name}"]) / b, (r["data_cpu"] + r[f"cpu_{name}"]) / b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--decode-batches", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=2, help="cached epochs")
    ap.add_argument("--skip-seed", action="store_true")
    args = ap.parse_args()

    import torch

    from mediaml.tasks.video.cache import VideoData
    from mediaml.tasks.video.nets import C3D

    torch.manual_seed(0)
    ds_cache = dataset_from_config([])
    ds_decode = dataset_from_config(["dataset.cache=false"])
    ds_cache.check()
    print(f"clips under {ds_cache.root}; load1 at start {load1():.2f}; torch threads {torch.get_num_threads()}")

    t, c = time.perf_counter(), cpu_s()
    data = VideoData(ds_cache, Path("/tmp/bench_video_cache")).setup()
    built = sum(v for k, v in data.stats.items() if k.startswith("data/cache_built_"))
    print(f"cache setup: {time.perf_counter() - t:.1f} s wall / {cpu_s() - c:.1f} CPU-s "
          f"({int(built)} videos decoded now; 0 means it was already built)")
    t = time.perf_counter()
    data_decode = VideoData(ds_decode, Path("/tmp/bench_video_cache")).setup()
    print(f"decode-pipeline index (probe every video): {time.perf_counter() - t:.1f} s")

    from mediaml.tasks.video.nets import SeedVideo3DCNN

    models = {}
    for name, net in (("c3d_seed", SeedVideo3DCNN(num_outputs=1)), ("c3d", C3D(num_outputs=1, width=0.125))):
        models[name] = (net.train(), torch.optim.AdamW(net.parameters(), lr=1e-3))
    epoch_batches = -(-len(data.datasets["train"]) // ds_cache.batch_size)
    rows = {}
    if not args.skip_seed:
        rows["seed"] = run_batches(seed_loader(ds_cache.split_dir("train")), models, args.decode_batches)
        print("seed   ", fmt(rows["seed"], models, load1()))
    rows["decode"] = run_batches(data_decode.loader("train"), models, args.decode_batches)
    print("decode ", fmt(rows["decode"], models, load1()))
    cache_rows = []
    for e in range(args.epochs):
        cache_rows.append(run_batches(data.loader("train"), models, None))
        print(f"cache{e} ", fmt(cache_rows[-1], models, load1()))
    rows["cache"] = {k: sum(r[k] for r in cache_rows) for k in cache_rows[0]}

    print(f"\nper epoch of {epoch_batches} batches of 5 clips (decode rows extrapolated from their batches):")
    for name in models:
        per = {k: per_batch(r, name) for k, r in rows.items()}
        for k in rows:
            wall, cpu = per[k]
            print(f"  {name:8s} {k:7s} epoch {wall * epoch_batches:7.1f} s wall, {cpu * epoch_batches:7.1f} CPU-s, "
                  f"{5 / wall:6.2f} clips/s, data {rows[k]['data'] / rows[k]['batches'] / wall:.0%} of wall")
        for k in ("seed", "decode"):
            if k in rows:
                print(f"RATIO {name} {k}/cache: {per[k][0] / per['cache'][0]:.1f}x wall per batch, "
                      f"{per[k][1] / per['cache'][1]:.1f}x CPU per batch")

    model = models["c3d"][0]
    # Equal accuracy: the evaluation tensors of both pipelines are identical, so are the predictions.
    model.eval()
    same, n, correct = True, 0, 0
    cached = data.datasets["val"]
    decoded = iter(data_decode.datasets["val"])
    with torch.no_grad():
        for i in range(len(cached)):
            a, b = cached[i], next(decoded)
            same &= torch.equal(a["video"], b["video"]) and a["label"] == b["label"]
            p = torch.sigmoid(model(a["video"])).mean()
            correct += int((p > 0.5) == bool(a["label"]))
            n += 1
    print(f"validation clips identical through both pipelines: {same} ({n} videos); "
          f"this (briefly trained) model's val acc {correct / n:.3f} either way")


def fmt(r, models, load) -> str:
    b = max(r["batches"], 1)
    parts = ", ".join(f"{k} step {r[f'model_{k}'] / b:.3f}" for k in models)
    return f"{r['batches']:3d} batches: data {r['data'] / b:.3f} s/batch, {parts} (wall s/batch); load1 {load:.2f}"


if __name__ == "__main__":
    main()
