"""Each trial's config from the previous one's, for Hydra's basic launcher (hydra-core 1.3, pinned).

The basic launcher composes every job from scratch (`load_sweep_config`: the defaults list, ~20 YAML files, their
merges: 0.07 s a job here, ~10 % of the framework's cost in a 10-trial genre sweep, benchmarks/
bench_sweep_overhead.py), although an Optuna trial differs from the one before only in the values it sampled,
its folder (`hydra.sweep.subdir`) and its trial's id (`hydra.job.env_set`). `ReusingLoader` stands in for the
launcher's config loader: when a job's overrides are the last composed job's with only the values of dotted keys
changed, the job's config is a copy of that job's with the changed overrides applied by Hydra's own
`_apply_overrides_to_config`, and the fields Hydra derives from the overrides (`hydra.overrides`,
`hydra.job.override_dirname`, `hydra.runtime.cwd`, `env_copy`) set as its loader sets them. Anything else (a
group chosen per trial, `model=svc`; a top-level key, which may be a group; another set of keys) is composed by
Hydra as before. tests/test_optuna_sweeper.py checks that both give the same config.
"""
from __future__ import annotations

import copy
import os
from typing import Any, Sequence

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict


class ReusingLoader:
    """A config loader that composes a sweep's job by patching the last composed one when it can (see the module
    docstring); every other call goes to the loader it wraps."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader
        self._parser = OverridesParser.create()
        self._last: tuple[list, DictConfig] | None = None  # the last composed job: (its overrides, its config)
        self.reused = 0  # jobs patched, not composed (for the tests)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: Sequence[str]) -> DictConfig:
        overrides = list(OmegaConf.to_container(master_config.hydra.overrides.hydra)) + list(sweep_overrides)
        parsed = self._parser.parse_overrides(overrides)
        cfg = self._patched(master_config, parsed)
        if cfg is not None:
            self.reused += 1
            return cfg
        cfg = self._loader.load_sweep_config(master_config, list(sweep_overrides))
        self._last = (parsed, copy.deepcopy(cfg))  # before the launcher and the job change theirs (job.num...)
        return cfg

    def _patched(self, master_config: DictConfig, parsed: list) -> DictConfig | None:
        if self._last is None:
            return None
        before, last = self._last
        if len(parsed) != len(before):
            return None
        changed = []
        for new, old in zip(parsed, before):
            if (new.key_or_group, new.package, new.type, new.value_type) != \
                    (old.key_or_group, old.package, old.type, old.value_type) or new.is_sweep_override():
                return None
            if new.input_line != old.input_line:
                key = new.key_or_group
                if "." not in key or "/" in key or new.package is not None:  # may choose a config group
                    return None
                changed.append(new)
        cfg = copy.deepcopy(last)
        ConfigLoaderImpl._apply_overrides_to_config(changed, cfg)
        app = [o for o in parsed if not o.is_hydra_override()]
        with open_dict(cfg.hydra):
            cfg.hydra.overrides.hydra = [o.input_line for o in parsed if o.is_hydra_override()]
            cfg.hydra.overrides.task = [o.input_line for o in app]
            for key in cfg.hydra.job.env_copy:
                cfg.hydra.job.env_set[key] = os.environ[key]
            cfg.hydra.runtime.cwd = os.getcwd()
            dirname = cfg.hydra.job.config.override_dirname
            cfg.hydra.job.override_dirname = get_overrides_dirname(overrides=app, kv_sep=dirname.kv_sep,
                                                                   item_sep=dirname.item_sep,
                                                                   exclude_keys=dirname.exclude_keys)
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg
