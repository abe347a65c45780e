"""One tracked run: a Tracker writes every artifact into the run's output folder and, when MLflow
is on, logs it to the run. Tasks only talk to a Tracker, so `logger=none` runs the same code."""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from mediaml.tracking import agent

log = logging.getLogger(__name__)

def _to_store(method):
    """A Tracker method that writes to the MLflow store: a failing store raises StoreError naming it."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not self.active:
            return method(self, *args, **kwargs)
        from mediaml.tracking.store import store_errors_named

        with store_errors_named(self.tracking_uri or "the MLflow tracking store"):
            if agent.failed(self._run_id):  # the run could not be opened (in the tracking process): its error
                agent.resolve(self._run_id)
            return method(self, *args, **kwargs)

    return wrapper


# MLflow refuses param values longer than this.
_MAX_PARAM_LEN = 6000


class _OpeningRun:
    """A Tracker attribute of its run (id, experiment, artifact root) that is first a mediaml.tracking.agent.Later
    in a sweep with a tracking process: the run opens there while the job starts its work. The Tracker's calls
    pass it on as it is (`_<name>`); reading it waits for the value."""

    def __set_name__(self, owner, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, tracker, owner=None):
        if tracker is None:
            return self
        value = agent.resolve(getattr(tracker, self.slot))
        setattr(tracker, self.slot, value)
        return value

    def __set__(self, tracker, value) -> None:
        setattr(tracker, self.slot, value)


class Tracker:
    """Log params, metrics, files, figures, tables, confusion matrices and models for one run.

    `run_id` is None when tracking is off (logger=none): files are still written to `output_dir`.
    """

    run_id = _OpeningRun()
    experiment_id = _OpeningRun()
    artifact_uri = _OpeningRun()

    def __init__(self, output_dir: str | Path, run_id: str | None = None, tracking_uri: str | None = None,
                 experiment_name: str | None = None):
        self.output_dir = Path(output_dir)
        # For libraries that log to the same run themselves (Lightning's MLFlowLogger(run_id=...)).
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.artifact_dir = self.output_dir / "artifacts"
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id
        self.experiment_id = None  # set by the run's lifecycle, for the run's page in the UI
        self.artifact_uri = None  # the run's artifact root (set by the lifecycle): local ones get links
        self.metrics: dict[str, float] = {}
        # Set by the run's lifecycle: scalar metrics (no step) are sent when the run ends, the objective
        # first, so MLflow's compare view and run table lead with the result, not with data/* counts.
        self.defer = False
        self._pending: dict[str, float] = {}
        # logger.log_model and logger.figures, resolved by the run's lifecycle (mediaml.tracking.run.policy):
        # all | best | none.
        self.model_policy = "all"
        self.figure_policy = "all"
        self._figures_tagged = False

    @property
    def active(self) -> bool:
        return self._run_id is not None

    # -- scalars -----------------------------------------------------------------------------
    # Each call to the store is a module-level function below, run by mediaml.tracking.agent: here, or in the
    # sweep's tracking process when one runs (`send`: not waited for, in order; `call`: waited for).
    @_to_store
    def log_params(self, params: dict[str, Any]) -> None:
        if not self.active:
            return
        clean = {k: _param_value(v) for k, v in params.items()}
        agent.send(self.tracking_uri, _log_params, self.tracking_uri, self._run_id, clean)

    @_to_store
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        clean = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(float(v))}
        self.metrics.update(clean)
        if self.active and clean:
            if step is None and self.defer:
                self._pending.update(clean)
                return
            agent.send(self.tracking_uri, _log_metrics, self.tracking_uri, self._run_id, list(clean.items()), step,
                       int(time.time() * 1000))

    @_to_store
    def flush(self, first: Sequence[str] = ()) -> None:
        """Send the deferred scalar metrics, the keys in `first` before the others, and wait until the store has
        everything this run sent (an earlier call's error is raised here)."""
        if not self.active:
            return
        keys = [k for k in first if k in self._pending] + [k for k in self._pending if k not in first]
        items = [(k, self._pending[k]) for k in keys]
        self._pending.clear()
        agent.call_after_errors(self.tracking_uri, _log_metrics, self.tracking_uri, self._run_id, items, None,
                                int(time.time() * 1000))

    @_to_store
    def set_tags(self, tags: dict[str, Any]) -> None:
        if self.active:  # this tracker's run, whichever run the fluent API has active
            agent.send(self.tracking_uri, _set_tags, self.tracking_uri, self._run_id,
                       {k: str(v) for k, v in tags.items()})

    @_to_store
    def log_input(self, name: str, digest: str, source: str | None = None, generator: str | None = None) -> None:
        """The data set the run reads, shown in MLflow's Datasets column: a file or folder, or the code that
        generates a synthetic one."""
        if self.active:
            agent.send(self.tracking_uri, _log_input, self.tracking_uri, self._run_id, name, digest,
                       None if source is None else str(Path(source).resolve()), generator)

    # -- files -------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """Where an artifact named `name` (e.g. "val/confusion_matrix.png") is written locally."""
        p = self.artifact_dir / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    @_to_store
    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        """Log an existing file or folder under `artifact_path` in the run. Into a store whose artifacts are a
        folder on the same disk (the project's sqlite store, a local file store) the file is hard-linked, not
        copied: written once, seen in both the job folder and the run (a checkpoint is not stored twice)."""
        if self.active:
            agent.send(self.tracking_uri, _log_artifact, self.tracking_uri, self._run_id, self._artifact_uri,
                       str(local_path), artifact_path)

    def _logged(self, name: str) -> Path:
        p = self.path(name)
        self.log_artifact(p, artifact_path=str(Path(name).parent) if Path(name).parent != Path(".") else None)
        return p

    def log_text(self, text: str, name: str) -> Path:
        self.path(name).write_text(text)
        return self._logged(name)

    def log_dict(self, data: dict, name: str) -> Path:
        self.path(name).write_text(json.dumps(data, indent=2, default=str))
        return self._logged(name)

    def log_figure(self, fig, name: str, dpi: int = 120) -> Path | None:
        """Save a matplotlib figure (PNG by the name's suffix) and log it, by `figure_policy` (`logger.figures`):
        `all` now; `best` keeps the figure (pickled: a fraction of the time its PNG takes) for the sweep to save
        and log if this trial is its best (`log_pending_figures`); `none` not at all. The figure is closed."""
        import matplotlib.pyplot as plt

        if (self._keeps_figures() and self._keep_figure(name, fig, dpi)) or (self.figure_policy == "none"
                                                                             and self.active):
            plt.close(fig)
            return None
        fig.savefig(self.path(name), dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        return self._logged(name)

    def log_plot(self, name: str, plot, *args, dpi: int = 120, **kwargs) -> Path | None:
        """The figure `plot(*args, **kwargs)` draws (`plot`: a module-level function), drawn only if it is to be
        logged now; under `logger.figures=best` the call itself is kept, for the sweep's best trial."""
        if self.figure_policy == "none" and self.active:
            return None
        if self._keeps_figures() and self._keep_figure(name, (plot, args, kwargs), dpi):
            return None
        return self.log_figure(plot(*args, **kwargs), name, dpi=dpi)

    def _keeps_figures(self) -> bool:
        return self.figure_policy == "best" and self.active

    @_to_store
    def _keep_figure(self, name: str, what, dpi: int) -> bool:
        """Pickle a figure (or the call that draws it) for the sweep's end; False if it cannot be pickled (a
        figure holding a lambda): the caller then logs it now."""
        import pickle

        folder = self.output_dir / PENDING_FIGURES_DIR
        path = folder / f"{name}.pickle"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = pickle.dumps({"name": name, "dpi": dpi, "figure": what}, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as e:
            log.debug("figure %s cannot be kept for the sweep's end (%s): logged now", name, e)
            return False
        path.write_bytes(data)
        if not self._figures_tagged:
            self.set_tags({PENDING_FIGURES_TAG: str(folder)})
            self._figures_tagged = True
        return True

    def log_table(self, df: pd.DataFrame, name: str, index: bool = False) -> Path:
        """Write a table as CSV (name ends in .csv) and log it."""
        df.to_csv(self.path(name), index=index)
        return self._logged(name)

    # -- classification helpers shared by every task (figures and tables: mediaml.plotting) ----------
    def log_confusion_matrix(
        self,
        y_true: Sequence,
        y_pred: Sequence,
        labels: Sequence | None = None,
        prefix: str = "val",
        normalize: bool = False,
    ) -> pd.DataFrame:
        """Confusion matrix as CSV (rows: true label, columns: predicted) and an annotated PNG."""
        from mediaml.plotting import confusion_table, plot_confusion_matrix

        df = confusion_table(y_true, y_pred, labels)
        self.log_table(df, f"{prefix}/confusion_matrix.csv", index=True)
        self.log_plot(f"{prefix}/confusion_matrix.png", plot_confusion_matrix, df.to_numpy(), list(df.columns),
                      normalize=normalize, title=f"{prefix} confusion matrix")
        return df

    def log_classification_report(
        self, y_true: Sequence, y_pred: Sequence, labels: Sequence | None = None, prefix: str = "val"
    ) -> pd.DataFrame:
        """Per-class precision, recall, F1 and support as CSV, plus the plain-text report."""
        from mediaml.plotting import classification_report_table

        df, text = classification_report_table(y_true, y_pred, labels)
        self.log_table(df, f"{prefix}/classification_report.csv", index=True)
        self.log_text(text, f"{prefix}/classification_report.txt")
        return df

    @_to_store
    def log_model(self, model, name: str = "model", flavor: str = "sklearn", input_example=None,
                  predict_fn: str = "predict", pip_requirements: Iterable[str] | None = None) -> Path | None:
        """Keep a fitted model by `model_policy` (`logger.log_model`): `all` logs it to the run now, with a
        signature inferred from `input_example` and its predictions; `best` keeps it in the job folder and tags
        the run `mediaml.model_pending`: the sweep logs the best trial's model when it ends
        (`log_pending_model`); `none` keeps nothing.

        The model is also pickled into the output folder (`<name>.joblib`: `joblib.load` reads it), so
        `logger=none` keeps it too.
        Requirements are given, not inferred: MLflow's inference imports every package it can find
        (seconds, and torch for a scikit-learn model).
        """
        if flavor != "sklearn":
            raise ValueError(f"log_model: unknown flavor {flavor!r} (expected 'sklearn')")
        if self.model_policy == "none":
            return None
        reqs = list(pip_requirements) if pip_requirements is not None else None
        if self.active and self.model_policy == "all":
            stored = agent.call(self.tracking_uri, _log_model_now, self.tracking_uri, model, name, self._run_id,
                                input_example, predict_fn, reqs)
            # Written once: into a store on this disk, the job folder links to the logged model's files (an
            # MLflow model folder: mlflow.sklearn.load_model(<job>/artifacts/<name>)), else keeps a joblib copy.
            if stored is not None and _link_into(Path(stored), self.path(name)):
                return self.path(name)
        local = self.path(f"{name}.joblib")
        _pickle(model, local)
        if self.active and self.model_policy == "best":
            _pickle({"input_example": input_example, "predict_fn": predict_fn, "pip_requirements": reqs},
                    self.path(f"{name}.logging.joblib"))
            self.set_tags({PENDING_MODEL_TAG: json.dumps({"kind": "sklearn", "name": name, "path": str(local)})})
        return local

    @_to_store
    def log_checkpoints(self, paths: Iterable[str | Path], artifact_path: str = "checkpoints") -> None:
        """Checkpoint files by `model_policy`, like log_model: logged now (`all`), when the sweep finds this
        trial the best (`best`), or not at all (`none`; they stay in the job folder)."""
        paths = sorted({str(p) for p in paths if p})
        if not (self.active and paths) or self.model_policy == "none":
            return
        if self.model_policy == "best":
            self.set_tags({PENDING_MODEL_TAG: json.dumps({"kind": "files", "name": artifact_path, "paths": paths})})
            return
        for p in paths:
            self.log_artifact(p, artifact_path)


# -- the calls to the store (mediaml.tracking.agent runs them, here or in a sweep's tracking process) --------------
def _client(uri: str | None):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def _log_params(uri: str | None, run_id: str, params: dict[str, str]) -> None:
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in params.items()]
    for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
        _client(uri).log_batch(run_id, params=items[i:i + 100])


def _log_metrics(uri: str | None, run_id: str, items: list[tuple[str, float]], step: int | None,
                 timestamp: int) -> None:
    from mlflow.entities import Metric

    metrics = [Metric(k, v, timestamp, step or 0) for k, v in items]
    for i in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics per batch
        _client(uri).log_batch(run_id, metrics=metrics[i:i + 1000])


def _set_tags(uri: str | None, run_id: str, tags: dict[str, str]) -> None:
    from mlflow.entities import RunTag

    _client(uri).log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])


