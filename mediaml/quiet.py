"""A quiet console: third-party lines we know do not apply to a mediaml run are filtered, each with the reason;
everything else (real warnings included) still prints. Installed by the run's spine (mediaml.run) for every task;
`dedupe()` once a task has imported Lightning."""
from __future__ import annotations

import logging
import warnings
from typing import Mapping

# (category, message regex, why it does not apply)
KNOWN_WARNINGS = [
    (FutureWarning, r"`torch\.jit\.script(_method)?` is deprecated",
     "PyTorchVideo's own modules use it at import; nothing a user of task=video can change"),
    (Warning, r".*isinstance\(treespec, LeafSpec\)` is deprecated",
     "inside Lightning's own batch handling with this torch; not our code, no effect on results"),
    (UserWarning, r"The specified dataset source can be interpreted in multiple ways",
     "Tracker.log_input passes a local file's URI: MLflow picks the local-file source, which is the one meant"),
]

# (logger name, message part, why)
KNOWN_LOG_LINES = [
    ("lightning.pytorch.utilities.rank_zero", "litlogger",
     "an advert for Lightning's cloud logger: runs are tracked in MLflow already"),
]


class _Drop(logging.Filter):
    def __init__(self, part: str):
        super().__init__()
        self.part = part

    def filter(self, record: logging.LogRecord) -> bool:
        return self.part not in record.getMessage()


def install() -> None:
    for category, pattern, _why in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern, category=category)
    for name, part, _why in KNOWN_LOG_LINES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Drop) and f.part == part for f in logger.filters):
            logger.addFilter(_Drop(part))


def dedupe(names=("lightning", "lightning.pytorch", "lightning.fabric", "torchmetrics", "huggingface_hub")) -> None:
    """Lightning (and torchmetrics, huggingface_hub) put a console handler of their own on their logger when they
    are imported, and let records propagate: under Hydra's handler on the root logger every Lightning line came
    twice ("INFO: GPU available" and "[...][lightning...][INFO] - GPU available"). With a configured root logger
    their records go there, once."""
    if not logging.getLogger().handlers:
        return
    for name in names:
        logger = logging.getLogger(name)
        for h in list(logger.handlers):
            if type(h) is logging.StreamHandler:
                logger.removeHandler(h)
        logger.propagate = True


def short(values: Mapping, n: int = 6, skip_zero: bool = True) -> str:
    """`k=v, ...` for a log line: the first `n` (non-zero) items, then how many more (all are in the run's metrics)."""
    items = [(k.split("/")[-1], v) for k, v in values.items() if not (skip_zero and not v)]
    head = ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in items[:n])
    more = len(items) - n
    return head + (f" (+{more} more in the run's metrics)" if more > 0 else "")
