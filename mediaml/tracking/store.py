"""Where runs are stored: the project's MLflow store, or MLFLOW_TRACKING_URI.

Why sqlite: MLflow 3 refuses the plain `./mlruns` file store unless MLFLOW_ALLOW_FILE_STORE is
set, and its default is a sqlite database. We keep one sqlite database per project at
`mlruns/mlflow.db` (runs, params, metrics, tags: queryable and fast to search in the UI) and put
artifacts beside it in `mlruns/artifacts/<experiment>/`. A server (`MLFLOW_TRACKING_URI=http://...`)
replaces both.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from filelock import FileLock

from mediaml.errors import ConfigError


def project_store_uri(store_dir: str | Path) -> str:
    return f"sqlite:///{Path(store_dir).resolve() / 'mlflow.db'}"


def resolve_tracking_uri(tracking_uri: str | None, store_dir: str | Path) -> str:
    """An explicit setting (logger.tracking_uri or MLFLOW_TRACKING_URI) wins over the project store."""
    return tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or project_store_uri(store_dir)


def _lock_for(uri: str, store_dir: str | Path) -> FileLock:
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        db.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(db) + ".lock")
    Path(store_dir).mkdir(parents=True, exist_ok=True)
    return FileLock(str(Path(store_dir) / ".experiments.lock"))


# MLflow 3 opens an experiment without this tag in its GenAI view (traces, judges, prompts).
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def ensure_experiment(uri: str, store_dir: str | Path, name: str, description: str | None = None) -> str:
    """Create the store and the experiment if needed, and return the experiment id.

    The experiment is tagged a model-training experiment and, given a `description`, carries it as its
    note (`mlflow.note.content`, shown on the experiment page). Parallel sweep jobs that race to create a
    new sqlite store (its tables and migrations) or the same experiment fail, so creation is serialised
    with a file lock beside the database; jobs on different machines (a server, no shared lock) that race
    to create the experiment take the one that won.
    """
    from mlflow.tracking import MlflowClient

    wanted = {**EXPERIMENT_KIND, **({"mlflow.note.content": description} if description else {})}
    with _lock_for(uri, store_dir):
        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                client.restore_experiment(exp.experiment_id)
            for k, v in wanted.items():
                if exp.tags.get(k) != v:
                    client.set_experiment_tag(exp.experiment_id, k, v)
            return exp.experiment_id
        artifact_location = None
        if uri.startswith("sqlite:///") and uri == project_store_uri(store_dir):
            artifact_location = (Path(store_dir).resolve() / "artifacts" / name).as_uri()
        elif uri.startswith("sqlite:///"):
            # A sqlite store elsewhere (tests, a user's own file): artifacts beside that database.
            db = Path(uri[len("sqlite:///"):])
            artifact_location = (db.parent / "artifacts" / name).as_uri()
        from mlflow.exceptions import MlflowException

        try:
            return client.create_experiment(name, artifact_location=artifact_location, tags=wanted)
        except MlflowException as e:
            # Jobs on other machines share no lock: one of those that raced to create it won, take its experiment.
            winner = client.get_experiment_by_name(name) if e.error_code == "RESOURCE_ALREADY_EXISTS" else None
            if winner is None:
                raise
            return winner.experiment_id


def restore_uri_env(previous: str | None) -> None:
    """Put MLFLOW_TRACKING_URI back as it was before `mlflow.set_tracking_uri`, which exports it (the next
    in-process job composes `logger.tracking_uri` from it)."""
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


class StoreError(ConfigError):
    """The tracking store cannot be opened or written (read-only file, full disk, server down)."""


@contextlib.contextmanager
def store_errors_named(uri: str) -> Iterator[None]:
    """Turn a store's raw error (SQLAlchemy's "attempt to write a readonly database", a refused connection)
    into a StoreError that names the store, its file and what to check."""
    try:
        yield
    except (KeyboardInterrupt, ConfigError):
        raise
    except Exception as e:
        if not _is_store_error(e):
            raise
        where = uri
        if uri.startswith("sqlite:///"):
            db = Path(uri[len("sqlite:///"):])
            where = f"{uri} (file {db})"
        cause = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = ("check that the file and its folder are writable and the disk has space"
                if uri.startswith("sqlite:") else "check that the server is up and reachable")
        raise StoreError(f"tracking store {where} cannot be used: {cause[:300]}\n  {hint}, or point "
                         f"MLFLOW_TRACKING_URI / logger.store_dir at another store") from e


def _is_store_error(e: BaseException) -> bool:
    """An error of the store or of the way to it (the database, the file system, the HTTP connection), not a
    bug in what was being logged."""
    mod = type(e).__module__.split(".")[0]
    return isinstance(e, OSError) or mod in ("sqlalchemy", "sqlite3", "mlflow", "requests", "urllib3", "psycopg2",
                                             "psycopg")
