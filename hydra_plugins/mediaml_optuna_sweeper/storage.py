"""`hydra.sweeper.storage`: where a study lives, as one string every worker of the study is given.

    sqlite:///abs/path/optuna.db                  one machine (the default: beside the sweep's outputs)
    postgresql+psycopg2://user@host:port/db        many machines (any SQLAlchemy URL Optuna's RDBStorage takes)
    journal:///abs/path/study.log                  a shared file system only (NFS): Optuna's JournalStorage
                                                   with a JournalFileBackend (symlink lock, NFS-safe)
    null                                           in memory: one process, nothing kept

Opening is safe when N workers start at the same moment: Optuna creates the RDB tables on first use and two
processes racing to do so on a fresh database can both fail (sqlite: "table already exists", "database is
locked"), so a fresh sqlite file is created under a file lock beside it and other RDB URLs retry a few
times.
"""
from __future__ import annotations

import functools
import logging
import random
import time
from pathlib import Path

log = logging.getLogger(__name__)

JOURNAL_PREFIX = "journal://"


def journal_path(url: str) -> Path | None:
    """The log file of a `journal:///path` URL, or None for any other URL."""
    if not url.startswith(JOURNAL_PREFIX):
        return None
    path = url[len(JOURNAL_PREFIX):]
    if not path:
        raise ValueError(f"hydra.sweeper.storage={url!r}: a journal storage needs a file, e.g. journal:///shared/study.log")
    return Path(path)


@functools.lru_cache(maxsize=8)
def open_storage(url: str | None):
    """An Optuna storage object for `url` (None: in memory). One object per URL and process (it holds the
    database connection pool or the journal's replay state)."""
    import optuna

    if url is None:
        return None
    journal = journal_path(url)
    if journal is not None:
        from optuna.storages.journal import JournalFileBackend

        journal.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    if url.startswith("sqlite:///"):
        from filelock import FileLock

        db = Path(url[len("sqlite:///"):])
        db.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(db) + ".lock"):
            return optuna.storages.RDBStorage(url)
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url)
        except Exception as e:  # noqa: BLE001 - a racing worker creating the same tables
            if attempt == 4 or "sqlalchemy" not in type(e).__module__:
                raise
            log.info("storage %s not ready (%s): retrying", url, type(e).__name__)
            time.sleep(0.2 + random.random())
    raise AssertionError("unreachable")
