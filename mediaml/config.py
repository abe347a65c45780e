"""Config helpers: OmegaConf resolvers and flattening for tracking params."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def register_resolvers() -> None:
    """`${mediaml.root:}` is the checkout's root; `${mediaml.abspath:p}` makes p absolute (relative to the cwd);
    `${mediaml.slug:val/acc}` is `val_acc`."""
    if not OmegaConf.has_resolver("mediaml.root"):
        OmegaConf.register_new_resolver("mediaml.root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("mediaml.abspath"):
        OmegaConf.register_new_resolver("mediaml.abspath", lambda p: str(Path(p).expanduser().resolve()))
    if not OmegaConf.has_resolver("mediaml.help"):  # hydra.help.template: mediaml's own --help page
        OmegaConf.register_new_resolver("mediaml.help", _help_template)
    if not OmegaConf.has_resolver("mediaml.progress"):  # progress bars on? (mediaml.progress.enabled)
        OmegaConf.register_new_resolver("mediaml.progress", _progress_enabled)
    if not OmegaConf.has_resolver("mediaml.slug"):  # a metric name in a file name: val/acc -> val_acc
        OmegaConf.register_new_resolver("mediaml.slug", lambda s: str(s).replace("/", "_"))


def _progress_enabled() -> bool:
    from mediaml.progress import enabled

    return enabled()


def _help_template() -> str:
    from mediaml.help import hydra_template

    return hydra_template()


def flatten(cfg: DictConfig | ListConfig | dict | list, prefix: str = "") -> dict[str, Any]:
    """Flatten a resolved config to dotted keys: {"model.n_estimators": 100, ...}.

    Lists of scalars stay one value (as MLflow shows them best); lists of mappings get indices.
    """
    container = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, (DictConfig, ListConfig)) else cfg
    out: dict[str, Any] = {}

    def walk(node: Any, key: str) -> None:
        if isinstance(node, dict):
            if not node and key:
                out[key] = "{}"
            for k, v in node.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(node, list) and any(isinstance(v, (dict, list)) for v in node):
            for i, v in enumerate(node):
                walk(v, f"{key}.{i}")
        else:
            out[key] = node

    walk(container, prefix)
    return out


# -- values typed on the command line ------------------------------------------------------------------
CHECKED_GROUPS = ("task", "dataset", "model")  # our configs; trainer keys take Lightning's mixed types ("auto", 16)


def check_override_types(cfg: DictConfig, overrides: list[str], choices: dict[str, str]) -> None:
    """A value given on the command line for a task, dataset or model key that cannot be what the chosen
    config file has there (a number, a true/false) stops the job before its run opens, as the user's error:
    `task.cv_folds=abc: expected an integer (conf/task/genre.yaml has cv_folds: 5)` instead of a traceback from
    deep inside the task or scikit-learn, after a run opened. Numbers stay numbers (an int key takes a float:
    scikit-learn reads min_samples_split=0.1 as a fraction), null is left to the task, and a key the file does
    not set is not checked."""
    from mediaml.errors import ConfigError

    for override in overrides:
        key, eq, _ = override.partition("=")
        key = key.lstrip("+")
        group = key.split(".", 1)[0]
        if not eq or key.startswith("~") or "." not in key or group not in CHECKED_GROUPS or not choices.get(group):
            continue
        ref = _reference(group, str(choices[group]))
        if ref is None:
            continue
        file, values = ref
        default = values
        for part in key.split("."):
            default = default.get(part) if isinstance(default, dict) else None
        value = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
        expected = _type_mismatch(default, value)
        if expected:
            raise ConfigError(f"{key}={value!r}: expected {expected} ({file} has "
                              f"{key.rsplit('.', 1)[-1]}: {OmegaConf.to_yaml({'v': default}).strip()[3:]})")


def _type_mismatch(default: Any, value: Any) -> str | None:
    """What `value` should have been, or None when it can stand where the file has `default`."""
    if value is None or default is None or isinstance(default, str) and "${" in default:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or isinstance(value, (list, dict, DictConfig, ListConfig)):
            return "an integer" if isinstance(default, int) else "a number"
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                return "an integer" if isinstance(default, int) else "a number"
    return None


_REFERENCES: dict[tuple[str, str], tuple[str, dict] | None] = {}


def _reference(group: str, choice: str) -> tuple[str, dict] | None:
    """(`conf/<group>/<choice>.yaml`, its values as the job's config nests them), unresolved; None when the
    option is not one of ours (a user's config folder on hydra.searchpath). Read once per process."""
    if (group, choice) not in _REFERENCES:
        path = PROJECT_ROOT / "conf" / group / f"{choice}.yaml"
        ref = None
        if path.is_file():
            text = path.read_text()
            data = OmegaConf.to_container(OmegaConf.create(text), resolve=False) or {}
            data.pop("defaults", None)
            ref = (f"conf/{group}/{choice}.yaml", data if "@package _global_" in text else {group: data})
        _REFERENCES[(group, choice)] = ref
    return _REFERENCES[(group, choice)]