def _log_input(uri: str | None, run_id: str, name: str, digest: str, source: str | None,
               generator: str | None) -> None:
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.exceptions import MlflowException
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    if source is not None:
        from mlflow.data.dataset_source_registry import resolve_dataset_source

        src = resolve_dataset_source(Path(source).as_uri())
    else:
        from mlflow.data.code_dataset_source import CodeDatasetSource

        src = CodeDatasetSource(tags={"generator": generator or "unknown"})
    dataset = MetaDataset(source=src, name=name, digest=digest)
    inputs = [DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, "data")])]
    for attempt in range(3):
        try:
            _client(uri).log_inputs(run_id, datasets=inputs)
            return
        except MlflowException as e:
            # The tracking server looks the data set up, then inserts it: jobs that start together race
            # between the two and the loser gets a unique-key violation. The row exists then, so the
            # retry finds it (seen with eight jobs on one PostgreSQL-backed server).
            if attempt == 2 or not any(s in str(e) for s in ("UniqueViolation", "duplicate key",
                                                             "UNIQUE constraint failed")):
                raise
            time.sleep(0.2 * (attempt + 1))


def _log_artifact(uri: str | None, run_id: str, artifact_uri: str | None, local_path: str,
                  artifact_path: str | None) -> None:
    local = Path(local_path)
    if not local.exists():  # not the store's fault: a plain error, not a StoreError (an OSError would be one)
        raise ValueError(f"cannot log {local} into run {run_id}: no such file or folder")
    root = local_artifact_root(artifact_uri)
    if root is not None and _link_into(local, root / (artifact_path or "")):
        return
    if local.is_dir():
        _client(uri).log_artifacts(run_id, str(local), artifact_path)
    else:
        _client(uri).log_artifact(run_id, str(local), artifact_path)


