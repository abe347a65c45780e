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
