"""Video clip folders for task=video: `<root>/<split>/<label>/*.mp4`, labels from folder names.

Two ways to feed a model, same clips and the same pixel steps:

* ``cache=false`` (seed 002's way): PyTorchVideo ``labeled_video_dataset`` + ``make_clip_sampler``
  decode every clip every epoch (random clips for training, ``constant_clips_per_video`` for evaluation).
* ``cache=true`` (default): each video is decoded once (``video_cache.py``) into uint8 tensors on disk —
  training videos at the working fps and short side, evaluation clips exactly as the PyTorchVideo
  evaluation pipeline cuts them — and every epoch and later run reads those.

Unusable videos (empty, cannot be opened/decoded, no video stream, decoding short of what the container
claims, shorter than one clip: ``decode.UnusableVideo``) and empty class folders are skipped, logged with
their reason and counted (``data/skipped_clips``, ``data/skipped_clips_<kind>``, ``data/empty_class_dirs``);
a split with no usable video is a DataError naming its folder.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from mediaml.errors import ConfigError, DataError, DataNotFoundError

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


@dataclass
class Clip:
    path: str
    label: int


@dataclass
class SplitIndex:
    split: str
    clips: list[Clip]
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (path, reason)
    empty_class_dirs: list[str] = field(default_factory=list)
    skip_kinds: list[str] = field(default_factory=list)            # UnusableVideo.kind of each skipped

    def skip(self, path, reason: str, kind: str) -> None:
        self.skipped.append((str(path), reason))
        self.skip_kinds.append(kind)
        log.warning("%s split: skipped clip %s: %s", self.split, path, reason)

    def no_usable_video(self, d: Path) -> DataError:
        """The error for a split whose every video was skipped (or that has none), naming its folder."""
        reasons = "; ".join(f"{Path(p).name}: {r}" for p, r in self.skipped[:3])
        more = f"; ... {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
        return DataError(f"{d}: the {self.split} split has no usable video ({len(self.skipped)} skipped"
                         f"{': ' + reasons + more if reasons else ''}; empty class folders: "
                         f"{self.empty_class_dirs}); expected {d}/<label>/*.mp4")


SPLITS = ("train", "val", "test")


class VideoFolderDataset:
    """`dataset=surveillance_fight` (and any folder of labelled clips with the same layout).

    `splits`: {train: Train, val: Validation, test: Test}, each split a folder of `<label>/` folders under `root`;
    a subset is fine where a run needs less (`task.mode=evaluate` reads only `test`). `splits: null` is one
    folder of `<label>/` folders (`root` itself), cut per class into `split_fractions` of its videos (seeded by
    `split_seed`, so every class is in every split in its share: a stratified split).
    """

    def __init__(self, name: str, root: str, splits: dict | None = None, data_dir: str | None = None, source: str = "",
                 tasks=None, clip_duration: float = 1.0, num_frames: int = 10, train_short_side=(128, 144),
                 eval_short_side: int = 128, crop: int = 112, hflip: float = 0.5,
                 mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225), eval_clips_per_video: int = 3,
                 cache: bool = True, cache_dir: str | None = None, cache_fps: float = 10.0,
                 batch_size: int = 5, eval_batch_size: int | None = None, num_workers: int = 0,
                 cache_workers: int = 2, train_order: str = "auto", split_fractions: dict | None = None,
                 split_seed: int = 0, **extra):
        self.name, self.source = name, source
        self.data_dir = Path(data_dir) if data_dir else None
        self.root = Path(data_dir) / root if data_dir else Path(root)
        self.fractions = None
        if splits is None:  # one folder of class folders, cut by split_fractions
            fr = dict(split_fractions or {"train": 0.7, "val": 0.15, "test": 0.15})
            bad = {k: v for k, v in fr.items() if k not in SPLITS or not 0 <= float(v) <= 1}
            if bad or abs(sum(float(v) for v in fr.values()) - 1) > 1e-6:
                raise DataError(f"dataset={name}: split_fractions={fr}: expected fractions of {list(SPLITS)} "
                                f"between 0 and 1 that sum to 1")
            self.fractions = {k: float(fr.get(k, 0.0)) for k in SPLITS}
            splits = {k: "." for k, v in self.fractions.items() if v > 0}
        unknown = [k for k in splits if k not in SPLITS]
        if unknown:
            raise DataError(f"dataset={name}: splits {unknown} are not among {list(SPLITS)}")
        self.splits = dict(splits)
        self.split_seed = int(split_seed)
        self.clip_duration = float(clip_duration)
        self.num_frames = int(num_frames)
        self.train_short_side = tuple(int(s) for s in train_short_side)
        self.eval_short_side = int(eval_short_side)
        self.crop, self.hflip = int(crop), float(hflip)
        self.mean, self.std = tuple(mean), tuple(std)
        self.eval_clips_per_video = int(eval_clips_per_video)
        self.cache = bool(cache)
        self.cache_dir = Path(cache_dir) if cache_dir else self.root.parent / ".mediaml_cache"
        self.cache_fps = float(cache_fps)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.num_workers = int(num_workers)
        self.cache_workers = int(cache_workers)
        # The cached training clips' order and random draws. "auto": torch's shuffle and the process's
        # generator in one process (seed 002's rule: what experiments/*.md were measured with), EpochShuffle
        # under DDP; "epoch": EpochShuffle always (one process then trains on the global batches of N ranks).
        if train_order not in ("auto", "epoch"):
            raise ConfigError(f"dataset.train_order={train_order!r}: expected auto or epoch")
        self.train_order = train_order
        self.extra = extra
        self._classes: list[str] | None = None
        if self.train_short_side[0] > self.train_short_side[1]:
            raise ConfigError(f"dataset.train_short_side={list(self.train_short_side)}: expected [min, max]")
        if min(self.train_short_side[0], self.eval_short_side) < self.crop:
            raise ConfigError(f"dataset.crop={self.crop} is larger than the short side "
                             f"(train {list(self.train_short_side)}, eval {self.eval_short_side})")

    # -- inputs --------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Create the data if this dataset generates it (synthetic). Real folders need nothing."""

    def split_dir(self, split: str) -> Path:
        return self.root / self.splits[split]

    def check(self) -> None:
        for split in self.splits:
            self.check_split(split)

    def check_split(self, split: str) -> None:
        if split not in self.splits:
            raise DataError(f"dataset={self.name}: no {split} split in dataset.splits={self.splits}")
        d = self.split_dir(split)
        if not d.is_dir():
            raise DataNotFoundError(d, self.name, self.source or "", self.data_dir)

    @property
    def classes(self) -> list[str]:
        """Class names: the sorted sub-folders of the training split (PyTorchVideo's numbering; without a training
        split, of the first split given), unless a trained model fixed them (`use_classes`)."""
        if self._classes is None:
            d = self.split_dir("train" if "train" in self.splits else next(iter(self.splits)))
            names = sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []
            if not names:
                raise DataError(f"{d}: no class folders (expected {d}/<label>/*.mp4)")
            self._classes = names
        return self._classes

    def use_classes(self, classes) -> None:
        """Number the labels as a trained model does (its classes, in its order): evaluating a checkpoint on a
        folder that lacks a class, or lists them otherwise, keeps every label's number."""
        self._classes = list(classes)

    def _split_files(self, split: str, label: int, files: list[Path]) -> list[Path]:
        """The files of `split` among a class's files of the one folder: a seeded permutation per class, cut by
        `split_fractions` (a class of n videos gets round(n * fraction) in each split, the rest in train)."""
        import numpy as np

        order = np.random.default_rng([self.split_seed, label]).permutation(len(files))
        n = len(files)
        n_val, n_test = (int(round(n * self.fractions[k])) for k in ("val", "test"))
        if n >= 3:  # every split with a fraction gets at least one video of each class
            n_val = max(n_val, 1) if self.fractions["val"] > 0 else 0
            n_test = max(n_test, 1) if self.fractions["test"] > 0 else 0
        cut = {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
        if self.fractions["train"] == 0:
            cut["train"] = order[:0]
        return [files[i] for i in sorted(cut[split])]

    def index(self, split: str, probe: bool = True) -> SplitIndex:
        """Every video of a split with its label; with probe=True unusable videos are skipped and named."""
        from mediaml.tasks.video.decode import UnusableVideo, probe_duration, require_clip_length

        d = self.split_dir(split)
        out = SplitIndex(split, [])
        for label, cls in enumerate(self.classes):
            cdir = d / cls
            files = sorted(p for p in cdir.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES) if cdir.is_dir() else []
            if files and self.fractions is not None:
                files = self._split_files(split, label, files)
            if not files:
                out.empty_class_dirs.append(str(cdir))
                log.warning("%s split: class folder %s has no video files: skipped", split, cdir)
                continue
            for f in files:
                if probe:
                    try:
                        require_clip_length(f, probe_duration(f), self.clip_duration)
                    except UnusableVideo as e:
                        out.skip(f, e.reason, e.kind)
                        continue
                out.clips.append(Clip(str(f), label))
        extra = sorted(p.name for p in d.iterdir() if p.is_dir() and p.name not in self.classes) if d.is_dir() else []
        if extra:
            raise DataError(f"{d}: class folder(s) {extra} are not in the training split's classes {self.classes}")
        if not out.clips:
            raise out.no_usable_video(d)
        return out

    # -- settings that change the pixels (cache key) -------------------------------------------
    def cache_settings(self) -> dict:
        # version 3: truncated files are skipped (decode.check_complete); v2 entries may hold them
        return {"version": 3, "clip_duration": self.clip_duration, "num_frames": self.num_frames,
                "train_short_side_max": self.train_short_side[1], "eval_short_side": self.eval_short_side,
                "eval_clips_per_video": self.eval_clips_per_video, "cache_fps": self.cache_fps,
                "decoder": "pyav-rgb24", "resize": "bilinear-round"}

    def cache_key(self) -> str:
        return hashlib.sha1(json.dumps(self.cache_settings(), sort_keys=True).encode()).hexdigest()[:12]

    def write_list(self, index: SplitIndex, path: Path) -> Path:
        """A `path label` list file for PyTorchVideo's labeled_video_dataset (usable clips only)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh, delimiter=" ")
            for c in index.clips:
                if " " in c.path:
                    raise DataError(f"{c.path}: PyTorchVideo list files cannot hold paths with spaces")
                w.writerow([c.path, c.label])
        return path


class SyntheticClipsDataset(VideoFolderDataset):
    """Seeded small mp4 clips written with PyAV, same folder layout as the real data.

    Planted motion classes: a textured square crosses a noisy background horizontally (`horizontal`),
    vertically (`vertical`) or stays put with jitter (`static`); start position, speed, size and
    colours are random, so a single frame does not tell the class, the motion does.
    """

    MOTIONS = ("horizontal", "vertical", "static", "diagonal")

    def __init__(self, name: str, root: str, seed: int = 0, classes=("horizontal", "vertical"),
                 n_per_class=None, width: int = 80, height: int = 64, fps: int = 10, duration: float = 2.0,
                 noise: float = 20.0, corrupt: int = 0, short: int = 0, codec: str = "mpeg4", **kw):
        kw.setdefault("splits", {"train": "Train", "val": "Validation", "test": "Test"})
        super().__init__(name=name, root=root, **kw)
        self.seed = int(seed)
        self.motion_classes = list(classes)
        bad = [c for c in self.motion_classes if c not in self.MOTIONS]
        if bad:
            raise ConfigError(f"dataset.classes: unknown motion(s) {bad}; expected some of {list(self.MOTIONS)}")
        self.n_per_class = dict(n_per_class or {"train": 16, "val": 8, "test": 8})
        self.width, self.height, self.fps, self.duration = int(width), int(height), int(fps), float(duration)
        self.noise = float(noise)
        self.corrupt, self.short, self.codec = int(corrupt), int(short), codec
        spec = {"seed": self.seed, "classes": self.motion_classes, "n": self.n_per_class, "w": self.width,
                "h": self.height, "fps": self.fps, "dur": self.duration, "noise": self.noise,
                "corrupt": self.corrupt, "short": self.short, "codec": self.codec, "v": 1}
        self.spec = spec
        self.root = Path(root) / hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
        if not kw.get("cache_dir"):
            self.cache_dir = self.root / ".cache"

    def check(self) -> None:  # generated on demand: nothing to find
        return

    def check_split(self, split: str) -> None:
        if split not in self.splits:
            super().check_split(split)

    def prepare(self) -> None:
        done = self.root / "DONE.json"
        if done.is_file():
            return
        from filelock import FileLock

        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.root) + ".lock"):
            if done.is_file():
                return
            generate_synthetic_clips(self.root, self.splits, self.motion_classes, self.n_per_class, self.seed,
                                     self.width, self.height, self.fps, self.duration, self.noise,
                                     self.corrupt, self.short, self.codec)
            done.write_text(json.dumps(self.spec, indent=2))
        log.info("synthetic clips written to %s", self.root)


def write_mp4(path: Path, frames, fps: int, codec: str = "mpeg4", faststart: bool = False) -> None:
    """Write RGB uint8 frames (T, H, W, 3) to an mp4 with PyAV (faststart: the 'moov' index before the
    frames, as ``ffmpeg -movflags faststart`` writes it)."""
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", options={"movflags": "faststart"} if faststart else {}) as out:
        stream = out.add_stream(codec, rate=int(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        # mpeg4 (MPEG-4 Part 2) encodes the same pixels every time; libx264 here does not (measured:
        # two encodes of the same frames decode to frames up to 17 levels apart), so seeded data is mpeg4.
        stream.options = {"qscale": "3"} if codec == "mpeg4" else {"crf": "18", "preset": "veryfast"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def synthetic_frames(motion: str, rng, width: int, height: int, n: int, noise: float):
    import numpy as np

    bg = rng.uniform(40, 120, size=3)
    yy, xx = np.mgrid[0:height, 0:width]
    texture = (20 * np.sin(xx / rng.uniform(3, 8) + rng.uniform(0, 6))
               * np.cos(yy / rng.uniform(3, 8)))[..., None]
    size = int(rng.integers(max(6, height // 6), max(8, height // 3)))
    color = rng.uniform(170, 255, size=3)
    speed = rng.uniform(0.8, 1.6) * min(width, height) / n * 1.5 * rng.choice([-1, 1])
    x0 = rng.uniform(0, width - size)
    y0 = rng.uniform(0, height - size)
    frames = np.empty((n, height, width, 3), dtype=np.uint8)
    for t in range(n):
        dx = dy = 0.0
        if motion in ("horizontal", "diagonal"):
            dx = speed * t
        if motion in ("vertical", "diagonal"):
            dy = speed * t
        if motion == "static":
            dx, dy = rng.normal(0, 0.7, size=2)
        x = int(round((x0 + dx) % (width - size)))
        y = int(round((y0 + dy) % (height - size)))
        img = bg + texture + rng.normal(0, noise, size=(height, width, 1))
        img = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img
        img[y:y + size, x:x + size] = color
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)
    return frames


def generate_synthetic_clips(root: Path, splits: dict, classes, n_per_class: dict, seed: int, width: int,
                             height: int, fps: int, duration: float, noise: float, corrupt: int = 0,
                             short: int = 0, codec: str = "mpeg4") -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    n_frames = int(round(fps * duration))
    for split_key, split_dir in splits.items():
        for cls in classes:
            for i in range(int(n_per_class.get(split_key, 0))):
                frames = synthetic_frames(cls, rng, width, height, n_frames, noise)
                write_mp4(root / split_dir / cls / f"{cls}_{i:03d}.mp4", frames, fps, codec)
    train_dir = root / splits["train"] / classes[0]
    for i in range(corrupt):  # a truncated copy of a good clip: the moov atom is lost, it cannot be opened
        good = (train_dir / f"{classes[0]}_{i:03d}.mp4").read_bytes()
        (train_dir / f"zz_corrupt_{i:03d}.mp4").write_bytes(good[: len(good) // 3])
    for i in range(short):  # a clip shorter than any sensible clip duration (2 frames)
        frames = synthetic_frames(classes[0], rng, width, height, 2, noise)
        write_mp4(train_dir / f"zz_short_{i:03d}.mp4", frames, fps, codec)