def local_artifact_root(uri: str | None) -> Path | None:
    """A run's artifact folder when it is a local path (file:// or a plain path), else None (a server,
    mlflow-artifacts:, s3: ...)."""
    if not uri:
        return None
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(uri).path))
    return Path(uri) if uri.startswith("/") else None


def _log_model_now(uri: str | None, model, name: str, run_id: str, input_example, predict_fn: str,
                   reqs: list[str] | None) -> str | None:
    """log_sklearn_model into a running run; the folder of the logged model's files when the store keeps them on
    this disk (the job folder links to them), else None."""
    import mlflow

    mlflow.set_tracking_uri(uri)  # mlflow.sklearn.log_model writes through the fluent API's store
    info = log_sklearn_model(model, name, run_id, input_example, predict_fn, reqs)
    try:
        location = _client(uri).get_logged_model(info.model_id).artifact_location
    except Exception:  # an older store without logged models: keep the joblib copy
        return None
    if location.startswith("file://"):
        from urllib.parse import unquote, urlparse

        location = unquote(urlparse(location).path)
    path = Path(location)
    return str(path) if path.is_absolute() and path.is_dir() else None


# The model a run kept for the sweep's end (logger.log_model=best): what and where, as JSON.
PENDING_MODEL_TAG = "mediaml.model_pending"
# The folder of the figures a run kept for the sweep's end (logger.figures=best), under its job folder.
PENDING_FIGURES_TAG = "mediaml.figures_pending"
PENDING_FIGURES_DIR = Path(".mediaml") / "pending_figures"
POLICIES = ("all", "best", "none")


