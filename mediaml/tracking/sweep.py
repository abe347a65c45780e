"""One parent MLflow run per multirun: every `python train.py -m ...` (an Optuna search or a plain grid such as
`-m model=random_forest,svc`) is one run in the task's experiment, with each job as a nested child.

A Hydra callback (conf/hydra/default.yaml `callbacks.sweep_parent_run`) opens the parent in the sweep's
main process before any job starts and hands its id to the jobs through the environment
(`MEDIAML_SWEEP_PARENT_RUN_ID`), which joblib and submitit workers inherit; each job's run then carries
`mlflow.parentRunId`, so the MLflow UI shows the tree. A rerun of the same sweep (same sweep folder: an
Optuna study is resumed there) reuses the same parent. When the sweep ends the parent gets:

* params: the search space (`search.<key>`, or `grid.<key>` for a grid), the sampler settings
  (`sampler.*`), the fixed overrides (`fixed.<key>`);
* metrics: the best value under the objective's own name, and `sweep/n_complete|n_pruned|n_failed`;
* tags: `mediaml.role=sweep`, `sweep.id`, and for Optuna `optuna.study_name`, `optuna.storage`,
  `optuna.direction`, `optuna.best_trial`; the best child run is tagged `best=true`;
* artifacts: `sweep/trials.csv` (number, state, value, params, duration, child run id) and, for Optuna, the
  optimization history, param importances, parallel coordinate and slice figures as self-contained HTML
  (plotly.js inlined, opens offline) and PNG.

It ends FINISHED when the sweep returns, KILLED on Ctrl-C / SIGTERM, FAILED when the sweep raises.
"""
from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.mediaml_optuna_sweeper.config import SURPLUS_ATTR
from mediaml.config import flatten
from mediaml.tracking.store import ensure_experiment, resolve_tracking_uri

log = logging.getLogger(__name__)

PARENT_ENV = "MEDIAML_SWEEP_PARENT_RUN_ID"
SWEPT_ENV = "MEDIAML_SWEPT_KEYS"  # comma-separated override keys a grid varies (names the child runs)
ROLE_TAG = "mediaml.role"


def sweep_id_of(config: DictConfig) -> str:
    from mediaml.tracking.run import sweep_id

    return sweep_id(config.hydra.sweep.dir, config.paths.output_root)


def is_optuna(config: DictConfig) -> bool:
    return "mediaml_optuna_sweeper" in str(config.hydra.sweeper.get("_target_", ""))


