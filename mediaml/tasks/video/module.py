"""The LightningModule of task=video: one network, BCE (binary, one logit) or cross-entropy (more classes),
torchmetrics on probabilities, evaluation clips averaged per video.

Fixes against seed 002's VideoClassifier: metrics on probabilities with one threshold (0.5, configurable),
not on logits with 0.05; no per-step loss lists kept forever; val/test use deterministic clips; the
network is built from its config (a checkpoint stores the config, not a pickled model).
"""
from __future__ import annotations

import itertools

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
import torchmetrics
from hydra.utils import instantiate
from lightning.pytorch.callbacks import WeightAveraging
from omegaconf import OmegaConf
from torch.optim.swa_utils import get_ema_multi_avg_fn


# Network targets before the code moved into mediaml/tasks/video/: checkpoints written then store these
# names in their hyperparameters and still load.
LEGACY_TARGETS = {
    "mediaml.models.c3d.C3D": "mediaml.tasks.video.nets.C3D",
    "mediaml.models.c3d.SeedVideo3DCNN": "mediaml.tasks.video.nets.SeedVideo3DCNN",
    "mediaml.models.pytorchvideo_models.x3d_xs": "mediaml.tasks.video.pytorchvideo_nets.x3d_xs",
    "mediaml.models.pytorchvideo_models.r2plus1d": "mediaml.tasks.video.pytorchvideo_nets.r2plus1d",
}


def build_net(net_cfg: dict, num_outputs: int, num_frames: int, crop: int) -> torch.nn.Module:
    """The network of a model config (conf/model/*.yaml, or a checkpoint's saved `net` hyperparameter)."""
    cfg = {k: v for k, v in dict(net_cfg).items() if k != "tasks"}  # `tasks`: which tasks the config is for
    cfg["_target_"] = LEGACY_TARGETS.get(cfg.get("_target_"), cfg.get("_target_"))
    return instantiate(OmegaConf.create(cfg), num_outputs=num_outputs, num_frames=num_frames, crop=crop)


def _metrics(num_classes: int, threshold: float, prefix: str) -> torchmetrics.MetricCollection:
    from torchmetrics.classification import AUROC, Accuracy, F1Score, Precision, Recall

    if num_classes == 2:
        kw = {"task": "binary", "threshold": threshold}
        auroc = AUROC(task="binary")
    else:
        kw = {"task": "multiclass", "num_classes": num_classes, "average": "macro"}
        auroc = AUROC(task="multiclass", num_classes=num_classes)
    acc_kw = dict(kw, average="micro") if num_classes > 2 else kw
    return torchmetrics.MetricCollection({"acc": Accuracy(**acc_kw), "f1": F1Score(**kw),
                                          "precision": Precision(**kw), "recall": Recall(**kw),
                                          "auroc": auroc}, prefix=prefix)


class VideoClassifier(pl.LightningModule):
    def __init__(self, net: dict, classes: list[str], optimizer: dict, scheduler: dict | None = None,
                 threshold: float = 0.5, data: dict | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.classes = list(classes)
        self.num_classes = len(self.classes)
        if self.num_classes < 2:
            raise ValueError(f"task=video needs at least 2 classes, got {self.classes}")
        self.binary = self.num_classes == 2
        data = data or {}
        self.net = build_net(net, 1 if self.binary else self.num_classes, data.get("num_frames", 10),
                             data.get("crop", 112))
        self.threshold = float(threshold)
        self.train_acc = _metrics(self.num_classes, self.threshold, "train/")["acc"]
        self.val_metrics = _metrics(self.num_classes, self.threshold, "val/")
        self.test_metrics = _metrics(self.num_classes, self.threshold, "test/")
        self.val_acc_best = torchmetrics.MaxMetric()
        if self.binary:
            self.test_confmat = torchmetrics.ConfusionMatrix(task="binary", threshold=self.threshold)
        else:
            self.test_confmat = torchmetrics.ConfusionMatrix(task="multiclass", num_classes=self.num_classes)

    # -- core ----------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """(N, 1) -> P(class 1) of shape (N,) for binary; (N, C) -> softmax for more classes."""
        return torch.sigmoid(logits.squeeze(-1).float()) if self.binary else logits.float().softmax(-1)

    def video_probabilities(self, video: torch.Tensor) -> torch.Tensor:
        """(B, K, C, T, H, W): the K clips of each video -> mean clip probability per video."""
        b, k = video.shape[:2]
        probs = self.probabilities(self(video.flatten(0, 1)))
        return probs.view(b, k, *probs.shape[1:]).mean(1)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.binary:
            return F.binary_cross_entropy_with_logits(logits.squeeze(-1).float(), y.float())
        return F.cross_entropy(logits.float(), y)

    @staticmethod
    def _eval_loss(probs: torch.Tensor, y: torch.Tensor, binary: bool) -> torch.Tensor:
        eps = 1e-6
        if binary:
            return F.binary_cross_entropy(probs.clamp(eps, 1 - eps), y.float())
        return F.nll_loss(probs.clamp_min(eps).log(), y)

    # -- steps ---------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        x, y = batch["video"], batch["label"]
        logits = self(x)
        loss = self.loss(logits, y)
        self.train_acc(self.probabilities(logits.detach()), y)
        bs = y.shape[0]
        # sync_dist: under DDP the logged loss is the mean over all ranks (every rank's batch), not rank 0's own
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=bs, sync_dist=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=bs)
        return loss

    def on_train_start(self):
        self.val_acc_best.reset()  # the sanity check must not count as a best value

    def validation_step(self, batch, batch_idx):
        y = batch["label"]
        probs = self.video_probabilities(batch["video"])
        self.val_metrics.update(probs, y)
        self.log("val/loss", self._eval_loss(probs, y, self.binary), on_epoch=True, prog_bar=True,
                 batch_size=y.shape[0], sync_dist=True)

    def on_validation_epoch_end(self):
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        self.log_dict(values, prog_bar=False, sync_dist=True)
        if not self.trainer.sanity_checking:
            self.val_acc_best(values["val/acc"])
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def test_step(self, batch, batch_idx):
        y = batch["label"]
        probs = self.video_probabilities(batch["video"])
        self.test_metrics.update(probs, y)
        self.test_confmat.update(probs, y)
        self.log("test/loss", self._eval_loss(probs, y, self.binary), on_epoch=True, batch_size=y.shape[0],
                 sync_dist=True)

    def on_test_epoch_end(self):
        self.log_dict(self.test_metrics.compute(), sync_dist=True)
        self.test_metrics.reset()
        self.confusion_matrix = self.test_confmat.compute().cpu()
        self.test_confmat.reset()

    # -- optimisation ----------------------------------------------------------------------------
    def configure_optimizers(self):
        opt = instantiate(OmegaConf.create(dict(self.hparams.optimizer)))(params=self.parameters())
        sched_cfg = self.hparams.scheduler
        if not sched_cfg:
            return opt
        sched_cfg = dict(sched_cfg)
        interval = sched_cfg.pop("interval", "epoch")
        sched = instantiate(OmegaConf.create(sched_cfg))(optimizer=opt)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": interval}}



