"""The command line: `python train.py --help` (mediaml's own page, written from conf/, printed before Hydra is
imported) and user errors (one message, the nearest valid key or option, exit 2, no run opened)."""
import subprocess
import sys
from pathlib import Path

from conftest import PROJECT_ROOT

CONF = Path(PROJECT_ROOT) / "conf"


def _train(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, capture_output=True, text=True, env=env)


def test_help_lists_every_task_dataset_model_sweep_and_experiment_without_importing_hydra(tmp_path):
    import os

    env = {**os.environ, "MEDIAML_DATA_DIR": str(tmp_path)}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = _train("-X", "importtime", "train.py", "--help", env=env)
    assert proc.returncode == 0, proc.stderr
    page = proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.split(".")[0] in ("hydra", "mlflow", "sklearn", "numpy", "pandas")}
    for group in ("task", "dataset", "model", "hparams_search", "experiment"):
        for option in sorted(p.stem for p in (CONF / group).glob("*.yaml")):
            assert option in page, (group, option)
    genre = page[page.index("  genre "):page.index("  listening ")]
    assert "synthetic_genre*" in genre and "random_forest*" in genre and "spotify_cs98x" in genre
    assert "c3d" not in genre  # a model of another task is not offered for this one
    assert f"now: {tmp_path}" in page  # where data is read, as set
    assert "mlflow ui --backend-store-uri sqlite:///" in page and "hparams_search=genre_optuna" in page


def test_help_with_overrides_is_the_same_page_then_their_config():
    proc = _train("train.py", "task=listening", "--help")
    assert proc.returncode == 0, proc.stderr
    head, config = proc.stdout.split("== The config these overrides compose ==")
    assert head.startswith("mediaml: one train.py") and "Tasks (task=NAME)" in head
    assert "_target_: mediaml.tasks.listening.task.ListeningTask" in config


def _no_runs(store: Path) -> bool:
    if not (store / "mlflow.db").exists():
        return True
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    return not client.search_runs([e.experiment_id for e in client.search_experiments()])


def _user_error(tmp_path, *overrides: str, data_dir: str | None = None, full: bool = False) -> str:
    import os

    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"}
    env.pop("HYDRA_FULL_ERROR", None)
    if data_dir is not None:
        env["MEDIAML_DATA_DIR"] = data_dir
    if full:
        env["HYDRA_FULL_ERROR"] = "1"
    proc = _train("train.py", f"paths.output_root={tmp_path / 'out'}", *overrides, env=env)
    if full:
        assert proc.returncode != 0 and "Traceback" in proc.stderr
        return proc.stderr
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr and "HYDRA_FULL_ERROR" not in proc.stderr
    assert _no_runs(tmp_path / "mlruns")  # found before any run opened
    return proc.stderr


def test_a_mistyped_key_names_the_nearest_valid_key_not_plus_key(tmp_path):
    err = _user_error(tmp_path, "model.n_estimatorz=5")
    assert "did you mean model.n_estimators?" in err and "To append to your config" not in err
    err = _user_error(tmp_path, "task=listening", "model.walk_lenght=5")
    assert "did you mean model.walk_length?" in err  # the keys of the config these choices compose
    assert "Could not override 'model.n_estimatorz'" in _user_error(tmp_path, "model.n_estimatorz=5", full=True)


def test_a_mistyped_option_a_bad_override_a_wrong_pair_and_missing_data_print_one_message(tmp_path):
    err = _user_error(tmp_path, "model=randm_forest")
    assert "there is no conf/model/randm_forest.yaml; did you mean model=random_forest" in err
    assert "cannot read the override 'model.n_estimators=[1,2'" in _user_error(tmp_path, "model.n_estimators=[1,2")
    err = _user_error(tmp_path, "task.scaler=zscore", "logger=none")  # a value the task refuses
    assert "task.scaler='zscore': expected one of ['minmax', 'none', 'standard']" in err
    err = _user_error(tmp_path, "logger.sweep_figures=svg")  # a logger value, refused before the run opens
    assert "logger.sweep_figures='svg': expected one of png, html, both, none" in err
    err = _user_error(tmp_path, "task=genre", "dataset=spotify_cs98x", "model=deepwalk")
    assert "model=deepwalk is for task(s) ['listening'], not task=genre" in err and len(err.splitlines()) == 1
    err = _user_error(tmp_path, "dataset=spotify_cs98x", data_dir=str(tmp_path / "nowhere"))
    assert "spotify_cs98x" in err and f"MEDIAML_DATA_DIR={tmp_path / 'nowhere'}" in err
    # a dataset config with a data_dir of its own: the hint names that config, not MEDIAML_DATA_DIR
    from conftest import user_dataset

    search = user_dataset(tmp_path / "myconf", "mine", f"""
defaults: [spotify_cs98x, _self_]
name: mine
data_dir: {tmp_path / 'elsewhere'}
""")
    err = _user_error(tmp_path, search, "dataset=mine", data_dir=str(tmp_path / "nowhere"))
    assert f"data_dir: {tmp_path / 'elsewhere'} (set by that dataset config itself" in err
    assert "fix that config's data_dir" in err and "point MEDIAML_DATA_DIR" not in err


