"""Classify video files with a task=video checkpoint.

    python -m mediaml.tasks.video.predict CHECKPOINT.ckpt VIDEO_OR_FOLDER [...] [--stride 0.5] [--json out.json]

Each video is decoded once and cut into `clip_duration` windows (the checkpoint's training setting)
sliding over the whole video with `--stride` seconds between starts (default: the clip duration, i.e.
PyTorchVideo's uniform clip sampler); every window goes through the evaluation transform, and the
clip probabilities are averaged. One line per file: path, label, probability of that label, clips.
Folders are searched recursively for video files. Unusable files are reported and skipped.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mediaml.tasks.video.compat import install_torchvision_alias

install_torchvision_alias()

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def find_videos(inputs) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_SUFFIXES and f.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return files


def windows(duration: float, clip: float, stride: float) -> list[tuple[float, float]]:
    """Starts 0, stride, 2*stride, ... while a whole clip fits; a video shorter than one clip gives one window."""
    out, s = [], 0.0
    while s + clip <= duration + 1e-6:
        out.append((s, s + clip))
        s += stride
    if not out:
        out.append((0.0, duration + 1e-3))
    elif out[-1][1] < duration - 0.25 * clip:  # cover the tail with a last window ending at the end
        out.append((duration - clip, duration))
    return out


def load_model(ckpt: str, device=None):
    import torch

    from mediaml.tasks.video.module import VideoClassifier

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = VideoClassifier.load_from_checkpoint(ckpt, map_location=device)
    model.eval().to(device)
    return model, device


def predict_file(model, device, path: Path, stride: float | None = None, batch: int = 8) -> dict:
    import torch

    from mediaml.tasks.video.cache import center_crop, normalize
    from mediaml.tasks.video.decode import decode_video, resize_uint8, subsample

    d = model.hparams.data
    clip = float(d["clip_duration"])
    video = decode_video(path)
    tensors = []
    for s, e in windows(float(video.duration), clip, float(stride or clip)):
        x = resize_uint8(subsample(video.clip(s, e), d["num_frames"]), d["eval_short_side"])
        tensors.append(normalize(center_crop(x, d["crop"]), d["mean"], d["std"]))
    probs = []
    with torch.no_grad():
        for i in range(0, len(tensors), batch):
            x = torch.stack(tensors[i:i + batch]).to(device)
            probs.append(model.probabilities(model(x)).float().cpu())
    p = torch.cat(probs).mean(0)
    if model.binary:
        per_class = torch.stack([1 - p, p])
    else:
        per_class = p
    k = int(per_class.argmax())
    return {"path": str(path), "label": model.classes[k], "probability": float(per_class[k]),
            "probabilities": {c: float(v) for c, v in zip(model.classes, per_class)}, "clips": len(tensors)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mediaml.tasks.video.predict", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="a task=video checkpoint (.ckpt), e.g. outputs/video/runs/<run>/checkpoints/last.ckpt")
    ap.add_argument("inputs", nargs="+", help="video files and/or folders")
    ap.add_argument("--stride", type=float, default=None, help="seconds between clip starts (default: clip duration)")
    ap.add_argument("--json", default=None, help="also write all predictions to this JSON file")
    args = ap.parse_args(argv)

    from mediaml.tasks.video.decode import UnusableVideo

    model, device = load_model(args.checkpoint)
    results, skipped = [], 0
    for f in find_videos(args.inputs):
        try:
            r = predict_file(model, device, f, args.stride)
        except UnusableVideo as e:
            skipped += 1
            print(f"skipped\t{f}\t{e}", file=sys.stderr)
            continue
        results.append(r)
        print(f"{r['path']}\t{r['label']}\t{r['probability']:.4f}\t{r['clips']} clips", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if skipped:
        print(f"{skipped} file(s) skipped", file=sys.stderr)
    return 0 if results or not skipped else 1


if __name__ == "__main__":
    sys.exit(main())