# -- weight averaging (callbacks.weight_averaging.kind: none | ema | swa) ------------------------------------------
class VideoWeightAveraging(WeightAveraging):
    """Averaged weights for validation, checkpoint selection, checkpoints, test and predict.

    * ``ema``: exponential moving average after every optimizer step,
      W_ema <- decay * W_ema + (1 - decay) * W (torch's ``get_ema_multi_avg_fn``).
    * ``swa``: equal average of the weights at the end of every epoch >= ``swa_start_epoch`` (taken at the
      epoch's last optimizer step, so epoch E's validation already includes epoch E). Before that epoch
      the averaged copy mirrors the current weights: early validations score the raw model.

    BatchNorm: ``use_buffers=True``, the running mean / variance are averaged like the weights (no
    ``update_bn`` pass). Lightning's ``WeightAveraging`` (torch's ``AveragedModel``) swaps the averaged
    weights in for every validation, writes them as each checkpoint's ``state_dict`` (the raw ones go to
    ``current_model_state``, for resuming) and copies them into the model when training ends. Changes:
    updates are decided here per optimizer step (``on_train_batch_end``); after fit the callback drops its
    copy, so ``trainer.test(ckpt_path=...)`` evaluates the checkpoint's ``state_dict`` (Lightning's
    ``on_load_checkpoint`` would load ``current_model_state``, the raw weights, back into the model).
    """

    def __init__(self, kind: str, ema_decay: float = 0.99, swa_start_epoch: int = 0):
        if kind not in ("ema", "swa"):
            raise ValueError(f"callbacks.weight_averaging.kind={kind!r}: expected none, ema or swa")
        self.kind = kind
        self.ema_decay = float(ema_decay)
        self.swa_start_epoch = int(swa_start_epoch)
        self.n_updates = 0
        kw = {"multi_avg_fn": get_ema_multi_avg_fn(self.ema_decay)} if kind == "ema" else {}
        super().__init__(use_buffers=True, **kw)

    def should_update(self, step_idx=None, epoch_idx=None) -> bool:
        return False  # on_train_batch_end decides

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step <= self._latest_update_step:
            return  # no optimizer step since the last update (gradient accumulation)
        avg = self._average_model
        if self.kind == "ema" or (batch_idx + 1 >= trainer.num_training_batches
                                  and trainer.current_epoch >= self.swa_start_epoch):
            avg.update_parameters(pl_module)
            self._latest_update_step = trainer.global_step
            self.n_updates = int(avg.n_averaged)
        elif int(avg.n_averaged) == 0:  # SWA not started: validate / checkpoint the current weights
            with torch.no_grad():
                for a, c in zip(itertools.chain(avg.module.parameters(), avg.module.buffers()),
                                itertools.chain(pl_module.parameters(), pl_module.buffers())):
                    a.copy_(c)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if stage == "fit":
            self._average_model = None  # the model holds the averaged weights now (on_train_end)

    def on_load_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        if self._average_model is not None:  # resuming fit: restore both weight sets
            super().on_load_checkpoint(trainer, pl_module, checkpoint)


def weight_averaging_callback(kind: str | None, ema_decay: float = 0.99, swa_start_epoch: int = 0):
    """The callback of callbacks.weight_averaging (`kind`: `ema`, `swa`); None for `none`."""
    kind = str(kind or "none").lower()
    return None if kind == "none" else VideoWeightAveraging(kind, ema_decay, swa_start_epoch)
