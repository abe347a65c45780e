"""Progress bars for the stages that can take more than a few seconds: one library (tqdm, also Lightning's), one
switch. Shown when stderr is a terminal, hidden under `CI=true` and in logs; `MEDIAML_PROGRESS=1` / `0` forces
them on or off. A bar appears only after `delay` seconds, so quick stages stay quiet.

    with bar(total=n, desc="cache: decoding train videos", unit="video") as b:
        ...; b.update(1)
"""
from __future__ import annotations

import logging
import os
import re
import sys


def enabled() -> bool:
    forced = os.environ.get("MEDIAML_PROGRESS", "").strip().lower()
    if forced:
        return forced not in ("0", "false", "no", "off")
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        return False
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def forced() -> bool:
    return os.environ.get("MEDIAML_PROGRESS", "").strip().lower() in ("1", "true", "yes", "on")


def bar(total=None, desc: str = "", unit: str = "it", delay: float = 2.0, **kw):
    """A tqdm bar (ETA from its rate), or a disabled one that costs nothing. Forced on, it shows at once."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, delay=0 if forced() else delay, mininterval=0.5,
                dynamic_ncols=True, disable=not enabled(), file=sys.stderr, **kw)


class Word2VecProgress(logging.Handler):
    """gensim's Word2Vec reports its progress as INFO log lines ("EPOCH 0 - PROGRESS: at 42.10% examples"): this
    handler turns them into one bar over all epochs and keeps them out of the run log (gensim's other INFO lines
    stay hidden, as before)."""

    LINE = re.compile(r"EPOCH (\d+)(?: - PROGRESS: at ([0-9.]+)%)?")

    def __init__(self, epochs: int, desc: str = "word2vec"):
        super().__init__(logging.INFO)
        self.epochs = max(1, int(epochs))
        self.bar = bar(total=100 * self.epochs, desc=f"{desc} ({self.epochs} epoch{'s' * (self.epochs > 1)})",
                       unit="%", bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f}% [{elapsed}<{remaining}]")
        self.logger = logging.getLogger("gensim.models.word2vec")

    def emit(self, record: logging.LogRecord) -> None:
        m = self.LINE.match(record.getMessage())
        if m:
            done = 100 * int(m.group(1)) + (float(m.group(2)) if m.group(2) else 100.0)
            self.bar.update(max(0.0, min(done, 100 * self.epochs) - self.bar.n))

    def __enter__(self) -> "Word2VecProgress":
        if self.bar.disable:
            return self
        self._level, self._propagate = self.logger.level, self.logger.propagate
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False  # these lines go to the bar, not to the console or the run log
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        if not self.bar.disable:
            self.logger.removeHandler(self)
            self.logger.setLevel(self._level)
            self.logger.propagate = self._propagate
        self.bar.close()


def count_calls(obj, method: str, progress) -> None:
    """Advance `progress` by one at each call of `obj.method` (this object only), e.g. scikit-learn LDA's EM
    passes, which it makes in a loop of its own; nothing happens if the method is not there."""
    original = getattr(obj, method, None)
    if original is None or progress.disable:
        return

    def counted(*args, **kwargs):
        out = original(*args, **kwargs)
        progress.update(1)
        return out

    setattr(obj, method, counted)
