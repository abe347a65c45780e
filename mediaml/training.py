"""Shared helpers for tasks that train with Lightning: the `callbacks/` config group as callback objects.

    callbacks = instantiate_callbacks(cfg.callbacks, model_checkpoint={"dirpath": ckpt_dir})

Every entry of the group is a `_target_` config; `enabled: false` (or a target that returns None, such
as `weight_averaging` with `kind: none`) leaves it out. Keyword arguments named after an entry add or
replace keys of that entry (values only known at run time, such as the run's checkpoint folder).
"""
from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf


def instantiate_callbacks(group: DictConfig | dict | None, **runtime: dict[str, Any]) -> dict[str, Any]:
    """name -> callback object, in the group's order, for every enabled entry."""
    from hydra.utils import instantiate

    if group is None:
        return {}
    spec = OmegaConf.to_container(group, resolve=True) if isinstance(group, DictConfig) else dict(group)
    unknown = set(runtime) - set(spec)
    if unknown:
        raise KeyError(f"no callback named {sorted(unknown)} in callbacks (it has {sorted(spec)})")
    out: dict[str, Any] = {}
    for name, conf in spec.items():
        if conf is None:
            continue
        if not isinstance(conf, dict) or "_target_" not in conf:
            raise ValueError(f"callbacks.{name} must be a mapping with a _target_, got {conf!r}")
        conf = {**conf, **runtime.get(name, {})}
        if not conf.pop("enabled", True):
            continue
        obj = instantiate(conf, _convert_="all")
        if obj is not None:
            out[name] = obj
    return out


def optuna_pruning(monitor: str):
    """`callbacks.optuna_pruning`: after each validation, report `monitor` to this job's Optuna trial at the
    epoch; when the study's pruner prunes, training stops at the end of that epoch and the task raises
    optuna.TrialPruned (`pruned`). None outside an Optuna sweep (mediaml.pruning).

    Under DDP only rank 0 reports; its decision is broadcast, so every rank stops at the same epoch (a rank
    that went on would wait for the others in its next collective)."""
    from mediaml.pruning import is_pruned, pruner_enabled, report

    if not pruner_enabled():
        return None
    import lightning.pytorch as pl

    class OptunaPruning(pl.Callback):
        def __init__(self, monitor: str):
            self.monitor = monitor
            self.pruned: BaseException | None = None

        def on_validation_end(self, trainer, pl_module):
            if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
                return
            pruned = None
            if trainer.is_global_zero:
                try:
                    report(float(trainer.callback_metrics[self.monitor]), trainer.current_epoch)
                except BaseException as e:
                    if not is_pruned(e):
                        raise
                    pruned = e
            if trainer.world_size > 1 and trainer.strategy.broadcast(pruned is not None, src=0) and pruned is None:
                import optuna

                pruned = optuna.TrialPruned(f"pruned by rank 0 at epoch {trainer.current_epoch}")
            if pruned is not None:
                self.pruned = pruned
                trainer.should_stop = True

    return OptunaPruning(monitor)


def lightning_call(trainer, stage: str, *args, **kwargs):
    """`trainer.<stage>(...)` (fit, validate, test, predict) with interrupts passed on as interrupts.

    Lightning catches Ctrl-C (and our SIGTERM handler's RunInterrupted, mediaml.tracking.run) in every stage,
    shuts down, and calls exit(1), which the run's lifecycle would record as FAILED. Here the exit becomes the
    interrupt again, so the run ends KILLED and train.py exits 130 (SIGINT) or 143 (SIGTERM). Lightning also
    leaves SIGINT ignored after its shutdown; the default handler is put back.
    """
    import signal

    from mediaml.tracking.run import RunInterrupted

    try:
        return getattr(trainer, stage)(*args, **kwargs)
    except SystemExit:
        if not trainer.interrupted:
            raise
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if getattr(trainer, "received_sigterm", False):
            raise RunInterrupted(f"SIGTERM during {stage}") from None
        raise KeyboardInterrupt(f"interrupted during {stage}") from None