def split_overrides(config: DictConfig) -> tuple[dict[str, str], dict[str, str]]:
    """The command line's overrides as (swept key -> sweep expression, fixed key -> value)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    swept, fixed = {}, {}
    for o in OverridesParser.create().parse_overrides(list(config.hydra.overrides.task)):
        key = o.get_key_element()
        value = (o.input_line or "").split("=", 1)[-1]
        (swept if o.is_sweep_override() else fixed)[key] = value
    return swept, fixed


class SweepParentRun(Callback):
    """Hydra callback: the parent run of a multirun (see the module docstring). With a tracking process
    (mediaml.tracking.agent, `logger.agent`), the parent is made, summarised and ended there: this callback tells
    it when, and an instance of its own does the work there."""

    def __init__(self) -> None:
        self.client = None
        self.run_id: str | None = None
        self._ended = False
        self._before: tuple | None = None
        self.config: DictConfig | None = None  # the sweep's settings (in the tracking process: what it was sent)
        self.agent = None  # the tracking process, when one logs this sweep
        self.uri: str | None = None
        self.best_so_far: float | None = None  # in the tracking process: the best objective of a finished job

    # -- start -----------------------------------------------------------------------------------
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mediaml.tracking import agent

        use_agent = agent.wanted(config)
        if not use_agent:
            agent.drop_ahead()
        if not config.logger.get("enabled", False):
            return
        here = {"mediaml.host": socket.gethostname(), "mediaml.pid": str(os.getpid())}
        self.uri = resolve_tracking_uri(config.logger.tracking_uri, config.logger.store_dir)
        if use_agent:
            try:
                self.agent = agent.start()
            except OSError as e:  # no second process to be had (a process or file limit): log from this one
                log.warning("no tracking process (%s): this sweep logs from its own process", e)
                use_agent = False
        if use_agent:
            swept, _ = split_overrides(config)
            os.environ[SWEPT_ENV] = ",".join(swept) if not is_optuna(config) else ""
            # Not waited for: the first job's run waits for it, after Hydra composed that job and its task started.
            agent.send(self.uri, _start_in_agent, sweep_settings(config), here)
        else:
            self.start(config, here)
        self._ended = False
        atexit.register(self._end_at_exit)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _sigterm_to_interrupt)

    def start(self, config: DictConfig, here: dict[str, str]) -> None:
        """Make (or find, for a rerun or another worker of the same sweep) the parent run; its id to the jobs."""
        from mlflow.tracking import MlflowClient

        self.config = config
        uri = resolve_tracking_uri(config.logger.tracking_uri, config.logger.store_dir)
        experiment_id = ensure_experiment(uri, config.logger.store_dir, config.logger.experiment_name)
        self.client = client = MlflowClient(uri)
        sweep_id = sweep_id_of(config)
        swept, fixed = split_overrides(config)
        optuna_sweep = is_optuna(config)
        query = f"tags.`{ROLE_TAG}` = 'sweep' and tags.`sweep.id` = '{sweep_id}'"
        found = client.search_runs([experiment_id], query, max_results=1, order_by=["attributes.start_time ASC"])
        self._before = None
        if not found:
            if optuna_sweep:
                name = f"sweep {config.hydra.sweeper.study_name}"
            else:
                name = "sweep " + " ".join(f"{k}={v}" for k, v in swept.items()) if swept else "sweep"
            tags = {ROLE_TAG: "sweep", "sweep.id": sweep_id, "sweep.dir": str(Path(config.hydra.sweep.dir).resolve()),
                    "mediaml.task": config.task.name, **here}
            if optuna_sweep:
                s = config.hydra.sweeper
                tags.update({"optuna.study_name": s.study_name, "optuna.storage": s.storage or "in memory",
                             "optuna.direction": s.direction})
            run = client.create_run(experiment_id, run_name=name, tags=tags)
            client.log_batch(run.info.run_id,
                             params=[_param(k, v) for k, v in self._params(config, swept, fixed).items()])
            # Workers of one study started at the same moment each created a parent: the oldest is the
            # study's, the others delete theirs (every worker applies the same rule, so all pick the same).
            self.run_id = elect_parent(client, experiment_id, query, run.info.run_id)
            if self.run_id == run.info.run_id:
                log.info("sweep parent run %s (%s) in experiment %r", self.run_id, name, config.logger.experiment_name)
            else:
                log.info("sweep parent run %s: another worker's (joining it)", self.run_id)
                client.set_tag(self.run_id, "mediaml.workers", "many")
        else:  # a rerun of the same sweep (a resumed study), or another worker of it: the same parent
            self.run_id = found[0].info.run_id
            # A rerun that launches nothing (refused, or all trials done) leaves the parent as it was.
            self._before = (found[0].info.status, len(children(client, self.run_id, experiment_id)), experiment_id)
            client.update_run(self.run_id, status="RUNNING")
            if optuna_sweep:
                recover_finished_trials(client, self.run_id, experiment_id, config)
            for k, v in here.items():
                client.set_tag(self.run_id, k, v)
            log.info("sweep parent run %s resumed", self.run_id)
        os.environ[PARENT_ENV] = self.run_id
        os.environ[SWEPT_ENV] = ",".join(swept) if not optuna_sweep else ""
        self._ended = False

    @staticmethod
    def _params(config: DictConfig, swept: dict[str, str], fixed: dict[str, str]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if is_optuna(config):
            s = OmegaConf.to_container(config.hydra.sweeper, resolve=True)
            for k, v in (s.get("params") or {}).items():
                params[f"search.{k.lstrip('+')}"] = v
            for k, v in swept.items():
                params[f"search.{k.lstrip('+')}"] = v
            params.update({f"sampler.{k}": v for k, v in flatten(s.get("sampler") or {}).items()})
            if s.get("pruner"):
                params.update({f"pruner.{k}": v for k, v in flatten(s["pruner"]).items()})
            params["sweep.n_jobs"] = s.get("n_jobs")
        else:
            params.update({f"grid.{k.lstrip('+')}": v for k, v in swept.items()})
        params.update({f"fixed.{k.lstrip('+')}": v for k, v in fixed.items()
                       if not k.startswith(("hydra.", "paths.", "logger."))})
        return params

    # -- end -------------------------------------------------------------------------------------
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.agent is not None:
            from mediaml.tracking import agent

            try:
                block = agent.call_after_errors(self.uri, _end_in_agent)
            finally:
                self._ended = True
                os.environ.pop(SWEPT_ENV, None)
                agent.stop()  # everything logged before the sweep's process returns
            if block:
                print("\n" + block, flush=True)
            return
        block = self.finish(config)
        if block:
            print("\n" + block, flush=True)

    def finish(self, config: DictConfig) -> str | None:
        """Summarise the sweep on its parent run and end it FINISHED; the block the sweep ends with."""
        if self.run_id is None:
            return None
        try:
            return summarise(self.client, self.run_id, config)
        finally:
            self._end("FINISHED")

    def _end(self, status: str) -> None:
        if self._ended or self.run_id is None:
            return
        self._ended = True
        self.client.set_terminated(self.run_id, status=status)
        os.environ.pop(PARENT_ENV, None)
        os.environ.pop(SWEPT_ENV, None)
        log.info("sweep parent run %s ended %s", self.run_id, status)

    def _end_at_exit(self) -> None:
        """The sweep did not reach on_multirun_end: Ctrl-C / SIGTERM (KILLED) or an error (FAILED)."""
        status = "KILLED" if isinstance(getattr(sys, "last_value", None), KeyboardInterrupt) else "FAILED"
        if self.agent is not None:
            from mediaml.tracking import agent

            try:
                if not self._ended:
                    self._ended = True
                    agent.call_after_errors(self.uri, _abort_in_agent, status)
            except Exception as e:  # noqa: BLE001 - the store may be what failed; nothing more to do at exit
                log.error("could not close the sweep parent run: %s", e)
            finally:
                agent.stop()
            return
        self.abort(status)

    def abort(self, status: str) -> None:
        """End the parent `status`, unless this invocation ran no job (the parent stays as it was)."""
        if self._ended or self.run_id is None:
            return
        try:
            if self._before is not None and self._before[0] in ("FINISHED", "FAILED", "KILLED"):
                previous, n_kids, experiment_id = self._before
                if len(children(self.client, self.run_id, experiment_id)) == n_kids:
                    status = previous  # this invocation ran no job: nothing to change
            self._end(status)
        except Exception:  # the store may be what failed; nothing more to do at exit
            log.exception("could not close the sweep parent run")


# -- the parent run in the tracking process (mediaml.tracking.agent) -------------------------------------------
_in_agent: SweepParentRun | None = None


def sweep_settings(config: DictConfig) -> dict:
    """What the parent run needs of the sweep's config, resolved here (Hydra's resolvers and the sweep's own
    values: its folder's timestamp) for the tracking process."""
    def plain(node):
        return OmegaConf.to_container(node, resolve=True)

    return {"logger": plain(config.logger), "paths": {"output_root": str(config.paths.output_root)},
            "task": {"name": str(config.task.name), "objective": plain(config.task.objective)},
            "hydra": {"sweep": {"dir": str(config.hydra.sweep.dir)},
                      "overrides": {"task": list(config.hydra.overrides.task)},
                      "sweeper": plain(config.hydra.sweeper)}}


