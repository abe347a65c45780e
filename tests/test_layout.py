"""The package layout: one package per task under mediaml/tasks/, a shared layer that knows no task, no
task package importing another, the old names that stay for one release, and the per-study extras."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT

PKG = PROJECT_ROOT / "mediaml"
TASKS = ["video", "listening", "personas", "genre", "catalog"]


def imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports (top level or inside functions), as dotted names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def owner(module: str) -> str | None:
    """The task package a mediaml module belongs to, or None for the shared layer / other packages."""
    parts = module.split(".")
    if parts[:2] == ["mediaml", "tasks"] and len(parts) > 2 and parts[2] in TASKS:
        return parts[2]
    return None


def test_each_task_is_one_package_and_the_old_folders_are_gone():
    assert sorted(p.name for p in (PKG / "tasks").iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(TASKS)
    for t in TASKS:
        assert (PKG / "tasks" / t / "task.py").is_file() and (PKG / "tasks" / t / "__init__.py").is_file()
    for gone in ("data", "models", "metrics", "plots", "analysis"):
        assert not (PKG / gone).exists(), f"mediaml/{gone}/ should hold nothing task-specific"


def test_no_task_package_imports_another_and_the_shared_layer_imports_none():
    shared = [p for p in PKG.rglob("*.py") if owner(".".join(p.relative_to(PROJECT_ROOT).with_suffix("").parts)) is None]
    seen_cross, seen_shared = [], []
    for t in TASKS:
        for f in (PKG / "tasks" / t).rglob("*.py"):
            for m in imported_modules(f):
                o = owner(m)
                if o is not None and o != t:
                    seen_cross.append(f"{f.relative_to(PROJECT_ROOT)} imports {m}")
    for f in shared:
        if f.name == "predict_video.py":  # the one-release alias of mediaml.tasks.video.predict
            continue
        for m in imported_modules(f):
            if owner(m) is not None:
                seen_shared.append(f"{f.relative_to(PROJECT_ROOT)} imports {m}")
    assert seen_cross == [] and seen_shared == []
    # the walker does see imports (a check that cannot fail is no check)
    assert "mediaml.tasks.video.cache" in imported_modules(PKG / "tasks" / "video" / "task.py")


def test_every_dataset_and_model_target_lives_in_its_own_task_package(make_cfg):
    import yaml

    for group in ("dataset", "model"):
        for p in sorted((PROJECT_ROOT / "conf" / group).glob("*.yaml")):
            node = yaml.safe_load(p.read_text())
            target, tasks = node.get("_target_"), node.get("tasks")
            if target and target.startswith("mediaml."):
                assert tasks and owner(target) in tasks, f"{p.name}: {target} outside mediaml/tasks/{tasks}"


def _py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)


def test_genre_run_imports_no_study_library():
    """task=genre (the core install) imports neither torch nor another study's libraries."""
    code = ("import sys, mediaml.run, mediaml.tasks.genre.task, mediaml.tasks.genre.synthetic, mediaml.tracking.run; "
            "heavy = [m for m in ('torch', 'lightning', 'gensim', 'numba', 'spacy', 'altair', 'statsmodels', "
            "'sentence_transformers') if m in sys.modules]; print(heavy); assert heavy == []")
    r = _py(code)
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]


BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ModuleNotFoundError(name)
        return None
sys.meta_path.insert(0, Block())
"""


def test_a_task_whose_extra_is_missing_stops_with_the_install_command(tmp_path):
    """As in a core-only venv: torch cannot be found, so task=video stops before any work, exit 2."""
    sitecustom = tmp_path / "sitecustomize.py"
    sitecustom.write_text(BLOCK.format(blocked={"torch", "lightning"}))
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db"}
    r = subprocess.run([sys.executable, "train.py", "task=video", "dataset=synthetic_clips",
                        f"paths.output_root={tmp_path / 'out'}"], capture_output=True, text=True,
                       cwd=PROJECT_ROOT, env=env, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "task=video needs the [video] extra (missing: torch, lightning)" in r.stderr
    assert '[video]"' in r.stderr and "pip install -e" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "m.db").exists()  # stopped before any MLflow run
    # and with the block in place the core still runs genre
    r = subprocess.run([sys.executable, "train.py", "logger=none", f"paths.output_root={tmp_path / 'out'}"],
                       capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def test_missing_extra_names_every_missing_module():
    from mediaml.errors import MissingExtraError, require_extra

    require_extra("genre", ["sklearn", "numpy"])  # installed: nothing raised
    with pytest.raises(MissingExtraError, match=r"needs the \[video\] extra \(missing: no_such_mod_a, no_such_mod_b\)"):
        require_extra("video", ["numpy", "no_such_mod_a", "no_such_mod_b"])


@pytest.mark.slow  # long: CI runs it with -m slow
def test_predict_video_alias_still_works():
    r = _py("import warnings; warnings.simplefilter('error', FutureWarning)\n"
            "try:\n    import mediaml.predict_video\nexcept FutureWarning as w:\n    print('warned', w)")
    assert "warned" in r.stdout and "mediaml.tasks.video.predict" in r.stdout, r.stderr[-2000:]
    r = subprocess.run([sys.executable, "-m", "mediaml.predict_video", "--help"], capture_output=True, text=True,
                       cwd=PROJECT_ROOT, timeout=300)
    assert r.returncode == 0 and "checkpoint" in r.stdout, r.stderr[-2000:]
