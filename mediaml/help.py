"""`python train.py --help`: mediaml's own page, written from the config tree itself (conf/), so a new task,
dataset, model, sweep or experiment YAML shows up in it without touching this file.

Read with plain text scanning, not Hydra: `python train.py --help` prints it before Hydra is even imported
(well under a second). With overrides (`python train.py task=video --help`) Hydra composes the config first
and prints the same page through `hydra.help.template` (conf/hydra/default.yaml), followed by the composed
config.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

CONF = Path(__file__).resolve().parents[1] / "conf"
_TASKS_LINE = re.compile(r"^tasks:\s*\[([^\]]*)\]", re.M)
_PARENT = re.compile(r"^\s*-\s*(\w+)\s*$", re.M)
_OVERRIDE = re.compile(r"^\s*-\s*override /(dataset|model):\s*(\S+)", re.M)


def _names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def _for_tasks(group: str) -> dict[str, list[str]]:
    """{task: [option names]} from each option's `tasks: [...]` line."""
    by_task: dict[str, list[str]] = {}
    for name in _names(group):
        for task in _tasks_of(group, name):
            if task:
                by_task.setdefault(task, []).append(name)
    return by_task


def _tasks_of(group: str, name: str, seen: tuple = ()) -> list[str]:
    """An option's `tasks: [...]`, or else its parent's (an option that starts from another: `defaults: [- deepwalk]`)."""
    path = CONF / group / f"{name}.yaml"
    if not path.is_file() or name in seen:
        return []
    text = path.read_text()
    m = _TASKS_LINE.search(text)
    if m:
        return [t.strip() for t in m.group(1).split(",") if t.strip()]
    for parent in _PARENT.findall(text):
        if parent != "_self_":
            return _tasks_of(group, parent, (*seen, name))
    return []


def _describe(path: Path, width: int = 86) -> tuple[str, dict[str, str]]:
    """The first line of a task YAML's leading comment (cut at a word, to `width`), and its default dataset and
    model."""
    text = path.read_text()
    about = ""
    for line in text.splitlines():
        body = line.lstrip("#").strip()
        if not line.startswith("#"):
            break
        if body and not body.startswith("@package"):
            about = body
            break
    if len(about) > width:
        about = about[:width].rsplit(" ", 1)[0].rstrip(",:;") + " ..."
    return about, dict(_OVERRIDE.findall(text))


def _wrap(items: list[str], defaults: set[str], indent: int, width: int = 100) -> str:
    out, line = [], ""
    for item in items:
        word = item + ("*" if item in defaults else "")
        if line and len(line) + 2 + len(word) + indent > width:
            out.append(line + ",")
            line = word
        else:
            line = f"{line}, {word}" if line else word
    out.append(line)
    return ("\n" + " " * indent).join(out)


def help_text() -> str:
    datasets, models = _for_tasks("dataset"), _for_tasks("model")
    data_dir = os.environ.get("MEDIAML_DATA_DIR")
    tracking = os.environ.get("MLFLOW_TRACKING_URI")
    root = CONF.parent
    parts = [
        "mediaml: one train.py for five media-analytics studies (Hydra configs, Optuna sweeps, MLflow tracking).",
        "",
        "Usage",
        "  python train.py [key=value ...]        one run (no arguments: task=genre on synthetic data)",
        "  python train.py -m [key=value ...]     a sweep: a grid (a=1,2 b=x,y) or -m hparams_search=NAME",
        "",
        "Tasks (task=NAME) with their datasets (dataset=NAME) and models (model=NAME); * = the task's default",
    ]
    for task in _names("task"):
        about, default = _describe(CONF / "task" / f"{task}.yaml")
        parts.append(f"  {task:10s} {about}")
        for label, options in (("datasets", datasets.get(task, [])), ("models", models.get(task, []))):
            if options:
                key = label[:-1]
                parts.append(f"  {'':10s} {label + ':':9s} "
                             + _wrap(options, {default.get(key, "")}, indent=23))
    sweeps, experiments = _names("hparams_search"), _names("experiment")
    parts += [
        "",
        f"Sweeps (-m hparams_search=NAME): {', '.join(sweeps)}",
        "  python train.py -m hparams_search=genre_optuna dataset=spotify_cs98x hydra.sweeper.n_trials=20",
        "  python train.py -m model=random_forest,gaussian_nb                 # a grid: one run per value",
        "  python train.py -m hparams_search=genre_optuna hydra/launcher=joblib  # trials side by side",
        "Experiments (experiment=NAME: a study's exact settings, see experiments/)",
        "  " + _wrap(experiments, set(), indent=2),
        "",
        "Data",
        "  Real data sets are read under paths.data_dir, set by the environment variable MEDIAML_DATA_DIR",
        f"  (now: {data_dir if data_dir else 'not set, so ' + str(root / 'data') + '; the synthetic_* datasets need none'}).",
        "  A dataset YAML under conf/dataset/ describes new data (files, columns, label) by config alone.",
        "",
        "Results",
        f"  Each run's files: {root / 'outputs'}/<task>/runs/<time>/ (sweeps: .../multiruns/, .../sweeps/).",
        "  Tracking: " + (f"MLFLOW_TRACKING_URI={tracking}" if tracking else
                          f"the project store {root / 'mlruns'} (set MLFLOW_TRACKING_URI for a server); look with"),
    ]
    if not tracking:
        parts.append(f"    mlflow ui --backend-store-uri sqlite:///{root / 'mlruns' / 'mlflow.db'}   "
                     "then open http://127.0.0.1:5000")
    parts += [
        "  python -m mediaml.sweeps show STUDY_OR_FOLDER    a sweep's trials, best trial and parent run",
        "",
        "More",
        "  logger=none (no tracking)  seed=N  n_threads=N  trainer=gpu (video)  --cfg job (print the config)",
        "  python train.py task=video --help   this page, then the config those overrides compose",
        "  HYDRA_FULL_ERROR=1 python train.py ...   full tracebacks for errors that print one line",
        "  README.md (quick start, tests), experiments/ (each study's write-up and commands)",
    ]
    return "\n".join(parts)


def hydra_template() -> str:
    """`hydra.help.template`: this page, then the composed config (Hydra's $CONFIG), `$` escaped for Hydra's
    string.Template."""
    return help_text().replace("$", "$$") + "\n\n== The config these overrides compose ==\n$CONFIG\n"
