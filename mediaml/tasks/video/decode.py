"""Decode a video once with PyAV and cut clips exactly as PyTorchVideo's ``EncodedVideoPyAV`` does.

PyTorchVideo decodes each clip again every time it is asked (``get_clip`` seeks and decodes, then
converts every frame of the window to float32 at full resolution). Here a video is decoded once
into RGB uint8 frames with their presentation timestamps; clips are then selected with the same
pts arithmetic (``secs_to_pts(..., round_mode="ceil")``, ``start <= pts < end``) so a clip cut here
holds the same frames as ``EncodedVideo.get_clip`` returns (tests/test_video_data.py checks it).

A video is only used whole: one that decodes short of what its container claims (``check_complete``:
more than SHORT_TOLERANCE_FRAMES frames or frame intervals missing, e.g. a truncated mp4 whose index
is at the front) raises UnusableVideo, as do empty, unreadable and video-less files; the callers skip
and count it (tests/faults/test_bad_clips.py).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mediaml.tasks.video.compat import install_torchvision_alias

install_torchvision_alias()

from pytorchvideo.data.utils import pts_to_secs, secs_to_pts  # noqa: E402
from pytorchvideo.transforms.functional import short_side_scale, uniform_temporal_subsample  # noqa: E402


#: How far a video may decode short of what its container claims and still be used: this many frames
#: fewer than the stream's frame count, and this many frame intervals less than its duration. Muxers
#: and decoders commonly disagree by a frame (a dropped last B-frame, an edit list); a truncated file
#: loses far more. All 250 real fight clips decode exactly what they claim (0 frames, 0.0 s short).
SHORT_TOLERANCE_FRAMES = 2
#: Extra slack when only the container duration is known (no stream duration): it is the longest stream,
#: and an audio track may run a little past the video (up to 0.066 s on the real clips).
CONTAINER_SLACK_S = 0.1

#: UnusableVideo.kind values; each is counted as data/skipped_clips_<kind>.
SKIP_KINDS = ("empty_file", "unreadable", "no_video_stream", "truncated", "too_short", "no_frame_in_clip")


class UnusableVideo(Exception):
    """A video that cannot be used: cannot be opened or decoded, decodes short of what its container
    claims, or is shorter than one clip. `reason` names the fault without the path; `kind` counts it."""

    def __init__(self, path, reason: str, kind: str = "unreadable"):
        assert kind in SKIP_KINDS, kind
        super().__init__(path, reason, kind)  # picklable: the args rebuild it
        self.path, self.reason, self.kind = str(path), reason, kind

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


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
            raise UnusableVideo(self.path, f"no frame in [{float(start_sec):.3f}, {float(end_sec):.3f}) s "
                                           f"(duration {float(self.duration):.3f} s)", "no_frame_in_clip")
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


def _open_error(path, e: Exception) -> UnusableVideo:
    """The UnusableVideo for a file PyAV cannot open or decode, naming the mp4 fault when there is one."""
    why = getattr(e, "strerror", None) or str(e)  # av errors: strerror is the message without the path
    reason = f"cannot decode ({type(e).__name__}: {why})"
    fault = mp4_box_fault(path)
    return UnusableVideo(path, f"{reason}: {fault}" if fault else reason, "truncated" if fault else "unreadable")


def mp4_box_fault(path) -> str | None:
    """Why an mp4 (a file that starts with an 'ftyp' box) is incomplete, from its top-level boxes: a box
    that runs past the end of the file, or no 'moov' index. None when it is not an mp4 or looks whole.
    Only read after PyAV failed to open the file."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            boxes, off = [], 0
            while off + 8 <= size:
                fh.seek(off)
                head = fh.read(16)
                n, kind = int.from_bytes(head[:4], "big"), head[4:8].decode("latin-1")
                if n == 1 and len(head) == 16:
                    n = int.from_bytes(head[8:16], "big")
                elif n == 0:
                    n = size - off
                if not boxes and kind != "ftyp":
                    return None
                if n < 8:
                    return f"mp4 box '{kind}' at byte {off} has an invalid size {n}"
                boxes.append(kind)
                if off + n > size:
                    missing = "" if "moov" in boxes else "; no 'moov' index box"
                    return (f"truncated mp4: its '{kind}' box at byte {off} claims {n} bytes, "
                            f"the file ends {off + n - size} bytes short{missing}")
                off += n
    except OSError:
        return None
    return None if "moov" in boxes else "mp4 without a 'moov' index box"


def _video_stream(container, path):
    if not container.streams.video:
        others = ", ".join(s.type for s in container.streams) or "none"
        raise UnusableVideo(path, f"no video stream (streams: {others})", "no_video_stream")
    return container.streams.video[0]


def _check_size(path) -> None:
    if os.path.getsize(path) == 0:
        raise UnusableVideo(path, "empty file (0 bytes)", "empty_file")


