"""Compatibility steps for third-party packages, applied before they are imported.

PyTorchVideo 0.1.5 (its last release) imports ``torchvision.transforms.functional_tensor``
(in ``pytorchvideo/transforms/augmentations.py``). torchvision 0.17 renamed that private module to
``torchvision.transforms._functional_tensor`` and later releases removed the old name, so
``import pytorchvideo.transforms`` fails with ``ModuleNotFoundError`` on current torchvision.
:func:`install_torchvision_alias` registers the new module under the old name in ``sys.modules``
(the functions PyTorchVideo uses, ``adjust_*``/``_blend``/..., kept their signatures). Every video
module calls it before importing PyTorchVideo; ``tests/test_video_compat.py`` shows that the import
fails without it.
"""
from __future__ import annotations

import importlib
import sys

_OLD = "torchvision.transforms.functional_tensor"
_NEW = "torchvision.transforms._functional_tensor"


def install_torchvision_alias() -> bool:
    """Make ``import torchvision.transforms.functional_tensor`` work; True if an alias was installed."""
    if _OLD in sys.modules:
        return False
    try:
        importlib.import_module(_OLD)
        return False  # an old torchvision that still ships the module: nothing to do
    except ModuleNotFoundError:
        pass
    sys.modules[_OLD] = importlib.import_module(_NEW)
    return True
