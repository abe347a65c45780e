"""The LightningModule of task=video: one network, BCE (binary, one logit) or cross-entropy (more classes),
torchmetrics on probabilities, evaluation clips averaged per video.

Fixes against seed 002's VideoClassifier: metrics on probabilities with one threshold (0.5, configurable),
not on logits with 0.05; no per-step loss lists kept forever; val/test use deterministic clips; the
network is built from its config (a checkpoint stores the config, not a pickled model).
"""
from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
import torchmetrics
from hydra.utils import instantiate
from omegaconf import OmegaConf


def build_net(net_cfg: dict, num_outputs: int, num_frames: int, crop: int) -> torch.nn.Module:
    cfg = dict(net_cfg)
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
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=bs)
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
