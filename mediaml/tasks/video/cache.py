"""Decode-once cache of uint8 clips, and the torch datasets / loaders for task=video.

Layout: ``<cache_dir>/<settings key>/<role>/<file key>.pt`` where the settings key hashes every setting
that changes the pixels (``VideoFolderDataset.cache_settings``) and the file key hashes the video's
path, size and mtime. Roles:

* ``train``: the whole video at ``cache_fps`` frames per second, short side = max(train_short_side);
  each epoch cuts a random ``clip_duration`` window from it (PyTorchVideo's RandomClipSampler rule),
  subsamples ``num_frames`` and applies the random scale / crop / flip. Under DDP (or with
  ``dataset.train_order=epoch``) order and draws depend on the seed, the epoch and the video only
  (``EpochShuffle``): one process with batch B and W DDP ranks with batch B/W train on the same global batches.
* ``eval``: the ``eval_clips_per_video`` clips of PyTorchVideo's ConstantClipsPerVideoSampler, cut with
  EncodedVideoPyAV's frame rule, subsampled and scaled to ``eval_short_side``: the same uint8 tensors
  the decode-every-epoch evaluation pipeline produces (tests/test_video_data.py).

A video that cannot be decoded, decodes short of what its container claims (a truncated file:
``decode.check_complete``), or is shorter than one clip is stored as a skip record (reason and kind),
counted in ``data/skipped_clips`` and ``data/skipped_clips_<kind>``, and listed with its reason.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset

from mediaml.errors import DataError
from mediaml.tasks.video.data import Clip, SplitIndex, VideoFolderDataset
from mediaml.tasks.video.decode import UnusableVideo, decode_video, require_clip_length, resize_uint8, subsample

log = logging.getLogger(__name__)


# --- pixel transforms (shared by both pipelines) ----------------------------------------------------
def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 / [0, 255] float (C, T, H, W) -> x/255 then (x - mean) / std per channel."""
    x = x.float().div_(255.0)
    m = torch.tensor(mean, dtype=x.dtype).view(-1, 1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(-1, 1, 1, 1)
    return x.sub_(m).div_(s)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    i, j = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return x[..., i:i + size, j:j + size]


class TrainPixels:
    """RandomShortSideScale(min, max) -> random crop -> horizontal flip -> x/255 -> Normalize.

    (The seed normalised full-resolution float frames before scaling them down; scaling first gives the
    same crop at a fraction of the cost.)"""

    def __init__(self, ds: VideoFolderDataset):
        self.lo, self.hi = ds.train_short_side
        self.crop, self.p, self.mean, self.std = ds.crop, ds.hflip, ds.mean, ds.std

    def __call__(self, x: torch.Tensor, rng: random.Random | None = None) -> torch.Tensor:
        rng = rng or random  # the module's generator unless the caller brings its own
        # Scaling the short side to s then cropping `crop` pixels equals cropping a window of
        # crop * short / s pixels and scaling only that window to crop x crop: same pixels, far less work.
        size = rng.randint(self.lo, self.hi)
        h, w = x.shape[-2:]
        win = min(h, w, max(1, int(round(self.crop * min(h, w) / size))))
        i, j = rng.randint(0, h - win), rng.randint(0, w - win)
        x = x[..., i:i + win, j:j + win].float()
        if win != self.crop:
            x = torch.nn.functional.interpolate(x, size=(self.crop, self.crop), mode="bilinear", align_corners=False)
        if rng.random() < self.p:
            x = x.flip(-1)
        return normalize(x, self.mean, self.std)


class EvalPixels:
    """uint8 clip at eval_short_side -> CenterCrop(crop) -> x/255 -> Normalize."""

    def __init__(self, ds: VideoFolderDataset):
        self.crop, self.mean, self.std = ds.crop, ds.mean, ds.std

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return normalize(center_crop(x, self.crop), self.mean, self.std)


def eval_clip_uint8(frames: torch.Tensor, ds: VideoFolderDataset) -> torch.Tensor:
    """A decoded clip (C, T, H, W, uint8 or float 0-255) -> UniformTemporalSubsample + short-side scale, uint8."""
    return resize_uint8(subsample(frames, ds.num_frames), ds.eval_short_side)


def eval_windows(duration: float, ds: VideoFolderDataset) -> list:
    """(start, end) of the clips PyTorchVideo's constant_clips_per_video sampler cuts from a video."""
    from pytorchvideo.data import make_clip_sampler

    sampler = make_clip_sampler("constant_clips_per_video", ds.clip_duration, ds.eval_clips_per_video)
    out = []
    while True:
        info = sampler(0.0, duration, {})
        out.append((info.clip_start_sec, info.clip_end_sec))
        if info.is_last_clip or len(out) >= ds.eval_clips_per_video:
            return out


# --- the cache ----------------------------------------------------------------------------------
def file_key(path: str) -> str:
    st = os.stat(path)
    return hashlib.sha1(f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]


def build_entry(path: str, role: str, ds: VideoFolderDataset) -> dict:
    """Decode one video and return its cache entry (or a skip record)."""
    try:
        video = decode_video(path)
        require_clip_length(path, video.duration, ds.clip_duration)
        if role == "train":
            frames = resize_uint8(video.frames_at_fps(ds.cache_fps), ds.train_short_side[1])
            return {"frames": frames, "duration": float(video.duration), "path": path}
        # == eval_clip_uint8(video.clip(s, e), ds), converting only the frames the subsampling keeps
        clips = [resize_uint8(video.subsampled_clip(s, e, ds.num_frames), ds.eval_short_side)
                 for s, e in eval_windows(video.duration, ds)]
        return {"clips": torch.stack(clips), "duration": float(video.duration), "path": path}
    except UnusableVideo as e:
        return {"skipped": e.reason, "kind": e.kind, "path": path}


class ClipCache:
    def __init__(self, ds: VideoFolderDataset):
        self.ds = ds
        self.dir = Path(ds.cache_dir) / ds.cache_key()

    def entry_path(self, path: str, role: str) -> Path:
        return self.dir / role / f"{file_key(path)}.pt"

    def build(self, index: SplitIndex, role: str) -> tuple[list[tuple[Path, int]], dict]:
        """Decode what is missing; return [(entry file, label)] for usable videos and build stats.
        Skipped videos are appended to index.skipped. One process decodes a role at a time (a file lock):
        DDP ranks and parallel jobs on the same cache wait for it and read its entries."""
        from filelock import FileLock

        self.dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.dir / f".{role}.lock")):
            return self._build(index, role)

    def _build(self, index: SplitIndex, role: str) -> tuple[list[tuple[Path, int]], dict]:
        todo = [c for c in index.clips if not self.entry_path(c.path, role).is_file()]
        start = time.perf_counter()
        if todo:
            (self.dir / role).mkdir(parents=True, exist_ok=True)
            log.info("cache: decoding %d %s videos into %s", len(todo), index.split, self.dir / role)

            def work(c: Clip):
                entry = build_entry(c.path, role, self.ds)
                target = self.entry_path(c.path, role)
                tmp = target.with_suffix(f".tmp{os.getpid()}")
                torch.save(entry, tmp)
                os.replace(tmp, target)

            from mediaml.progress import bar

            torch_threads = torch.get_num_threads()
            torch.set_num_threads(1)  # decoder threads + pool workers already fill the cores
            try:
                with ThreadPoolExecutor(max_workers=max(1, self.ds.cache_workers)) as pool, \
                        bar(total=len(todo), desc=f"cache: {index.split} videos", unit="video") as done:
                    for _ in pool.map(work, todo):
                        done.update(1)
            finally:
                torch.set_num_threads(torch_threads)
        items = []
        kept: list[Clip] = []
        for c in index.clips:
            p = self.entry_path(c.path, role)
            entry = torch.load(p, weights_only=True)
            if "skipped" in entry:
                index.skip(c.path, entry["skipped"], entry["kind"])
                continue
            kept.append(c)
            items.append((p, c.label))
        index.clips = kept
        return items, {"built": len(todo), "build_s": time.perf_counter() - start}


