"""task=video: 3D-CNN fight detection (seed 002).

Files, top to bottom: ``task.py`` (the runner), ``data.py`` (clip folders, synthetic clips), ``decode.py``
(PyAV decoding), ``cache.py`` (decode-once cache, loaders), ``nets.py`` (C3D, seed 002's network),
``pytorchvideo_nets.py`` (X3D-XS, R(2+1)D), ``module.py`` (the LightningModule), ``predict.py``
(``python -m mediaml.tasks.video.predict CKPT VIDEO...``), ``compat.py`` (the torchvision alias PyTorchVideo needs).
"""
from mediaml.errors import require_extra

# Before any module of this package imports them: a missing extra stops with its install command.
require_extra("video", ['torch', 'torchvision', 'lightning', 'torchmetrics', 'pytorchvideo', 'av'])