def log_sklearn_model(model, name: str, run_id: str, input_example=None, predict_fn: str = "predict",
                      pip_requirements: list[str] | None = None, model_id: str | None = None):
    """mlflow.sklearn.log_model into the run `run_id` (running or ended), requirements pinned to this env;
    `model_id`: a logged model created for it already (an ended run's: its experiment, not the active one)."""
    import mlflow
    import sklearn
    from mlflow.models import infer_signature

    signature = None
    if input_example is not None:
        signature = infer_signature(input_example, getattr(model, predict_fn)(input_example))
    reqs = pip_requirements or [f"scikit-learn=={sklearn.__version__}", f"pandas=={pd.__version__}",
                                f"numpy=={np.__version__}"]
    # cloudpickle, not MLflow's default skops: importing skops walks every scikit-learn module,
    # which imports torch (sklearn's array-API shim), and `task=genre` must not import torch.
    # The model is one we fitted in this very run, so unpickling it later is trusted input.
    # ...so MLflow's advice against pickle formats (logged on every call) does not apply: not printed.
    sklearn_log = logging.getLogger("mlflow.sklearn")
    sklearn_log.addFilter(_no_pickle_advice)
    try:
        with _no_package_scan():
            return mlflow.sklearn.log_model(model, name=name, signature=signature, input_example=input_example,
                                            pip_requirements=reqs, serialization_format="cloudpickle",
                                            run_id=run_id, model_id=model_id)
    finally:
        sklearn_log.removeFilter(_no_pickle_advice)


