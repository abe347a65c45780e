"""The `optuna` sweeper plugin: search-space parsing, and the sweep loop on a tiny Hydra app
(tests/sweeper_app, ~1 s a run) for resume, failures, stale trials and refused reruns."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from hydra_plugins.mediaml_optuna_sweeper._search_space import params_to_overrides, parse_search_space

APP = Path(__file__).parent / "sweeper_app" / "app.py"
optuna.logging.set_verbosity(optuna.logging.WARNING)



# --- each trial's config from the one before (hydra_plugins/mediaml_optuna_sweeper/_compose.py) ---------------

def _trial(i: int, *sampled: str, fixed: tuple[str, ...] = ("hparams_search=genre_optuna", "task.cv_folds=2")):
    return [*fixed, *sampled, f"hydra.sweep.subdir={i}", f"++hydra.job.env_set.MEDIAML_OPTUNA_TRIAL_ID={i + 1}"]


def test_a_trial_patched_from_the_one_before_is_the_config_hydra_composes():
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    import mediaml  # noqa: F401  (the ${mediaml.*} resolvers)
    from hydra_plugins.mediaml_optuna_sweeper._compose import ReusingLoader

    hydra_loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(APP.parents[2] / "conf")))
    master = hydra_loader.load_configuration("train", overrides=["hparams_search=genre_optuna", "task.cv_folds=2"],
                                             run_mode=RunMode.MULTIRUN)
    loader = ReusingLoader(hydra_loader)
    jobs = [_trial(i, f"model.n_estimators={n}", f"++model.max_depth={d}", f"++model.max_features={f}")
            for i, (n, d, f) in enumerate([(100, 8, "sqrt"), (165, "null", "log2"), (290, 32, 0.5), (50, 8, "sqrt")])]
    # a top-level key may be a config group, and a group may be chosen per trial: those are composed
    jobs += [_trial(4, "model.n_estimators=60", "++model.max_depth=8", "++model.max_features=sqrt", "seed=3"),
             _trial(5, "model.n_estimators=60", "++model.max_depth=8", "++model.max_features=sqrt", "seed=4"),
             _trial(6, "model=gaussian_nb", fixed=("task.cv_folds=2",)),
             _trial(7, "model=logistic_regression", fixed=("task.cv_folds=2",))]
    for job in jobs:
        patched, composed = loader.load_sweep_config(master, job), hydra_loader.load_sweep_config(master, job)
        assert OmegaConf.to_yaml(patched) == OmegaConf.to_yaml(composed), job
        assert OmegaConf.to_container(patched) == OmegaConf.to_container(composed)
    assert loader.reused == 3  # the 2nd-4th trials; each group or top-level change was composed by Hydra
    assert patched.model._target_ == "sklearn.linear_model.LogisticRegression"
    assert patched.hydra.overrides.task[-1] == "model=logistic_regression"
    assert "model.n_estimators=165" in loader.load_sweep_config(master, jobs[1]).hydra.job.override_dirname

# --- search space ---------------------------------------------------------------------------

@pytest.mark.parametrize("override, distribution", [
    ("a=choice(1,2,3)", CategoricalDistribution([1, 2, 3])),
    ("a=x,y", CategoricalDistribution(["x", "y"])),
    ("a=8,16,null", CategoricalDistribution([8, 16, None])),
    ("a=range(2,11)", IntDistribution(2, 10)),
    ("a=range(0,10,3)", IntDistribution(0, 9, step=3)),
    ("a=range(0.5,2.0,0.5)", CategoricalDistribution([0.5, 1.0, 1.5])),
    ("a=interval(0.1,1)", FloatDistribution(0.1, 1.0)),
    ("a=tag(log,interval(1e-4,0.1))", FloatDistribution(1e-4, 0.1, log=True)),
    ("a=int(interval(10,300))", IntDistribution(10, 300)),
    ("a=tag(log,int(interval(1,64)))", IntDistribution(1, 64, log=True)),
])
def test_sweep_syntax_maps_to_optuna_distributions(override, distribution):
    space = parse_search_space([override])
    assert space.distributions == {"a": distribution}
    assert space.fixed == []


def test_sampled_values_come_back_as_the_overrides_hydra_parses_to_them():
    parser = OverridesParser.create()
    dim = parse_search_space(["++a='x y',[1,2],{k:1},null,'null',3,abc"]).dimensions["a"]
    assert [parser.parse_override(dim.override(c)).value() for c in dim.distribution.choices] == \
        ["x y", [1, 2], {"k": 1}, None, "null", 3, "abc"]
    assert dim.override(None) == "++a=null"
    for override, value in [("a=interval(0.1,1)", 0.123), ("+a=int(interval(10,300))", 42)]:
        dim = parse_search_space([override]).dimensions["a"]
        assert parser.parse_override(dim.override(value)).value() == value


def test_fixed_and_search_overrides():
    # Config params first, then the command line: its `a=1,2` replaces the config's interval.
    params = {"a": "interval(0,1)", "b": 3, "c": None, "d": True, "e": "tag(log,interval(1,10))"}
    space = parse_search_space(params_to_overrides(params) + ["a=1,2", "g=hello", "+f=x"])
    assert space.distributions == {"a": CategoricalDistribution([1, 2]),
                                   "e": FloatDistribution(1, 10, log=True)}
    assert space.fixed == ["b=3", "c=null", "d=true", "g=hello", "+f=x"]
    assert space.overrides({"a": 2, "e": 3.5}) == ["b=3", "c=null", "d=true", "g=hello", "+f=x", "e=3.5", "a=2"]


# --- the sweep loop on the tiny app -------------------------------------------------------------

def run_app(out: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(APP), "-m", f"out={out}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed:\n{proc.stderr[-3000:]}")
    return proc


def trials(out: Path, study_name: str = "app") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study_name, storage=f"sqlite:///{out}/sweep/optuna.db").trials


def states(out: Path) -> list[str]:
    return [t.state.name for t in trials(out)]


def test_sweep_writes_results_and_rerun_runs_only_missing_trials(tmp_path):
    run_app(tmp_path, "hydra.sweeper.n_trials=4")
    assert states(tmp_path) == ["COMPLETE"] * 4
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.name.isdigit()) == ["0", "1", "2", "3"]
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    best = min(trials(tmp_path), key=lambda t: t.value)
    assert results["best_value"] == best.value and results["best_params"] == best.params
    assert results["n_complete_trials"] == 4 and results["direction"] == "minimize"

    rerun = run_app(tmp_path, "hydra.sweeper.n_trials=4")  # nothing left to do
    assert "4/4 trials complete, 0 running elsewhere; running up to 0 here" in rerun.stderr + rerun.stdout
    assert len(trials(tmp_path)) == 4

    run_app(tmp_path, "hydra.sweeper.n_trials=6")  # two more, in job folders 4 and 5
    assert states(tmp_path) == ["COMPLETE"] * 6
    assert (tmp_path / "sweep" / "5").is_dir()
    # The resumed seeded sampler must not replay the first session's draws.
    first, resumed = trials(tmp_path)[:2], trials(tmp_path)[4:]
    assert [t.params for t in first] != [t.params for t in resumed]


def test_failed_trials_are_told_fail_and_the_sweep_goes_on(tmp_path):
    run_app(tmp_path, "hydra.sweeper.n_trials=6", "fail_above=0")
    done = trials(tmp_path)
    assert {t.state for t in done} == {TrialState.COMPLETE, TrialState.FAIL}
    for t in done:
        assert (t.state == TrialState.FAIL) == (t.params["x"] > 0)
        if t.state == TrialState.FAIL:
            assert "ValueError" in t.user_attrs["error"]


def test_a_sweep_whose_trials_all_fail_raises(tmp_path):
    proc = run_app(tmp_path, "hydra.sweeper.n_trials=2", "fail_above=-10", check=False)
    assert proc.returncode != 0
    assert "all 2 trials of this sweep failed" in proc.stderr
    assert states(tmp_path) == ["FAIL", "FAIL"]


def stop_during_second_trial(out: Path, args: tuple[str, ...], sig: signal.Signals) -> None:
    """Start a sweep in its own process group and send `sig` to the group (as a terminal's Ctrl-C
    does) once the second trial's job has started (Hydra made its folder; it then sleeps 1 s)."""
    proc = subprocess.Popen([sys.executable, str(APP), "-m", f"out={out}", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (out / "sweep" / "1").is_dir():
        assert time.monotonic() < deadline and proc.poll() is None, "the second trial never started"
        time.sleep(0.05)
    time.sleep(0.1)
    os.killpg(proc.pid, sig)
    assert proc.wait(timeout=30) != 0


@pytest.mark.slow  # long: CI runs it with -m slow
def test_ctrl_c_fails_the_running_trial_and_queues_it_for_the_rerun(tmp_path):
    args = ("hydra.sweeper.n_trials=3", "sleep=1")
    stop_during_second_trial(tmp_path, args, signal.SIGINT)
    assert states(tmp_path) == ["COMPLETE", "FAIL", "WAITING"]  # WAITING: the FAIL's params, queued

    run_app(tmp_path, *args)
    done = trials(tmp_path)
    assert [t.state.name for t in done] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert done[2].params == done[1].params


@pytest.mark.slow  # long: CI runs it with -m slow
def test_trial_left_running_by_a_killed_sweep_is_failed_and_rerun_first(tmp_path):
    args = ("hydra.sweeper.n_trials=3", "sleep=1")
    stop_during_second_trial(tmp_path, args, signal.SIGKILL)
    assert states(tmp_path) == ["COMPLETE", "RUNNING"]  # nobody told Optuna

    run_app(tmp_path, *args)  # the dead sweep's lock was released with it
    done = trials(tmp_path)
    assert [t.state.name for t in done] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert done[2].params == done[1].params
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.name.isdigit()) == ["0", "1", "2", "3"]


def test_rerun_with_other_fixed_overrides_or_space_is_refused(tmp_path):
    run_app(tmp_path, "hydra.sweeper.n_trials=1")
    for changed in ("fail_above=100", "x=choice(1,2)"):
        proc = run_app(tmp_path, "hydra.sweeper.n_trials=2", changed, check=False)
        assert proc.returncode != 0
        assert "hydra.sweeper.study_name=<new name>" in proc.stderr
    assert states(tmp_path) == ["COMPLETE"]

    run_app(tmp_path, "hydra.sweeper.n_trials=1", "fail_above=100", "hydra.sweeper.study_name=other")
    assert [t.state.name for t in trials(tmp_path, "other")] == ["COMPLETE"]


# --- many workers, one study --------------------------------------------------------------------

def study_of(out: Path, storage: str) -> optuna.Study:
    from hydra_plugins.mediaml_optuna_sweeper.storage import open_storage

    open_storage.cache_clear()  # a journal's replay state is per object: read the file afresh
    return optuna.load_study(study_name="app", storage=open_storage(storage))


STORAGES = {"sqlite": "sqlite:///{out}/sweep/optuna.db", "journal": "journal:///{out}/sweep/study.log"}
# Lost trials of a dead worker on this host are seen at once (its pid); the grace period only covers other
# hosts, kept long so a loaded machine's late heartbeat never looks like a lost worker.
FAST_BEAT = ("hydra.sweeper.heartbeat_interval=0.5", "hydra.sweeper.grace_period=60")


def start_worker(out: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(APP), "-m", f"out={out}", *FAST_BEAT, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


@pytest.mark.parametrize("kind", sorted(STORAGES))
def test_two_workers_started_together_run_one_study_to_exactly_n_trials(tmp_path, kind):
    storage = STORAGES[kind].format(out=tmp_path)
    args = ("hydra.sweeper.n_trials=6", "sleep=0.3", f"hydra.sweeper.storage={storage}")
    workers = [start_worker(tmp_path, *args) for _ in range(2)]
    logs = [w.communicate(timeout=120)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs
    trials = study_of(tmp_path, storage).trials
    ran = [t for t in trials if not t.user_attrs.get("mediaml.surplus")]
    assert [t.state.name for t in ran] == ["COMPLETE"] * 6  # a global cap, nothing failed
    assert len({tuple(sorted(t.params.items())) for t in ran}) == 6  # no draw repeated by the other worker
    # Both took part, each trial in its own job folder named by its number.
    assert len({t.user_attrs["mediaml.worker"] for t in ran}) == 2
    assert sorted(int(p.name) for p in (tmp_path / "sweep").iterdir() if p.name.isdigit()) == \
        sorted(t.number for t in ran)


@pytest.mark.slow  # long: CI runs it with -m slow
def test_a_worker_killed_mid_trial_loses_only_that_trial_which_the_other_runs(tmp_path):
    storage = STORAGES["sqlite"].format(out=tmp_path)
    args = ("hydra.sweeper.n_trials=5", "sleep=1.5", f"hydra.sweeper.storage={storage}")
    victim = start_worker(tmp_path, *args)
    other = start_worker(tmp_path, *args)
    deadline = time.monotonic() + 60
    victim_id = None
    while victim_id is None:  # the victim is inside a trial (its job started; it sleeps 1.5 s)
        assert time.monotonic() < deadline and victim.poll() is None, "the victim never started a trial"
        time.sleep(0.1)
        try:
            study = study_of(tmp_path, storage)
        except KeyError:  # not created yet
            continue
        running = [t for t in study.get_trials(states=(TrialState.RUNNING,))
                   if t.user_attrs.get("mediaml.worker", "").endswith(f":{victim.pid}")]
        if running and (tmp_path / "sweep" / str(running[0].number)).is_dir():
            victim_id = running[0].number
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    log = other.communicate(timeout=120)[0]
    assert other.returncode == 0, log
    trials = {t.number: t for t in study_of(tmp_path, storage).trials}
    ran = [t for t in trials.values() if not t.user_attrs.get("mediaml.surplus")]
    assert sum(t.state == TrialState.COMPLETE for t in ran) == 5
    lost = trials[victim_id]
    assert lost.state == TrialState.FAIL  # the only trial lost ...
    assert [t.number for t in ran if t.state == TrialState.FAIL] == [victim_id]
    retry = [t for t in ran if t.user_attrs.get("mediaml.retry_of") == victim_id]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE and retry[0].params == lost.params  # ... rerun
    assert f"trial {victim_id} was lost (its worker" in log


def test_a_trial_asked_beyond_n_trials_by_a_racing_worker_is_surplus():
    from hydra_plugins.mediaml_optuna_sweeper._core import is_surplus

    study = optuna.create_study()
    done = study.ask()
    study.tell(done, 1.0)
    first, second = study.ask(), study.ask()  # two workers asking at once for the last of n_trials=2
    assert not is_surplus(study, first, 2) and is_surplus(study, second, 2)
    study.tell(first, state=TrialState.FAIL)  # the lower one failed: the other takes its place
    assert not is_surplus(study, second, 2)
    study.enqueue_trial({"x": 1.0})  # a queued trial (#3) holds a place for trials numbered above it
    later = study._storage.create_new_trial(study._study_id)
    assert is_surplus(study, optuna.trial.Trial(study, later), 3)


def test_a_running_trial_is_lost_when_its_worker_is_gone_or_silent_past_the_grace_period():
    import datetime
    import socket

    from optuna.distributions import FloatDistribution
    from hydra_plugins.mediaml_optuna_sweeper._core import lost_because, this_worker

    def running(worker: str, beat: float | None) -> optuna.trial.FrozenTrial:
        attrs = {"mediaml.worker": worker, **({"mediaml.heartbeat": beat} if beat is not None else {})}
        return optuna.trial.create_trial(state=TrialState.RUNNING, params={"x": 1.0},
                                         distributions={"x": FloatDistribution(0, 2)}, user_attrs=attrs)

    now = time.time()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert lost_because(running(this_worker(), now - 999), 60, now) is None  # this worker's own trial
    assert lost_because(running(f"other-host:{os.getpid()}", now - 10), 60, now) is None
    assert "no heartbeat from other-host:1 for 61 s" in lost_because(running("other-host:1", now - 61), 60, now)
    assert "is gone" in lost_because(running(f"{socket.gethostname()}:{dead.pid}", now), 60, now)
    assert lost_because(running(f"{socket.gethostname()}:{os.getppid()}", now), 60, now) is None  # alive
    old = running("", None)
    old.datetime_start = datetime.datetime.now() - datetime.timedelta(seconds=120)
    assert "no heartbeat" in lost_because(old, 60, now)


def test_a_sweep_started_as_a_nonzero_distributed_rank_is_refused(tmp_path):
    proc = subprocess.run([sys.executable, str(APP), "-m", f"out={tmp_path}"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "RANK": "1"})
    assert proc.returncode != 0 and "runs as distributed rank 1" in proc.stderr
    assert not (tmp_path / "sweep" / "0").exists()
