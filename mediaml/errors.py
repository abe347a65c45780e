"""Errors for bad config or missing / bad input. Each names the file, the row or field, and what was expected."""
from __future__ import annotations

import os
from pathlib import Path


class ConfigError(ValueError):
    """A config that cannot run as composed (a dataset or model of another task, ...): a user's mistake."""


class DataError(ValueError):
    """Input data that cannot be used as it is."""


class DataNotFoundError(FileNotFoundError):
    """A data file a dataset config names does not exist under paths.data_dir."""

    def __init__(self, path: Path, dataset: str, source: str, data_dir: Path | None = None):
        env = os.environ.get("MEDIAML_DATA_DIR")
        where = f"MEDIAML_DATA_DIR={env}" if env else "the default <project>/data (MEDIAML_DATA_DIR is not set)"
        # paths.data_dir as conf/paths/default.yaml makes it; a dataset config may set a data_dir of its own
        shared = Path(env).expanduser().resolve() if env else Path(__file__).resolve().parents[1] / "data"
        own = data_dir is not None and Path(data_dir).resolve() != shared
        lines = [
            f"data file not found: {Path(path).resolve()}",
            f"  dataset config: dataset={dataset} (conf/dataset/{dataset}.yaml, or a config folder of yours)",
        ]
        if own:
            lines.append(f"  data_dir: {Path(data_dir).resolve()} (set by that dataset config itself, not by "
                         f"MEDIAML_DATA_DIR)")
        elif data_dir is not None:
            lines.append(f"  paths.data_dir: {Path(data_dir).resolve()} (from {where})")
        if source.strip():
            lines.append(f"  where the data comes from: {source.strip()}")
        lines.append("  fix that config's data_dir (or override dataset.data_dir=...)" if own else
                     "  point MEDIAML_DATA_DIR at the folder that holds it, or pick a synthetic dataset "
                     "(dataset=synthetic_...) that needs no download")
        super().__init__("\n".join(lines))
        self.path = Path(path)


def require_file(data_dir: str | Path, relative: str, dataset: str, source: str) -> Path:
    """Return data_dir/relative, or raise DataNotFoundError that says what was tried and where to get it."""
    path = Path(data_dir) / relative
    if not path.is_file():
        raise DataNotFoundError(path, dataset, source, Path(data_dir))
    return path


class MissingExtraError(ConfigError):
    """A task whose optional dependencies (its pip extra) are not installed."""


def require_extra(extra: str, modules: list[str], task: str | None = None) -> None:
    """Raise MissingExtraError naming the exact install command if any of `modules` cannot be imported.

    Called by a task package's ``__init__`` before it imports any of them (``find_spec`` imports nothing)."""
    import importlib.util

    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    if missing:
        from mediaml.config import PROJECT_ROOT

        raise MissingExtraError(
            f"task={task or extra} needs the [{extra}] extra (missing: {', '.join(missing)}); install it with\n"
            f'  pip install -e "{PROJECT_ROOT}[{extra}]"   (or ".[all]" for every study)')