@contextlib.contextmanager
def _no_package_scan():
    """While a model with given requirements is logged, MLflow checks each requirement against this environment
    (warn_dependency_requirement_mismatches). To find a requirement's module it first maps every module of
    every installed distribution (importlib_metadata.packages_distributions: 1.5 s of a 7 s default run here,
    torch's RECORD included), then reads the version by distribution name, which needs no map for ours
    (scikit-learn, pandas, numpy, cloudpickle, mlflow are distribution names). So the map starts empty for
    this call only, and MLflow's own value (usually not yet built) is put back after."""
    from mlflow.utils import requirements_utils as ru

    before = ru._MODULES_TO_PACKAGES
    if before is None:
        ru._MODULES_TO_PACKAGES = {}
    try:
        yield
    finally:
        ru._MODULES_TO_PACKAGES = before


def _pickle(obj, path: Path) -> None:
    """Plain pickle (protocol 5), which `joblib.load` reads: a 200-tree forest in 7.5 ms against joblib.dump's
    31 ms, the same bytes on disk (joblib's per-array framing buys memory-mapped loading, which a model this
    size does not need). Every trial of a sweep keeps its model this way (benchmarks/bench_sweep_overhead.py)."""
    import pickle

    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=5)


def _no_pickle_advice(record: logging.LogRecord) -> bool:
    return "pickle or cloudpickle format requires exercising caution" not in record.getMessage()


def log_pending_model(client, run) -> bool:
    """Log the model a finished run kept in its job folder (`mediaml.model_pending`) into that run, then drop
    the tag. False when there is none, or its files are not on this machine (a worker elsewhere ran it)."""
    spec = run.data.tags.get(PENDING_MODEL_TAG)
    if not spec:
        return False
    spec = json.loads(spec)
    run_id = run.info.run_id
    import socket

    if run.data.tags.get("mediaml.host", socket.gethostname()) != socket.gethostname():
        log.warning("the best run %s ran on %s: its model stays in its job folder there (%s)", run_id,
                    run.data.tags["mediaml.host"], spec.get("path") or spec.get("paths"))
        return False
    if spec["kind"] == "sklearn":
        import joblib

        local = Path(spec["path"])
        extra = local.with_name(f"{spec['name']}.logging.joblib")
        if not (local.is_file() and extra.is_file()):
            log.warning("the best run %s kept its model in %s, which is not on this machine: not logged",
                        run_id, local)
            return False
        import mlflow

        # mlflow.sklearn.log_model writes to the fluent API's store: the client's, for this call only.
        before, env = mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
        mlflow.set_tracking_uri(client.tracking_uri)
        try:
            # Created here in the run's experiment: MLflow would put a model of a run that is not active in
            # the active (Default) experiment.
            model = client.create_logged_model(run.info.experiment_id, name=spec["name"], source_run_id=run_id,
                                               params=dict(run.data.params))
            log_sklearn_model(joblib.load(local), spec["name"], run_id, **joblib.load(extra), model_id=model.model_id)
        finally:
            from mediaml.tracking.store import restore_uri_env

            mlflow.set_tracking_uri(before)
            restore_uri_env(env)
    else:
        missing = [p for p in spec["paths"] if not Path(p).is_file()]
        if missing:
            log.warning("the best run %s kept %s, not on this machine: not logged", run_id, missing)
            return False
        for p in spec["paths"]:
            client.log_artifact(run_id, p, spec["name"])
    client.delete_tag(run_id, PENDING_MODEL_TAG)
    client.set_tag(run_id, "mediaml.model_logged_by", "the sweep: best trial")
    log.info("logged the best run's model (%s) into run %s", spec["name"], run_id)
    return True