def container_claim(container, stream) -> tuple[float | None, int, float]:
    """(seconds, frames, slack) the container claims for the video stream: the stream's duration (else
    the container's, with CONTAINER_SLACK_S of slack), its frame count (0 = not stored)."""
    if stream.duration:  # a length in time_base units (not a pts: the stream start is not subtracted)
        return float(stream.duration * stream.time_base), int(stream.frames or 0), 0.0
    if container.duration:
        return container.duration / 1e6, int(stream.frames or 0), CONTAINER_SLACK_S
    return None, int(stream.frames or 0), 0.0


def check_complete(path, n: int, end_sec: float, claim: tuple, frame_s: float, read: str = "decoded") -> None:
    """Raise UnusableVideo(kind="truncated") when the n frames/packets read, ending at end_sec (the last
    one's pts + its duration, from the stream start), fall short of the container's claim by more than
    SHORT_TOLERANCE_FRAMES frames or frame intervals (frame_s seconds each)."""
    secs, frames, slack = claim
    short_s = secs is not None and end_sec + SHORT_TOLERANCE_FRAMES * frame_s + slack + 1e-6 < secs
    short_n = frames > 0 and n + SHORT_TOLERANCE_FRAMES < frames
    if short_s or short_n:
        of = f"{secs:.2f} s" if secs is not None else "length"
        count = f" ({n} of {frames} frames)" if frames else f" ({n} frames)"
        raise UnusableVideo(path, f"truncated: {read} {end_sec:.2f} s of the {of} the container claims{count}",
                            "truncated")


def require_clip_length(path, duration: float, clip_duration: float) -> None:
    """A video shorter than one clip is skipped (kind="too_short"), a 1-frame video included.

    PyTorchVideo's clip samplers would still cut a clip from it (the start clamped to 0, the window
    running past the end) and UniformTemporalSubsample would repeat its few frames up to num_frames: a
    still image labelled as motion, the frozen frames of a truncated file. So it is skipped instead."""
    if duration + 1e-6 < clip_duration:
        raise UnusableVideo(path, f"{float(duration):.3f} s is shorter than "
                                  f"dataset.clip_duration={clip_duration} s", "too_short")


def _frame_s(stream, frame_duration=None) -> float:
    """Seconds per frame: the last frame's (packet's) duration, else 1 / the stream's rate, else 0."""
    if frame_duration:
        return float(frame_duration * stream.time_base)
    rate = stream.average_rate or stream.guessed_rate
    return 1.0 / float(rate) if rate else 0.0


def probe_duration(path: str | Path) -> float:
    """Open the container and return the duration as PyTorchVideo computes it (no decoding when the
    header has it). Raises UnusableVideo when the file cannot be opened or decoded at all, or when its
    packets stop short of what the header claims (check_complete on the demuxed packets: no decoding)."""
    import av

    try:
        _check_size(path)
        with av.open(str(path)) as container:
            stream = _video_stream(container, path)
            start = stream.start_time or 0
            # One decoded frame proves the stream is decodable; the packets (demuxed, not decoded)
            # show whether the file holds what its header claims (a truncated faststart mp4 does not).
            first, n, last, last_dur = None, 0, None, None
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None:
                    continue
                n += 1
                if last is None or packet.pts > last:
                    last, last_dur = packet.pts, packet.duration
                if first is None:
                    first = next(iter(packet.decode()), None)
            if first is None:
                first = next(iter(stream.codec_context.decode(None)), None)  # frames held in the decoder
            if first is None:
                raise UnusableVideo(path, "no decodable video frame")
            check_complete(path, n, float(pts_to_secs(last, stream.time_base, start)) + _frame_s(stream, last_dur),
                           container_claim(container, stream), _frame_s(stream), read="found packets for")
            if stream.duration is not None:
                return float(pts_to_secs(stream.duration, stream.time_base, start))
        return decode_video(path).duration
    except UnusableVideo:
        raise
    except Exception as e:  # av.error.* (InvalidDataError, ...), OSError
        raise _open_error(path, e) from e


def decode_video(path: str | Path) -> DecodedVideo:
    """Decode every frame of the first video stream to RGB uint8 (what EncodedVideoPyAV does per clip).
    Raises UnusableVideo when it cannot, or when it decodes short of the container's claim (check_complete)."""
    import av

    try:
        _check_size(path)
        with av.open(str(path)) as container:
            stream = _video_stream(container, path)
            stream.thread_type = "AUTO"
            start = stream.start_time if stream.start_time is not None else 0
            by_pts = {}
            for frame in container.decode(video=0):
                if frame.pts is None:
                    continue
                by_pts[frame.pts] = frame
            time_base, stream_duration = stream.time_base, stream.duration
            claim, frame_s = container_claim(container, stream), _frame_s(stream)
            last_frame_s = _frame_s(stream, by_pts[max(by_pts)].duration) if by_pts else frame_s
    except UnusableVideo:
        raise
    except Exception as e:
        raise _open_error(path, e) from e
    if not by_pts:
        raise UnusableVideo(path, "no decodable video frame")
    pts = sorted(by_pts)
    check_complete(path, len(pts), float(pts_to_secs(pts[-1], time_base, start)) + last_frame_s, claim, frame_s)
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