def test_a_value_of_the_wrong_type_is_refused_before_the_run_opens_naming_the_file_and_its_value(tmp_path):
    err = _user_error(tmp_path, "task.cv_folds=abc")
    assert "task.cv_folds='abc': expected an integer (conf/task/genre.yaml has cv_folds: 5)" in err
    assert len(err.splitlines()) == 1
    err = _user_error(tmp_path, "model.n_estimators=many")
    assert "model.n_estimators='many': expected an integer (conf/model/random_forest.yaml has n_estimators: 100)" in err
    err = _user_error(tmp_path, "task=listening", "dataset=synthetic_listening", "task.maps.enabled=maybe")
    assert "task.maps.enabled='maybe': expected true or false" in err


def test_numbers_stay_numbers_null_and_unset_keys_are_left_to_the_task():
    from omegaconf import OmegaConf

    from mediaml.tasks.base import check_override_types
    from mediaml.errors import ConfigError

    cfg = OmegaConf.create({"task": {"cv_folds": 0.5, "split": {"test_size": 1}}, "model": {"n_estimators": None,
                                                                                         "max_depth": "deep"}})
    choices = {"task": "genre", "model": "random_forest"}
    # an int key takes a float (scikit-learn's fractions), a float key an int, null passes, max_depth is not in the file
    check_override_types(cfg, ["task.cv_folds=0.5", "task.split.test_size=1", "model.n_estimators=null",
                               "++model.max_depth=deep", "model=random_forest", "~task.scaler"], choices)
    cfg.task.split.test_size = "1e-1"  # an interpolated number arrives as text
    check_override_types(cfg, ["task.split.test_size=${oc.env:X}"], choices)
    cfg.task.split.test_size = "a fifth"
    try:
        check_override_types(cfg, ["task.split.test_size=a fifth"], choices)
    except ConfigError as e:
        assert "expected a number (conf/task/genre.yaml has test_size: 0.2)" in str(e)
    else:
        raise AssertionError("a text where the file has a number was taken")


def test_dev_run_installs_once_and_again_only_when_pyproject_changes(tmp_path):
    """`./dev run` makes the venv and installs, then runs train.py with the overrides; a second call skips the
    install; an edit of pyproject.toml redoes it. (A copy of the script in a scratch checkout whose venv's pip
    records its calls: the install itself is what CI's first `./dev run` does for real.)"""
    import os
    import shutil
    import stat

    repo = tmp_path / "clone"
    (repo / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(Path(PROJECT_ROOT) / "dev", repo / "dev")
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (repo / "train.py").write_text("import sys; print('train.py', *sys.argv[1:])\n")
    os.symlink(sys.executable, repo / ".venv" / "bin" / "python")
    pip = repo / ".venv" / "bin" / "pip"
    pip.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'pip.log'}\n")
    pip.chmod(pip.stat().st_mode | stat.S_IEXEC)

    def dev(*args):
        proc = subprocess.run(["bash", str(repo / "dev"), *args], capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        return proc

    def pip_calls():
        log = tmp_path / "pip.log"
        return log.read_text().splitlines() if log.exists() else []

    assert dev("run", "task=genre", "seed=3").stdout.strip() == "train.py task=genre seed=3"
    assert pip_calls() == ["install -q --no-compile -e .[all,dev]", "check"]
    dev("run")
    assert len(pip_calls()) == 2  # done already: skipped
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "2"\n')
    dev("run")
    assert len(pip_calls()) == 4
    bad = subprocess.run(["bash", str(repo / "dev"), "deploy"], capture_output=True, text=True)
    assert bad.returncode == 2 and "./dev run" in bad.stderr


def test_the_console_says_each_thing_once_without_known_noise(tmp_path):
    """A video run (Lightning) and a genre run: no Lightning line twice, none of the filtered third-party lines
    (mediaml/quiet.py: each with its reason), no log line of more than 300 characters, the summary block last."""
    import os

    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    env.pop("MEDIAML_PROGRESS", None)
    video = _train("train.py", "task=video", "dataset=synthetic_clips", "trainer=cpu", "trainer.max_epochs=1",
                   f"paths.output_root={tmp_path / 'out'}", f"paths.cache_dir={tmp_path / 'cache'}",
                   "dataset.n_per_class={train: 4, val: 2, test: 2}", env=env)
    genre = _train("train.py", f"paths.output_root={tmp_path / 'out'}", env=env)
    for proc in (video, genre):
        assert proc.returncode == 0, proc.stderr[-2000:]
        text = proc.stdout + proc.stderr
        assert "litlogger" not in text and "script_method" not in text and "LeafSpec" not in text
        assert "pickle or cloudpickle format requires exercising caution" not in text
        assert "can be interpreted in multiple ways" not in text
        logged = [line for line in text.splitlines() if line.startswith("[20")]
        assert max(len(line) for line in logged) <= 300, max(logged, key=len)
        assert proc.stdout.rstrip().splitlines()[-1].strip().startswith("then open http://127.0.0.1:5000/#/experiments/")
    lines = (video.stdout + video.stderr).splitlines()
    assert sum("GPU available" in line for line in lines) == 1  # was twice: Lightning's handler and Hydra's
    assert sum("`Trainer.fit` stopped" in line for line in lines) == 1
