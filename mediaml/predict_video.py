"""Deprecated alias of :mod:`mediaml.tasks.video.predict` (kept for one release; it will be removed).

    python -m mediaml.tasks.video.predict CHECKPOINT.ckpt VIDEO_OR_FOLDER [...]
"""
from __future__ import annotations

import warnings

from mediaml.tasks.video.predict import *  # noqa: F401,F403
from mediaml.tasks.video.predict import find_videos, load_model, main, predict_file, windows  # noqa: F401

warnings.warn("mediaml.predict_video moved to mediaml.tasks.video.predict; the old name will be removed",
              FutureWarning, stacklevel=2)

if __name__ == "__main__":
    import sys

    sys.exit(main())