def _start_in_agent(settings: dict, here: dict[str, str]) -> None:
    global _in_agent
    _in_agent = SweepParentRun()
    _in_agent.start(OmegaConf.create(settings), here)


def _end_in_agent() -> str | None:
    from mediaml.tracking.agent import wait_ahead

    wait_ahead()  # the best trial's figures drawn ahead, the end's imports done: the end draws and reads alone
    return _in_agent.finish(_in_agent.config) if _in_agent is not None else None


def _abort_in_agent(status: str) -> None:
    if _in_agent is not None:
        _in_agent.abort(status)


def draw_if_best(run_id: str) -> None:
    """In the tracking process, in the background while the next jobs fit: the figures a finished job kept (logger.figures=best) are drawn
    if it is the sweep's best so far, so the sweep's end only logs them (it draws them itself otherwise)."""
    s = _in_agent
    if s is None or s.client is None or s.config is None:
        return
    run = s.client.get_run(run_id)
    objective = s.config.task.objective
    value = run.data.metrics.get(str(objective.metric))
    if value is None or value != value:  # no objective, or NaN: never the best
        return
    maximize = str(objective.direction) == "maximize"
    if s.best_so_far is not None and not (value > s.best_so_far if maximize else value < s.best_so_far):
        return  # ties: the first stays the best, as in Optuna
    s.best_so_far = value
    from mediaml.tracking.tracker import draw_pending_figures

    draw_pending_figures(run)


