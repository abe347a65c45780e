"""task=video: 3D-CNN video classification (seed 002) with PyTorchVideo, Lightning and torchmetrics.

    python train.py task=video                                  # C3D (1/8 width) on the real fight clips
    python train.py task=video dataset=synthetic_clips          # no download: seeded synthetic mp4s
    python train.py task=video model=c3d_seed                   # seed 002's network, bugs fixed
    python train.py task=video task.ckpt_path=last              # resume the latest run's last.ckpt
    python train.py task=video callbacks.weight_averaging.kind=ema        # EMA weights validated/checkpointed/tested
    python train.py task=video callbacks.weight_averaging.kind=swa task.test_checkpoint=last   # test the SWA model

Data: ``mediaml.tasks.video.data`` (folders, synthetic clips) and ``mediaml.tasks.video.cache`` (decode-once
cache, PyTorchVideo loaders). Model: ``mediaml.tasks.video.module.VideoClassifier``. Lightning's
MLFlowLogger writes into the run the spine opened (one run per job); checkpoints and the test
confusion matrix are logged to it too. DDP (trainer=ddp, also inside sweeps and across nodes):
``mediaml.tasks.video.distributed``.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

# Before torch loads its OpenMP runtime: idle OpenMP threads sleep instead of spinning. On this shared
# 2-core machine (load 5) a C3D step took 4.7 s wall with spinning threads, 0.47 s with PASSIVE.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightning.pytorch as pl
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mediaml import quiet
from mediaml.errors import ConfigError
from mediaml.tasks.video.compat import install_torchvision_alias
from mediaml.tasks.base import DatasetTask
from mediaml.tracking.tracker import Tracker
from mediaml.training import instantiate_callbacks, lightning_call

install_torchvision_alias()
quiet.dedupe()  # Lightning's own console handler printed each of its lines a second time

log = logging.getLogger(__name__)

def _rank() -> int:
    from mediaml.ranks import distributed_rank

    return distributed_rank()


def same_run_mlflow_logger(tracker: Tracker, run_id: str):
    """Lightning's MLFlowLogger bound to an existing run that the spine owns (and closes)."""
    from lightning.pytorch.loggers import MLFlowLogger

    class SameRunMLFlowLogger(MLFlowLogger):
        def log_hyperparams(self, params) -> None:  # the spine has logged the whole config as params
            return

        def finalize(self, status: str = "success") -> None:  # the spine ends the run with its own status
            return

    return SameRunMLFlowLogger(experiment_name=tracker.experiment_name or "video",
                               tracking_uri=tracker.tracking_uri, run_id=run_id, log_model=False)


# Beside every run's checkpoints: which experiment they belong to and which MLflow run wrote them.
STAMP_FILE = "mediaml.json"


def find_checkpoint(value, ckpt_dir: Path, search_root: Path, identity: str) -> tuple[str | None, str | None]:
    """task.ckpt_path -> (checkpoint file, the MLflow run that wrote it).

    null: a fresh start. `last`: the newest last.ckpt of the same experiment (`experiment_identity`: task,
    seed, dataset and model values) — this job folder's own first, else any run or sweep job under
    `search_root` (outputs/video/). A path: that file (its run id travels inside it)."""
    from mediaml.errors import ConfigError

    if value in (None, "", "null"):
        return None, None
    if str(value) == "last":
        own = ckpt_dir / "last.ckpt"
        found = [p for p in [own] if p.is_file()]
        found += sorted((p for p in Path(search_root).glob("**/checkpoints/last.ckpt") if p != own),
                        key=os.path.getmtime, reverse=True)
        others = 0
        for ckpt in found:
            stamp = _read_stamp(ckpt.parent / STAMP_FILE)
            if stamp.get("identity") == identity:
                return str(ckpt), stamp.get("run_id")
            others += 1
        raise ConfigError(f"task.ckpt_path=last: no last.ckpt of this experiment (identity {identity}: task, seed, "
                          f"dataset and model values) in {ckpt_dir} nor under {search_root}/**/checkpoints/ "
                          f"({others} of other experiments there); name one with task.ckpt_path=<file>")
    p = Path(str(value)).expanduser()
    if not p.is_file():
        raise ConfigError(f"task.ckpt_path={value}: no such checkpoint file")
    import torch

    stamp = torch.load(p, map_location="cpu", weights_only=False, mmap=True).get("mediaml") or {}
    if stamp.get("identity") not in (None, identity):
        log.warning("task.ckpt_path=%s was written by another experiment (identity %s, this job %s)",
                    p, stamp.get("identity"), identity)
    return str(p.resolve()), stamp.get("run_id")


