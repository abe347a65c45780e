"""Decode a video once with PyAV and cut clips exactly as PyTorchVideo's ``EncodedVideoPyAV`` does.

PyTorchVideo decodes each clip again every time it is asked (``get_clip`` seeks and decodes, then
converts every frame of the window to float32 at full resolution). Here a video is decoded once
into RGB uint8 frames with their presentation timestamps; clips are then selected with the same
pts arithmetic (``secs_to_pts(..., round_mode="ceil")``, ``start <= pts < end``) so a clip cut here
holds the same frames as ``EncodedVideo.get_clip`` returns (tests/test_video_data.py checks it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mediaml.tasks.video.compat import install_torchvision_alias

install_torchvision_alias()

from pytorchvideo.data.utils import pts_to_secs, secs_to_pts  # noqa: E402
from pytorchvideo.transforms.functional import short_side_scale, uniform_temporal_subsample  # noqa: E402


class UnusableVideo(Exception):
    """A video that cannot be used: cannot be opened or decoded, or is shorter than one clip."""


@dataclass
class DecodedVideo:
    path: str
    frames: list          # decoded av.VideoFrame objects (YUV), sorted by pts; RGB only on demand
    pts: list[int]
    time_base: object     # fractions.Fraction
    start_pts: int
    duration: object      # seconds, exactly as EncodedVideoPyAV.duration (a Fraction: clip starts depend on it)

    def rgb(self, i: int):
        """Frame i as RGB uint8 (H, W, 3), converted as EncodedVideoPyAV does (frame.to_rgb().to_ndarray())."""
        return self.frames[i].to_rgb().to_ndarray()

    def window(self, start_sec, end_sec) -> list[int]:
        """Indices of the frames in [start_sec, end_sec), with EncodedVideoPyAV.get_clip's pts rule."""
        lo = secs_to_pts(start_sec, self.time_base, self.start_pts, round_mode="ceil")
        hi = secs_to_pts(end_sec, self.time_base, self.start_pts, round_mode="ceil")
        idx = [i for i, p in enumerate(self.pts) if lo <= p < hi]
        if not idx:
            raise UnusableVideo(f"{self.path}: no frame in [{float(start_sec):.3f}, {float(end_sec):.3f}) s "
                                f"(duration {float(self.duration):.3f} s)")
        return idx

    def stack(self, idx: list[int]) -> torch.Tensor:
        return torch.from_numpy(np.stack([self.rgb(i) for i in idx])).permute(3, 0, 1, 2).contiguous()

    def clip(self, start_sec, end_sec) -> torch.Tensor:
        """Frames in [start_sec, end_sec) as uint8 (C, T, H, W), the frames EncodedVideoPyAV.get_clip returns."""
        return self.stack(self.window(start_sec, end_sec))

    def subsampled_clip(self, start_sec, end_sec, num_frames: int) -> torch.Tensor:
        """== subsample(self.clip(start, end), num_frames), converting only the frames it keeps."""
        idx = self.window(start_sec, end_sec)
        keep = torch.linspace(0, len(idx) - 1, int(num_frames)).clamp(0, len(idx) - 1).long().tolist()
        return self.stack([idx[k] for k in keep])

    def fps_indices(self, fps: float) -> list[int]:
        """Index of the frame shown at each time k/fps (k = 0, 1, ... while k/fps < duration)."""
        secs = [pts_to_secs(p, self.time_base, self.start_pts) for p in self.pts]
        n = max(1, int(math.ceil(float(self.duration) * fps - 1e-9)))
        idx, j = [], 0
        for k in range(n):
            t = k / fps
            while j + 1 < len(secs) and secs[j + 1] <= t + 1e-9:
                j += 1
            idx.append(j)
        return idx

    def frames_at_fps(self, fps: float) -> torch.Tensor:
        """The frame shown at each time k/fps, uint8 (C, N, H, W)."""
        return self.stack(self.fps_indices(fps))


def probe_duration(path: str | Path) -> float:
    """Open the container and return the duration as PyTorchVideo computes it (no decoding when the
    header has it). Raises UnusableVideo when the file cannot be opened or decoded at all."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UnusableVideo(f"{path}: no video stream")
            stream = container.streams.video[0]
            start = stream.start_time or 0
            # One decoded frame proves the stream is decodable (a truncated mp4 usually fails to open).
            first = next(iter(container.decode(video=0)), None)
            if first is None:
                raise UnusableVideo(f"{path}: no decodable video frame")
            if stream.duration is not None:
                return float(pts_to_secs(stream.duration, stream.time_base, start))
        return decode_video(path).duration
    except UnusableVideo:
        raise
    except Exception as e:  # av.error.* (InvalidDataError, ...), OSError
        raise UnusableVideo(f"{path}: cannot decode ({type(e).__name__}: {e})") from e


def decode_video(path: str | Path) -> DecodedVideo:
    """Decode every frame of the first video stream to RGB uint8 (what EncodedVideoPyAV does per clip)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UnusableVideo(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            start = stream.start_time if stream.start_time is not None else 0
            by_pts = {}
            for frame in container.decode(video=0):
                if frame.pts is None:
                    continue
                by_pts[frame.pts] = frame
            time_base, stream_duration = stream.time_base, stream.duration
    except UnusableVideo:
        raise
    except Exception as e:
        raise UnusableVideo(f"{path}: cannot decode ({type(e).__name__}: {e})") from e
    if not by_pts:
        raise UnusableVideo(f"{path}: no decodable video frame")
    pts = sorted(by_pts)
    last = stream_duration if stream_duration is not None else pts[-1]
    # Not float(): PyTorchVideo's clip samplers get this Fraction, and e.g. 2.2 s as a float moves the
    # second of three constant clips by one pts, so a frame at the window edge would differ.
    duration = pts_to_secs(last, time_base, start)
    return DecodedVideo(str(path), [by_pts[p] for p in pts], pts, time_base, start, duration)


# --- pixel steps shared by the cached and the decode-every-epoch pipelines -------------------------
def resize_uint8(x: torch.Tensor, short_side: int) -> torch.Tensor:
    """(C, T, H, W) uint8 or float in [0, 255] -> uint8 with the short side scaled to `short_side` (bilinear)."""
    y = short_side_scale(x.float(), int(short_side), interpolation="bilinear")
    return y.round_().clamp_(0, 255).to(torch.uint8)


def subsample(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """PyTorchVideo's UniformTemporalSubsample on (C, T, H, W)."""
    return uniform_temporal_subsample(x, int(num_frames), temporal_dim=-3)