def elect_parent(client, experiment_id: str, query: str, mine: str) -> str:
    """The parent run of a sweep several workers may have created at once: the oldest (then the smallest
    id); a worker whose own candidate lost deletes it."""
    import time

    time.sleep(0.2)  # let a worker that created its candidate at the same moment finish writing it
    runs = client.search_runs([experiment_id], query, max_results=100)
    winner = min(runs, key=lambda r: (r.info.start_time, r.info.run_id)).info.run_id if runs else mine
    if winner != mine:
        client.delete_run(mine)
    return winner


def load_study(config: DictConfig):
    """The sweep's Optuna study (None when it has no storage or does not exist yet)."""
    import optuna

    from hydra_plugins.mediaml_optuna_sweeper.storage import open_storage

    s = config.hydra.sweeper
    if not s.storage:
        return None
    try:
        return optuna.load_study(study_name=s.study_name, storage=open_storage(s.storage))
    except KeyError:  # no such study yet
        return None


def recover_finished_trials(client, parent_id: str, experiment_id: str, config: DictConfig) -> list[int]:
    """A trial left RUNNING whose job's run ended FINISHED with its objective (the sweep was killed between
    the two): tell the study that value, so the rerun neither loses nor repeats it. Only a run started after its
    trial: the same sweep rerun on a new study (another `hydra.sweeper.storage`, the same MLflow store) has old
    runs with the same job numbers, and its own first trial may be running already (its run opens in the
    tracking process while this parent is found)."""
    import optuna

    study = load_study(config)
    if study is None:
        return []
    metric = str(config.task.objective.metric)
    kids = {r.data.tags.get("sweep.job_num"): r for r in children(client, parent_id, experiment_id)
            if r.info.status == "FINISHED" and metric in r.data.metrics}
    told = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        run = kids.get(str(t.number))
        started = t.datetime_start.timestamp() * 1000 if t.datetime_start else float("inf")
        if run is not None and run.info.start_time >= started - 1:
            study.tell(t.number, float(run.data.metrics[metric]))
            told.append(t.number)
    if told:
        log.warning("trials %s had finished (their runs are FINISHED) when the sweep was killed: told COMPLETE", told)
    return told


def _sigterm_to_interrupt(signum, frame):
    from mediaml.tracking.run import RunInterrupted  # train.py exits 143 on it, like a process killed by SIGTERM

    raise RunInterrupted(f"received signal {signum}")