def _read_stamp(path: Path) -> dict:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


class _RunStamp(pl.Callback):
    """Writes the experiment identity and MLflow run id beside the checkpoints and into each of them, so that
    `task.ckpt_path` finds a checkpoint of the same experiment and the resumed job continues its run."""

    def __init__(self, ckpt_dir: Path, identity: str, run_id: str | None):
        self.ckpt_dir, self.stamp = Path(ckpt_dir), {"identity": identity, "run_id": run_id}

    def on_fit_start(self, trainer, pl_module):
        import json

        if trainer.is_global_zero:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            (self.ckpt_dir / STAMP_FILE).write_text(json.dumps(self.stamp) + "\n")

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        checkpoint["mediaml"] = dict(self.stamp)


class VideoTask(DatasetTask):
    def _resume(self, out: Path) -> tuple[str | None, str | None]:
        """(checkpoint, its run id) for task.ckpt_path, looked up once per job folder. A DDP rank that rank 0
        started resumes rank 0's choice (task.ckpt_path=last could name a newer file by the time it starts)."""
        from mediaml.tasks.video.distributed import RESUME_ENV
        from mediaml.tracking.run import experiment_identity

        if getattr(self, "_resume_for", None) != out:
            self.identity = experiment_identity(self.cfg)
            if _rank() != 0 and RESUME_ENV in os.environ:
                self._resumed = (os.environ[RESUME_ENV] or None, None)
            else:
                search_root = Path(self.cfg.paths.output_root) / self.cfg.task.name
                self._resumed = find_checkpoint(self.cfg.task.get("ckpt_path"), out / "checkpoints", search_root,
                                                self.identity)
            self._resume_for = out
        return self._resumed

    MODES = ("train", "evaluate")

    @property
    def mode(self) -> str:
        return str(self.cfg.task.get("mode") or "train")

    def objective_metric(self) -> str:
        # evaluate-only: no validation split, the test accuracy is the job's result
        return "test/acc" if self.mode == "evaluate" else super().objective_metric()

    def check_inputs(self) -> None:
        if self.mode not in self.MODES:
            raise ConfigError(f"task.mode={self.mode!r}: expected one of {list(self.MODES)}")
        if self.mode == "evaluate" and not self.cfg.task.get("ckpt_path"):
            raise ConfigError("task.mode=evaluate scores a trained checkpoint: name it with task.ckpt_path=<file> "
                              "(a .ckpt a training run wrote under outputs/video/.../checkpoints/)")
        if self.mode == "evaluate":
            self.dataset.check_split("test")
        else:
            super().check_inputs()
        from mediaml.tracking.run import hydra_info

        out = hydra_info().get("output_dir")
        if out:  # resolved before the run opens: a missing checkpoint stops the job here
            self._resume(Path(out))

    def resume_run_id(self) -> str | None:
        if self.mode == "evaluate":  # a run of its own, naming the checkpoint; the training run is left as it was
            return None
        return self._resumed[1] if getattr(self, "_resume_for", None) is not None else None

    def run(self, tracker: Tracker) -> dict[str, float]:
        from mediaml.tasks.video.distributed import ddp_job

        with ddp_job() as job:  # the DDP ranks this job starts, its process group and environment
            return self._run(tracker, job)

    def _run(self, tracker: Tracker, job) -> dict[str, float]:
        import torch

        from mediaml.tasks.video.cache import VideoData
        from mediaml.tasks.video.distributed import RESUME_ENV, check_rank_config, job_strategy, own_log_file
        from mediaml.tasks.video.module import VideoClassifier

        cfg, t = self.cfg, self.cfg.task
        pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
        out = Path(tracker.output_dir)
        rank = _rank()
        if rank != 0:
            own_log_file(out, rank)
            if RESUME_ENV in os.environ:  # started by rank 0 (not torchrun / srun): rank 0 saved the config
                check_rank_config(cfg, out)
        ckpt_path, _ = self._resume(out)  # task.ckpt_path (check_inputs has resolved it already under Hydra)
        if rank == 0:
            os.environ[RESUME_ENV] = ckpt_path or ""  # for the ranks it starts (restored after the job)

        # -- Lightning: logger in the spine's run, callbacks, trainer --------------------------
        if tracker.run_id:
            logger = same_run_mlflow_logger(tracker, tracker.run_id)
        else:
            # logger=none, or a DDP child rank (rank 0 owns the MLflow run; Lightning loggers write only
            # on rank 0, so this logger stays silent there but satisfies LearningRateMonitor).
            from lightning.pytorch.loggers import CSVLogger

            logger = CSVLogger(str(out), name="lightning_logs" if rank == 0 else f".rank{rank}_logs")
        ckpt_dir = out / "checkpoints"
        # conf/callbacks/: checkpoint selection, last.ckpt, LR monitor, weight averaging, early stopping,
        # progress bar (validation, checkpoints and test see the averaged weights).
        named = instantiate_callbacks(cfg.get("callbacks"), model_checkpoint={"dirpath": str(ckpt_dir)},
                                      last_checkpoint={"dirpath": str(ckpt_dir)})
        checkpoint, last_checkpoint = named["model_checkpoint"], named["last_checkpoint"]
        averaging = named.get("weight_averaging")
        val_history = _ValHistory()
        callbacks = [*named.values(), _EpochTimer(), val_history,
                     _RunStamp(ckpt_dir, self.identity, tracker.run_id)]
        trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
        if t.get("fast_dev_run"):  # debug=fdr: one batch of each stage
            trainer_cfg["fast_dev_run"] = True
        if trainer_cfg.get("precision") in (None, "auto"):
            trainer_cfg["precision"] = "16-mixed" if torch.cuda.is_available() else "32-true"
        # strategy=ddp: ranks started as this job's config, also under a multirun (distributed.py)
        strategy = job_strategy(trainer_cfg.pop("strategy", "auto"))
        trainer = instantiate(OmegaConf.create(trainer_cfg), callbacks=callbacks, logger=logger,
                              default_root_dir=str(out), strategy=strategy)
        job.start(trainer)  # the ranks this job starts (trainer=ddp) set up while this one loads the data

        if self.mode == "evaluate":
            return self._evaluate(tracker, trainer, ckpt_path)

        # -- data and model --------------------------------------------------------------------
        data = VideoData(self.dataset, out, seed=int(cfg.seed)).setup()
        if rank == 0:
            tracker.log_metrics(data.stats)
            if data.skipped or data.empty_class_dirs:
                lines = [f"{p}\t{r}" for p, r in data.skipped] + [f"{d}\tempty class folder"
                                                                   for d in data.empty_class_dirs]
                tracker.log_text("\n".join(lines) + "\n", "data/skipped_clips.tsv")
        ds = self.dataset
        data_hp = {"num_frames": ds.num_frames, "crop": ds.crop, "clip_duration": ds.clip_duration,
                   "eval_short_side": ds.eval_short_side, "mean": list(ds.mean), "std": list(ds.std),
                   "eval_clips_per_video": ds.eval_clips_per_video}
        model = VideoClassifier(net=OmegaConf.to_container(cfg.model, resolve=True), classes=data.classes,
                                optimizer=OmegaConf.to_container(t.optimizer, resolve=True),
                                scheduler=OmegaConf.to_container(t.scheduler, resolve=True) if t.get("scheduler") else None,
                                threshold=float(t.threshold), data=data_hp)
        n_params = sum(p.numel() for p in model.net.parameters())
        if rank == 0:
            tracker.log_metrics({"model/n_params": n_params})

        if ckpt_path:
            log.info("resuming from %s", ckpt_path)
        start = time.perf_counter()
        lightning_call(trainer, "fit", model, data.loader("train"), data.loader("val"), ckpt_path=ckpt_path)
        fit_s = time.perf_counter() - start
        pruning = named.get("optuna_pruning")
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("val/", "train/"))}
        if pruning is not None and pruning.pruned is not None:  # the sweep's pruner stopped this trial
            if rank != 0:  # rank 0 tells the study; this rank ends cleanly, without testing
                return metrics
            raise pruning.pruned

        # Read now: trainer.test(ckpt_path="best") reloads the callback's state saved in that checkpoint.
        best = checkpoint.best_model_path or None
        last = last_checkpoint.best_model_path or None
        fast_dev = bool(trainer_cfg.get("fast_dev_run"))
        # task.test_checkpoint: `best` = the checkpoint `checkpoint` selected on validation; `last` = the
        # final weights (with weight_averaging=swa, the SWA model: the average is the selection).
        use_last = str(t.get("test_checkpoint", "best")) == "last"
        test_ckpt = None if fast_dev else (last if use_last else best)
        tested_epoch = (max(val_history.epochs, default=None) if use_last else _epoch_of(best))
        log.info("testing %s", test_ckpt or "the final weights")
        lightning_call(trainer, "test", model, data.loader("test"), ckpt_path=test_ckpt, verbose=rank == 0)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
        metrics["time/fit_s"] = fit_s
        selected = val_history.at_epoch(tested_epoch)  # validation of the tested checkpoint
        metrics.update({k.replace("val/", "val/selected_"): v for k, v in selected.items()})
        if averaging is not None:
            metrics["train/averaged_updates"] = float(averaging.n_updates)
        metrics["train/epochs"] = float(trainer.current_epoch)
        timer = next(c for c in callbacks if isinstance(c, _EpochTimer))
        if timer.times:
            metrics["time/epoch_s_mean"] = sum(timer.times) / len(timer.times)
        if not trainer.is_global_zero:
            return metrics

        tracker.metrics.update(metrics)  # already in MLflow through Lightning's logger
        tracker.log_metrics({"time/fit_s": fit_s, "val/selected_epoch": tested_epoch,
                             **{k: v for k, v in metrics.items() if k.startswith("val/selected_")
                                or k == "train/averaged_updates"}})
        cm = getattr(model, "confusion_matrix", None)
        if cm is not None:
            y_true, y_pred = _pairs_from_confusion(cm.numpy(), data.classes)
            tracker.log_confusion_matrix(y_true, y_pred, labels=data.classes, prefix="test")
        tracker.log_checkpoints([best, last], "checkpoints")  # by logger.log_model (best: the sweep's best)
        if best:
            tracker.log_text(best + "\n", "checkpoints/best_path.txt")
        log.info("video: val/acc_best=%.4f test/acc=%.4f (checkpoint %s) fit %.1f s",
                 metrics.get("val/acc_best", float("nan")), metrics.get("test/acc", float("nan")),
                 test_ckpt, fit_s)
        return dict(tracker.metrics)


    def _evaluate(self, tracker: Tracker, trainer, ckpt_path: str) -> dict[str, float]:
        """task.mode=evaluate: the checkpoint's model scored on the dataset's test split (any folder of class
        folders, labels numbered as the model was trained), with the usual test metrics and confusion matrix."""
        from mediaml.tasks.video.cache import VideoData
        from mediaml.tasks.video.module import VideoClassifier

        model = VideoClassifier.load_from_checkpoint(ckpt_path, map_location="cpu")
        self.dataset.use_classes(model.classes)
        data = VideoData(self.dataset, Path(tracker.output_dir), seed=int(self.cfg.seed)).setup(splits=("test",))
        tracker.log_metrics(data.stats)
        tracker.set_tags({"mediaml.mode": "evaluate", "mediaml.evaluated_checkpoint": ckpt_path})
        tracker.log_text(ckpt_path + "\n", "checkpoints/evaluated_path.txt")
        if data.skipped or data.empty_class_dirs:
            lines = [f"{p}\t{r}" for p, r in data.skipped] + [f"{d}\tempty class folder" for d in data.empty_class_dirs]
            tracker.log_text("\n".join(lines) + "\n", "data/skipped_clips.tsv")
        log.info("evaluating %s on %d test videos of %s", ckpt_path, data.stats["data/n_test"],
                 self.dataset.split_dir("test"))
        lightning_call(trainer, "test", model, data.loader("test"), verbose=True)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
        tracker.metrics.update(metrics)  # already in MLflow through Lightning's logger
        cm = getattr(model, "confusion_matrix", None)
        if cm is not None:
            y_true, y_pred = _pairs_from_confusion(cm.numpy(), data.classes)
            tracker.log_confusion_matrix(y_true, y_pred, labels=data.classes, prefix="test")
        return dict(tracker.metrics)


