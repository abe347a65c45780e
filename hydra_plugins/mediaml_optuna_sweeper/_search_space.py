"""Hydra sweep syntax -> Optuna distributions, and an Optuna trial's params -> Hydra overrides.

    choice(a,b) / a,b / glob(...)   -> CategoricalDistribution (`choice()` rejects null; `8,16,null` takes it)
    range(2,11) / range(2,11,2)     -> IntDistribution(2, 10, step) (Hydra's stop is exclusive)
    range(0.1,0.5,0.1)              -> CategoricalDistribution of its values (exact, no float-step rounding)
    interval(0.1,1.0)               -> FloatDistribution(0.1, 1.0)
    int(interval(10,300))           -> IntDistribution(10, 300)
    tag(log, interval(...))         -> the same with log=True
    anything else                   -> a fixed override, passed unchanged to every trial
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Override, RangeSweep, Transformer
from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  IntDistribution)


@dataclass
class Dimension:
    key: str  # the override key as written, prefix included (e.g. "++model.max_depth")
    distribution: BaseDistribution
    # Categorical only: the override text of each choice. Optuna stores plain values (None, bool,
    # int, float, str); quoted strings, lists and dicts are stored as their text and map back here.
    labels: Optional[list[str]] = None

    def override(self, value: Any) -> str:
        if self.labels is not None:
            return f"{self.key}={self.labels[int(self.distribution.to_internal_repr(value))]}"
        return f"{self.key}={value}"


@dataclass
class SearchSpace:
    dimensions: dict[str, Dimension] = field(default_factory=dict)  # by Optuna param name
    fixed: list[str] = field(default_factory=list)  # overrides given to every trial

    @property
    def distributions(self) -> dict[str, BaseDistribution]:
        return {name: dim.distribution for name, dim in self.dimensions.items()}

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """The job's full override list: the fixed ones, then this trial's sampled values."""
        return self.fixed + [dim.override(params[name]) for name, dim in self.dimensions.items()]


def params_to_overrides(params: dict[str, Any]) -> list[str]:
    """`hydra.sweeper.params` as override strings (sweep syntax kept as written)."""
    def text(value: Any) -> str:
        if value is None:
            return "null"
        if isinstance(value, bool):
            return str(value).lower()
        return str(value)

    return [f"{key}={text(value)}" for key, value in params.items()]


def parse_search_space(overrides: list[str], config_loader: Any = None) -> SearchSpace:
    """Split overrides into search dimensions and fixed overrides. A later override of the same key
    wins, so command-line arguments (given after `params`) replace the config's search space."""
    parsed: dict[str, Override] = {}
    for override in OverridesParser.create(config_loader=config_loader).parse_overrides(overrides):
        key = override.get_key_element()
        parsed.pop(key, None)
        parsed[key] = override

    space = SearchSpace()
    for key, override in parsed.items():
        if override.is_sweep_override():
            name = override.key_or_group + (f"@{override.package}" if override.package else "")
            space.dimensions[name] = to_dimension(override)
        else:
            assert override.input_line is not None
            space.fixed.append(override.input_line)
    return space


def to_dimension(override: Override) -> Dimension:
    key, sweep = override.get_key_element(), override.value()
    log = "log" in getattr(sweep, "tags", ())

    if override.is_interval_sweep():
        # int(interval(...)) parses to int bounds; interval(...) alone always to floats.
        if isinstance(sweep.start, int) and isinstance(sweep.end, int):
            return Dimension(key, IntDistribution(sweep.start, sweep.end, log=log))
        return Dimension(key, FloatDistribution(sweep.start, sweep.end, log=log))

    if override.is_range_sweep():
        assert isinstance(sweep, RangeSweep)
        values = list(sweep.range())
        if not values:
            raise ValueError(f"{override.input_line}: the range is empty")
        if all(isinstance(v, int) for v in values):
            return Dimension(key, IntDistribution(min(values), max(values), log=log, step=abs(int(sweep.step))))
        return _categorical(key, values)

    # Choice sweeps. Take ChoiceSweep.list itself: sweep_iterator() would apply shuffle(), and
    # Optuna refuses a categorical whose choices change order between runs of one study.
    elements = sweep.list if isinstance(sweep, ChoiceSweep) else list(override.sweep_iterator())
    return _categorical(key, elements)


def _categorical(key: str, elements: list[Any]) -> Dimension:
    labels = [Transformer.str(e) for e in elements]
    plain = (type(None), bool, int, float, str)
    choices = [e if isinstance(e, plain) else label for e, label in zip(elements, labels)]
    return Dimension(key, CategoricalDistribution(choices), labels)