def _param(key: str, value: Any):
    from mlflow.entities import Param

    from mediaml.tracking.tracker import _param_value

    return Param(key, _param_value(value))


# -- the summary -------------------------------------------------------------------------------------
def children(client, parent_id: str, experiment_id: str) -> list:
    return client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'", max_results=10000)


def children_by_job(client, parent_id: str, experiment_id: str) -> dict:
    """The parent's child runs by their job number (`sweep.job_num`: an Optuna job's trial number)."""
    return {r.data.tags.get("sweep.job_num"): r for r in children(client, parent_id, experiment_id)}


def summarise(client, parent_id: str, config: DictConfig) -> str:
    """Trials table, best value, counts, best-child tag and (Optuna) figures on the parent run; the block the
    sweep ends with (mediaml.tracking.summary.sweep_block)."""
    import tempfile

    parent = client.get_run(parent_id)
    metric = str(config.task.objective.metric)
    kids = children_by_job(client, parent_id, parent.info.experiment_id)
    study = load_study(config) if is_optuna(config) else None  # loaded once: lost children, table, figures
    if study is not None and close_lost_children(client, study, kids):
        kids = children_by_job(client, parent_id, parent.info.experiment_id)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if is_optuna(config):
            table, best_num, direction, figures = _optuna_table(study, kids, metric, tmp,
                                                                str(config.logger.get("sweep_figures", "png")))
        else:
            table, best_num, direction = _grid_table(config, kids, metric)
            figures = lambda: []  # noqa: E731
        table.to_csv(tmp / "trials.csv", index=False)
        client.log_artifact(parent_id, str(tmp / "trials.csv"), "sweep")
        block = _best_and_counts(client, parent, config, kids, table, best_num, direction)
        for f in figures():  # drawn meanwhile (in the tracking process: by a copy of it), logged now
            client.log_artifact(parent_id, str(f), "sweep/figures")
    return block


def _best_and_counts(client, parent, config: DictConfig, kids: dict, table, best_num, direction: str) -> str:
    """The counts, the best value, the best child's tag, model and figures, the parent's tags; the sweep's block."""
    parent_id, metric = parent.info.run_id, str(config.task.objective.metric)
    counts = {"sweep/n_complete": int((table["state"] == "COMPLETE").sum()),
              "sweep/n_pruned": int((table["state"] == "PRUNED").sum()),
              "sweep/n_failed": int((table["state"] == "FAIL").sum())}
    from mlflow.entities import Metric, RunTag
    import time

    now = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, 0) for k, v in counts.items()]
    tags, best_id = [], None
    for r in kids.values():  # one best child
        if r.data.tags.get("best") == "true":
            client.delete_tag(r.info.run_id, "best")
    if best_num is not None:
        best_row = table.loc[table["number"] == best_num].iloc[0]
        metrics.append(Metric(metric, float(best_row["value"]), now, 0))
        tags.append(RunTag("sweep.best_trial", str(best_num)))
        if is_optuna(config):
            tags.append(RunTag("optuna.best_trial", str(best_num)))
        if isinstance(best_row.get("run_id"), str) and best_row["run_id"]:
            best_id = best_row["run_id"]
            client.set_tag(best_id, "best", "true")
            tags.append(RunTag("sweep.best_run_id", best_row["run_id"]))
            best_run = next((r for r in kids.values() if r.info.run_id == best_row["run_id"]), None)
            if best_run is not None:  # logger.log_model / figures = best: the best trial's go to its run now
                from mediaml.tracking.tracker import log_pending_figures, log_pending_model

                log_pending_model(client, best_run)
                log_pending_figures(client, best_run)
    from mediaml.tracking.tracker import drop_pending_figures

    for r in kids.values():  # the figures the other finished trials kept are not needed any more
        if r.info.status != "RUNNING" and r.info.run_id != best_id:
            drop_pending_figures(client, r)
    tags.append(RunTag("sweep.direction", direction))
    client.log_batch(parent_id, metrics=metrics, tags=tags)
    from mediaml.tracking.summary import sweep_block

    best = next((r for r in kids.values() if r.info.run_id == best_id), None)
    return sweep_block(name=parent.info.run_name.removeprefix("sweep ") or "grid", n_complete=counts["sweep/n_complete"],
                       n_total=len(table), best_trial=best_num, objective=metric, direction=direction,
                       best_value=table.loc[table["number"] == best_num, "value"].iloc[0] if best_num is not None else None,
                       best_run_id=best_id, best_dir=best.data.tags.get("hydra.output_dir") if best else None,
                       parent_id=parent_id, tracking_uri=client.tracking_uri, experiment_id=parent.info.experiment_id,
                       sweep_dir=parent.data.tags.get("sweep.dir"), unit="trial" if is_optuna(config) else "job")