def log_pending_figures(client, run) -> list[str]:
    """Save and log the figures a finished run kept (`mediaml.figures_pending`) into that run, then drop the
    tag and the kept files; the names logged. None when they are not on this machine (another worker's)."""
    import socket

    folder = run.data.tags.get(PENDING_FIGURES_TAG)
    if not folder:
        return []
    run_id = run.info.run_id
    folder = Path(folder)
    if run.data.tags.get("mediaml.host", socket.gethostname()) != socket.gethostname() or not folder.is_dir():
        log.warning("the best run %s kept its figures in %s, not on this machine: not logged", run_id, folder)
        return []
    artifacts = folder.parents[1] / "artifacts"  # the job's output folder / artifacts, as Tracker.path
    logged = []
    for kept in sorted(folder.rglob("*.pickle")):
        name = str(kept.relative_to(folder))[:-len(".pickle")]  # Tracker._keep_figure: <folder>/<name>.pickle
        out = artifacts / name
        out.parent.mkdir(parents=True, exist_ok=True)
        drawn = kept.with_suffix("")  # drawn ahead, while the jobs fit (draw_pending_figures)
        if drawn.is_file():
            os.replace(drawn, out)
        else:
            _draw_kept(kept, out)
        parent = str(Path(name).parent)
        client.log_artifact(run_id, str(out), None if parent == "." else parent)
        logged.append(name)
    drop_pending_figures(client, run)
    client.set_tag(run_id, "mediaml.figures_logged_by", "the sweep: best trial")
    log.info("logged the best run's %d figure(s) into run %s", len(logged), run_id)
    return logged


def draw_pending_figures(run) -> int:
    """Draw the figures a finished run kept, each beside its pickle, for log_pending_figures to log if the run is
    its sweep's best: done in the sweep's tracking process while the next jobs fit (the sweep's end would draw
    them otherwise). How many were drawn."""
    import socket

    folder = run.data.tags.get(PENDING_FIGURES_TAG)
    if not folder or run.data.tags.get("mediaml.host", socket.gethostname()) != socket.gethostname():
        return 0
    n = 0
    for kept in sorted(Path(folder).rglob("*.pickle")):
        drawn = kept.with_suffix("")
        if not drawn.is_file():
            part = drawn.with_name(f".{drawn.name}.part{drawn.suffix}")  # savefig reads the format from the suffix
            _draw_kept(kept, part)
            os.replace(part, drawn)
            n += 1
    return n


def _draw_kept(kept: Path, out: Path) -> None:
    """Save the figure a run kept (a pickled figure, or the call that draws it) as `out`."""
    import pickle

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(kept, "rb") as f:
        spec = pickle.load(f)  # written by this sweep's own job (Tracker._keep_figure): trusted
    fig = spec["figure"]
    if isinstance(fig, tuple):  # Tracker.log_plot: the call that draws it
        plot, args, kwargs = fig
        fig = plot(*args, **kwargs)
    fig.savefig(out, dpi=spec["dpi"], bbox_inches="tight")
    plt.close(fig)


def drop_pending_figures(client, run) -> None:
    """Forget the figures a run kept (a sweep's trial that was not its best): the tag and, on this machine,
    the kept files."""
    import shutil
    import socket

    folder = run.data.tags.get(PENDING_FIGURES_TAG)
    if not folder:
        return
    if run.data.tags.get("mediaml.host", socket.gethostname()) == socket.gethostname():
        shutil.rmtree(folder, ignore_errors=True)
    client.delete_tag(run.info.run_id, PENDING_FIGURES_TAG)


def _link_into(src: Path, dest_dir: Path) -> bool:
    """Hard-link `src` (a file: into `dest_dir`; a folder: its files, keeping their relative paths, as
    mlflow.log_artifacts copies them) into `dest_dir`. False if a link cannot be made (another file system, a
    file system without links): the caller copies instead. A file already there is replaced."""
    pairs = [(src, dest_dir / src.name)] if src.is_file() else \
        [(f, dest_dir / f.relative_to(src)) for f in sorted(src.rglob("*")) if f.is_file()]
    made = []
    try:
        for f, dest in pairs:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.exists() or dest.is_symlink():
                if dest.samefile(f):
                    continue
                dest.unlink()
            os.link(f, dest)
            made.append(dest)
    except OSError as e:
        log.debug("no hard link into %s (%s): copying", dest_dir, e)
        for dest in made:
            dest.unlink(missing_ok=True)
        return False
    return True


def _param_value(v: Any) -> str:
    s = "None" if v is None else str(v)
    return s if len(s) <= _MAX_PARAM_LEN else s[: _MAX_PARAM_LEN - 3] + "..."