def _epoch_of(ckpt: str | None) -> float | None:
    if not ckpt:
        return None
    import re

    m = re.search(r"epoch(\d+)", Path(ckpt).name)
    return float(m.group(1)) if m else None


def _pairs_from_confusion(cm, classes):
    y_true, y_pred = [], []
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            y_true += [classes[i]] * int(cm[i, j])
            y_pred += [classes[j]] * int(cm[i, j])
    return y_true, y_pred


class _EpochTimer(pl.Callback):
    """`time/train_epoch_s`: wall time of each training epoch (validation excluded)."""

    def __init__(self):
        self.times: list[float] = []
        self._t = 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self._t = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        dt = time.perf_counter() - self._t
        self.times.append(dt)
        pl_module.log("time/train_epoch_s", dt, on_epoch=True, rank_zero_only=True)


class _ValHistory(pl.Callback):
    """The epoch-level validation metrics of every epoch, to report those of the selected checkpoint."""

    def __init__(self):
        self.epochs: dict[int, dict[str, float]] = {}

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.epochs[trainer.current_epoch] = {
                k: float(v) for k, v in trainer.callback_metrics.items()
                if k in ("val/acc", "val/loss", "val/auroc", "val/f1")}

    def at_epoch(self, epoch: float | None) -> dict[str, float]:
        return dict(self.epochs.get(int(epoch), {})) if epoch is not None else {}