def _grid_table(config: DictConfig, kids: dict, metric: str):
    import pandas as pd

    direction = str(config.task.objective.direction)
    rows = []
    for num, r in sorted(kids.items(), key=lambda kv: int(kv[0]) if str(kv[0]).isdigit() else -1):
        state = {"FINISHED": "COMPLETE", "FAILED": "FAIL"}.get(r.info.status, r.info.status)
        dur = (r.info.end_time - r.info.start_time) / 1000 if r.info.end_time else None
        rows.append({"number": int(num), "state": state, "value": r.data.metrics.get(metric),
                     "run_name": r.info.run_name, "duration_s": dur, "run_id": r.info.run_id,
                     "command": r.data.tags.get("command", "")})
    table = pd.DataFrame(rows, columns=["number", "state", "value", "run_name", "duration_s", "run_id", "command"])
    done = table[(table["state"] == "COMPLETE") & table["value"].notna()]
    best = None
    if len(done):
        best = int(done.loc[done["value"].idxmax() if direction == "maximize" else done["value"].idxmin(), "number"])
    return table, best, direction


def trials_frame(study, run_ids: dict[str, str] | None = None):
    """One row per trial of an Optuna study: number, state, value, params.*, duration_s, run_id."""
    import pandas as pd

    rows = []
    for t in study.trials:
        if t.user_attrs.get(SURPLUS_ATTR):  # asked by a racing worker beyond n_trials, never run
            continue
        dur = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        rows.append({"number": t.number, "state": t.state.name, "value": t.value,
                     **{f"params.{k}": v for k, v in t.params.items()}, "duration_s": dur,
                     "run_id": (run_ids or {}).get(str(t.number), "")})
    return pd.DataFrame(rows)


def close_lost_children(client, study, kids: dict) -> list[str]:
    """A job whose worker was killed leaves its run RUNNING, its trial FAIL (failed by the worker that took
    over, see the sweeper): end that run FAILED, saying so."""
    import optuna

    closed = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)):
        run = kids.get(str(t.number))
        if run is not None and run.info.status == "RUNNING":
            client.set_tag(run.info.run_id, "mediaml.closed_by", "the sweep: its worker was lost, the trial failed "
                                                                  "and its params were queued again")
            client.set_terminated(run.info.run_id, status="FAILED")
            closed.append(run.info.run_id)
    return closed


def _optuna_table(study, kids: dict, metric: str, tmp: Path, figures: str = "png"):
    """(trials table, best trial, direction, a function that returns the figures' files): the figures are drawn
    while the caller goes on (draw_figures)."""
    import optuna

    table = trials_frame(study, {num: r.info.run_id for num, r in kids.items()})
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trial.number if complete else None
    return table, best, study.direction.name.lower(), draw_figures(study, tmp, figures) if complete else lambda: []