def _world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class EpochShuffle(DistributedSampler):
    """The training order for any number of DDP ranks: one permutation of the videos per epoch, seeded by
    (seed, epoch) as torch's DistributedSampler does, dealt round robin (rank r of W takes positions r, r+W, ...),
    so the global batches of W ranks with batch B/W are those of one process with batch B. Yields
    (index, epoch): CachedTrainClips draws each item's window, scale, crop and flip from (seed, epoch, index),
    not from the process's generator. The ranks (unless given) are read from torch.distributed when iterated:
    Lightning keeps a DistributedSampler as it is, and calls its set_epoch."""

    def __init__(self, data, seed: int = 0, num_replicas: int | None = None, rank: int | None = None):
        super().__init__(data, num_replicas=num_replicas or 1, rank=rank or 0, shuffle=True, seed=int(seed),
                         drop_last=False)
        self._given = num_replicas is not None

    def _ranks(self) -> None:
        import torch.distributed as dist

        if not self._given and dist.is_available() and dist.is_initialized():
            self.num_replicas, self.rank = dist.get_world_size(), dist.get_rank()
        self.num_samples = math.ceil(len(self.dataset) / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self):
        self._ranks()
        epoch = self.epoch
        return ((i, epoch) for i in super().__iter__())

    def __len__(self) -> int:
        self._ranks()
        return self.num_samples


