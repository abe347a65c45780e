"""3D CNNs for task=video. Every model maps (B, C, T, H, W) to (B, num_outputs) logits.

* :class:`C3D` — Tran et al. 2015 (8 conv layers, 3x3x3 kernels, widths 64-128-256-256-512-512-512-512,
  pools 1x2x2 then 2x2x2, two fully connected layers) with a width multiplier, BatchNorm3d + ReLU after
  each conv, and global average pooling so any clip size works (``width=0.125`` trains on a CPU).
* :class:`SeedVideo3DCNN` — seed 002's ``Video3DCNN`` layout (widths 2-4-8-8-16-16-16-16, fc 800-1000-400,
  then ReLU and Linear(400 -> outputs)) with its bugs fixed: a ReLU after every conv (the seed had
  none), dropout only in training (the seed called ``F.dropout`` without ``training=``), fc input size
  computed from the configured clip shape instead of a hard-coded 10x112x112.
"""
from __future__ import annotations

import torch
from torch import nn

C3D_WIDTHS = (64, 128, 256, 256, 512, 512, 512, 512)
# After which conv a pool follows, and its kernel (C3D: pool1 is 1x2x2 to keep early temporal detail).
C3D_POOLS = {0: (1, 2, 2), 1: (2, 2, 2), 3: (2, 2, 2), 5: (2, 2, 2), 7: (2, 2, 2)}


def _conv_block(cin: int, cout: int, batchnorm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv3d(cin, cout, kernel_size=3, padding=1, bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm3d(cout))
    layers.append(nn.ReLU(inplace=True))
    return layers


class C3D(nn.Module):
    def __init__(self, num_outputs: int = 1, width: float = 0.125, fc_hidden: int | None = None,
                 dropout: float = 0.5, batchnorm: bool = True, in_channels: int = 3, motion: bool = False, **_):
        super().__init__()
        # motion=True: the input also gets its temporal differences x[t] - x[t-1] as extra channels
        # (a cheap motion stream; fights are fast motion), so conv1 sees 2 * in_channels channels.
        self.motion = bool(motion)
        widths = [max(1, int(round(w * width))) for w in C3D_WIDTHS]
        layers: list[nn.Module] = []
        cin = in_channels * (2 if self.motion else 1)
        for i, cout in enumerate(widths):
            layers += _conv_block(cin, cout, batchnorm)
            if i in C3D_POOLS:
                # ceil_mode: short clips (10 frames) keep a temporal extent of 1 through pool5.
                layers.append(nn.MaxPool3d(C3D_POOLS[i], stride=C3D_POOLS[i], ceil_mode=True))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(1)
        hidden = int(fc_hidden) if fc_hidden else max(8, int(round(4096 * width)))
        self.fc6 = nn.Linear(cin, hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc7 = nn.Linear(hidden, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.motion:
            diff = torch.diff(x, dim=2, prepend=x[:, :, :1])
            x = torch.cat([x, diff], dim=1)
        x = self.pool(self.features(x)).flatten(1)
        return self.fc7(self.dropout(torch.relu(self.fc6(x))))  # C3D: dropout after the ReLU of fc6


class SeedVideo3DCNN(nn.Module):
    def __init__(self, num_outputs: int = 1, num_frames: int = 10, crop: int = 112, dropout: float = 0.5,
                 batchnorm: bool = False, relu: bool = True, **_):
        super().__init__()

        def conv(cin, cout):
            block: list[nn.Module] = [nn.Conv3d(cin, cout, 3, padding=1)]
            if batchnorm:
                block.append(nn.BatchNorm3d(cout))
            if relu:
                block.append(nn.ReLU(inplace=True))
            return block

        self.features = nn.Sequential(
            *conv(3, 2), nn.MaxPool3d((1, 2, 2), (1, 2, 2)),
            *conv(2, 4), nn.MaxPool3d(2, 2),
            *conv(4, 8), *conv(8, 8), nn.MaxPool3d(2, 2, padding=1),
            *conv(8, 16), *conv(16, 16), nn.MaxPool3d(2, 2, padding=1),
            *conv(16, 16), *conv(16, 16), nn.MaxPool3d(2, 2, padding=1),
        )
        with torch.no_grad():
            n = self.features(torch.zeros(1, 3, int(num_frames), int(crop), int(crop))).numel()
        self.fc1 = nn.Linear(n, 800)
        self.fc2 = nn.Linear(800, 1000)
        self.fc3 = nn.Linear(1000, 400)
        self.head = nn.Linear(400, num_outputs)  # the seed's VideoClassifier: ReLU then Linear(400, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).flatten(1)
        x = self.dropout(torch.relu(self.fc1(x)))
        x = self.dropout(torch.relu(self.fc2(x)))
        return self.head(torch.relu(self.fc3(x)))