def draw_figures(study, out: Path, kinds: str = "png"):
    """Start drawing the study's figures (optuna_figures); a function that waits for them and returns their files.

    In the sweep's tracking process (mediaml.tracking.agent: one thread at work by then, nothing else on the other
    core at the sweep's end) a forked copy of it draws them from the study's trials, copied into memory before the
    fork (the copy touches no database connection), while the process logs the best trial's model and figures:
    ~0.6 s of a 10-trial sweep's end. Elsewhere they are drawn now."""
    from mediaml.tracking import agent

    check_sweep_figures(kinds)
    if kinds == "none" or not agent.in_agent() or not hasattr(os, "fork"):
        files = optuna_figures(study, out, kinds)
        return lambda: files
    import json

    import optuna

    agent.wait_ahead()  # the ahead thread idle: no lock of it held across the fork
    copy = optuna.create_study(directions=study.directions)
    copy.add_trials([t for t in study.get_trials(deepcopy=False) if t.state.is_finished()])
    notes = out / ".figures.json"
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the copy: draw, say which were skipped and why, and leave without any of the parent's exit work
        code = 1
        try:
            records: list[str] = []

            class Keep(logging.Handler):
                def emit(self, record):
                    records.append(record.getMessage())

            log.addHandler(Keep(logging.WARNING))
            files = optuna_figures(copy, out, kinds)
            notes.write_text(json.dumps({"files": [str(f) for f in files], "warnings": records}))
            code = 0
        finally:
            os._exit(code)

    def wait() -> list[Path]:
        _, status = os.waitpid(pid, 0)
        try:
            done = json.loads(notes.read_text())
        except (OSError, ValueError):
            log.warning("sweep figures not drawn: the process drawing them ended with status %s", status)
            return []
        for w in done["warnings"]:
            log.warning("%s", w)
        return [Path(f) for f in done["files"]]

    return wait


SWEEP_FIGURES = ("png", "html", "both", "none")


def check_sweep_figures(kinds) -> str:
    """`logger.sweep_figures`, refused unless one of SWEEP_FIGURES (each job checks it before its run opens)."""
    if str(kinds) not in SWEEP_FIGURES:
        from mediaml.errors import ConfigError

        raise ConfigError(f"logger.sweep_figures={kinds!r}: expected one of {', '.join(SWEEP_FIGURES)}")
    return str(kinds)


def optuna_figures(study, out: Path, kinds: str = "png") -> list[Path]:
    """Optuna's optimization history, param importances, parallel coordinate and slice plots, by
    `logger.sweep_figures`: PNG (matplotlib; shown inline in the MLflow UI), self-contained HTML (plotly,
    interactive, plotly.js inlined: no CDN, opens offline), both, or none.

    PNG is the default: plotly's first figure costs ~1.3 s of imports and validators at every sweep's end,
    and each HTML file carries its own 4.8 MB copy of plotly.js (benchmarks/bench_sweep_overhead.py)."""
    check_sweep_figures(kinds)
    if kinds == "none":
        return []
    import warnings

    written = []
    for name in ("optimization_history", "param_importances", "parallel_coordinate", "slice"):
        fn = f"plot_{name}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if kinds in ("html", "both"):
                    import optuna.visualization as vis

                    fig = getattr(vis, fn)(study)
                    fig.write_html(str(out / f"{name}.html"), include_plotlyjs=True, full_html=True)
                    written.append(out / f"{name}.html")
                if kinds in ("png", "both"):
                    import matplotlib

                    matplotlib.use("Agg")
                    import matplotlib.pyplot as plt
                    import optuna.visualization.matplotlib as vis_mpl

                    ax = getattr(vis_mpl, fn)(study)
                    first = ax.flat[0] if hasattr(ax, "flat") else ax
                    first.figure.savefig(out / f"{name}.png", dpi=100, bbox_inches="tight")
                    plt.close("all")
                    written.append(out / f"{name}.png")
        except Exception as e:  # e.g. importances of a single trial: skip that figure, keep the others
            log.warning("sweep figure %s skipped: %s", name, e)
    return written
