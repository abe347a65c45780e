"""Randomly initialised PyTorchVideo model-zoo architectures (no weight download) for task=video."""
from __future__ import annotations

from torch import nn

from mediaml.tasks.video.compat import install_torchvision_alias

install_torchvision_alias()


def x3d_xs(num_outputs: int = 1, num_frames: int = 4, crop: int = 160, width_factor: float = 2.0,
           depth_factor: float = 2.2, dropout: float = 0.5, **_) -> nn.Module:
    """X3D-XS (Feichtenhofer 2020): create_x3d sized to the configured clip (4x160x160 in the paper)."""
    from pytorchvideo.models.x3d import create_x3d

    return create_x3d(input_clip_length=int(num_frames), input_crop_size=int(crop), model_num_class=int(num_outputs),
                      width_factor=width_factor, depth_factor=depth_factor, dropout_rate=dropout,
                      head_activation=None)


def r2plus1d(num_outputs: int = 1, dropout: float = 0.5, width: float = 1.0, **_) -> nn.Module:
    """R(2+1)D-50 layout from create_r2plus1d, with a width multiplier on its stem/stage widths, and a
    global-average head so any clip size works."""
    from pytorchvideo.models.r2plus1d import create_r2plus1d
    from pytorchvideo.models.head import create_res_basic_head

    stem = max(4, int(round(64 * width)))
    model = create_r2plus1d(model_num_class=int(num_outputs), dropout_rate=dropout, stem_dim_out=stem,
                            stage_conv_b_dilation=((1, 1, 1),) * 4, head_activation=None)
    head_in = model.blocks[-1].proj.in_features
    model.blocks[-1] = create_res_basic_head(in_features=head_in, out_features=int(num_outputs), pool=None,
                                             output_size=(1, 1, 1), dropout_rate=dropout, activation=None,
                                             output_with_global_average=True)
    model.blocks[-1].pool = nn.AdaptiveAvgPool3d(1)
    return model