class CachedTrainClips(Dataset):
    """Random clip of a cached training video per item (map-style: works with DistributedSampler). An item
    asked as (index, epoch) (EpochShuffle) draws from its own generator seeded by (seed, epoch, index)."""

    def __init__(self, items, ds: VideoFolderDataset, seed: int = 0):
        self.items, self.ds, self.pixels, self.seed = items, ds, TrainPixels(ds), int(seed)
        self._mem: dict[int, dict] = {}

    def __len__(self):
        return len(self.items)

    def _entry(self, i):
        if i not in self._mem:
            self._mem[i] = torch.load(self.items[i][0], weights_only=True)
        return self._mem[i]

    def __getitem__(self, key):
        i, epoch = key if isinstance(key, tuple) else (key, None)
        rng = random.Random(f"{self.seed}:{epoch}:{i}") if epoch is not None else random
        e = self._entry(i)
        frames, duration, ds = e["frames"], e["duration"], self.ds
        start = rng.uniform(0, max(duration - ds.clip_duration, 0.0))
        n = frames.shape[1]
        lo = min(n - 1, int(round(start * ds.cache_fps)))
        hi = max(lo + 1, min(n, int(round((start + ds.clip_duration) * ds.cache_fps))))
        clip = subsample(frames[:, lo:hi], ds.num_frames)
        return {"video": self.pixels(clip, rng), "label": self.items[i][1], "index": i}


class CachedEvalClips(Dataset):
    """All evaluation clips of one cached video per item: (K, C, T, crop, crop)."""

    def __init__(self, items, ds: VideoFolderDataset):
        self.items, self.pixels = items, EvalPixels(ds)
        self._mem: dict[int, torch.Tensor] = {}

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        if i not in self._mem:
            self._mem[i] = torch.load(self.items[i][0], weights_only=True)["clips"]
        clips = self._mem[i]
        return {"video": torch.stack([self.pixels(c) for c in clips]), "label": self.items[i][1], "index": i}


# --- decode every epoch (seed 002's pipeline, PyTorchVideo all the way) ------------------------------
class _ApplyToVideo:
    def __init__(self, fn):
        self.fn = fn

    def __call__(self, sample):
        sample["video"] = self.fn(sample["video"])
        return sample


def pytorchvideo_dataset(list_file: Path, ds: VideoFolderDataset, train: bool):
    """labeled_video_dataset over a `path label` list: random clips (train) or constant clips (eval)."""
    from pytorchvideo.data import labeled_video_dataset, make_clip_sampler

    if train:
        pixels = TrainPixels(ds)
        fn = lambda v: pixels(subsample(v, ds.num_frames))  # noqa: E731
        sampler = make_clip_sampler("random", ds.clip_duration)
        video_sampler = torch.utils.data.RandomSampler
    else:
        pixels = EvalPixels(ds)
        fn = lambda v: pixels(eval_clip_uint8(v, ds))  # noqa: E731
        sampler = make_clip_sampler("constant_clips_per_video", ds.clip_duration, ds.eval_clips_per_video)
        video_sampler = torch.utils.data.SequentialSampler
    return labeled_video_dataset(str(list_file), clip_sampler=sampler, video_sampler=video_sampler,
                                 transform=_ApplyToVideo(fn), decode_audio=False, decoder="pyav")


class DecodedTrainClips(IterableDataset):
    def __init__(self, list_file: Path, ds: VideoFolderDataset, n_videos: int):
        self.list_file, self.ds, self.n = list_file, ds, n_videos

    def __len__(self):
        return self.n

    def __iter__(self):
        for s in pytorchvideo_dataset(self.list_file, self.ds, train=True):
            yield {"video": s["video"], "label": s["label"], "index": s["video_index"]}


class DecodedEvalClips(IterableDataset):
    """The K constant clips of each video, grouped per video (PyTorchVideo yields them one by one)."""

    def __init__(self, list_file: Path, ds: VideoFolderDataset, n_videos: int):
        self.list_file, self.ds, self.n = list_file, ds, n_videos

    def __len__(self):
        return self.n

    def __iter__(self):
        group, current = [], None
        for s in pytorchvideo_dataset(self.list_file, self.ds, train=False):
            if current is not None and s["video_index"] != current["index"]:
                yield {"video": torch.stack(group), "label": current["label"], "index": current["index"]}
                group = []
            current = {"label": s["label"], "index": s["video_index"]}
            group.append(s["video"])
        if group:
            yield {"video": torch.stack(group), "label": current["label"], "index": current["index"]}


class VideoData:
    """Index, cache and loaders of the three splits for one run."""

    def __init__(self, ds: VideoFolderDataset, work_dir: Path, seed: int = 0):
        self.ds, self.work_dir, self.seed = ds, Path(work_dir), int(seed)
        self.datasets: dict[str, Dataset] = {}
        self.paths: dict[str, list[str]] = {}
        self.stats: dict[str, float] = {}
        self.skipped: list[tuple[str, str]] = []
        self.empty_class_dirs: list[str] = []

    @property
    def classes(self) -> list[str]:
        return self.ds.classes

    def setup(self, splits=("train", "val", "test")) -> "VideoData":
        ds = self.ds
        ds.prepare()
        cache = ClipCache(ds) if ds.cache else None
        skip_kinds: Counter = Counter()
        missing = [s for s in splits if s not in ds.splits]
        if missing:
            raise DataError(f"dataset={ds.name}: this run needs the split(s) {missing}; dataset.splits has "
                            f"{ds.splits} (a folder per split under {ds.root}, or splits: null to cut one folder)")
        for split in splits:
            index = ds.index(split, probe=cache is None)
            if cache is not None:
                items, st = cache.build(index, "train" if split == "train" else "eval")
                self.stats[f"data/cache_build_s_{split}"] = st["build_s"]
                self.stats[f"data/cache_built_{split}"] = st["built"]
                if not items:
                    raise index.no_usable_video(ds.split_dir(split))
                self.datasets[split] = (CachedTrainClips(items, ds, self.seed) if split == "train"
                                        else CachedEvalClips(items, ds))
            else:
                lst = ds.write_list(index, self.work_dir / "clip_lists" / f"{split}.txt")
                cls = DecodedTrainClips if split == "train" else DecodedEvalClips
                self.datasets[split] = cls(lst, ds, len(index.clips))
            self.paths[split] = [c.path for c in index.clips]
            self.skipped += index.skipped
            skip_kinds.update(index.skip_kinds)
            self.empty_class_dirs += index.empty_class_dirs
            self.stats[f"data/n_{split}"] = len(index.clips)
        self.stats["data/skipped_clips"] = len(self.skipped)
        for kind, n in sorted(skip_kinds.items()):
            self.stats[f"data/skipped_clips_{kind}"] = n
        self.stats["data/empty_class_dirs"] = len(self.empty_class_dirs)
        self.stats["data/n_classes"] = len(self.classes)
        if self.skipped:
            log.warning("%d unusable clip(s) skipped: %s", len(self.skipped),
                        "; ".join(f"{Path(p).name}: {r}" for p, r in self.skipped[:5]))
        return self

    def loader(self, split: str, shuffle: bool | None = None) -> DataLoader:
        ds = self.ds
        data = self.datasets[split]
        train = split == "train"
        iterable = isinstance(data, IterableDataset)
        shuffle = (train if shuffle is None else shuffle) and not iterable
        # The cached training clips under DDP (or dataset.train_order=epoch): EpochShuffle, the same global batches
        # for any number of ranks. One process keeps torch's shuffle: the order the write-ups' numbers came from.
        sampler = None
        if shuffle and isinstance(data, CachedTrainClips) and (ds.train_order == "epoch" or _world_size() > 1):
            sampler = EpochShuffle(data, self.seed)
        return DataLoader(data, batch_size=ds.batch_size if train else ds.eval_batch_size,
                          shuffle=shuffle and sampler is None, sampler=sampler,
                          num_workers=0 if iterable else ds.num_workers,
                          persistent_workers=ds.num_workers > 0 and not iterable,
                          pin_memory=torch.cuda.is_available())
