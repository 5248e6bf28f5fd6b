"""Trained models: the model folder, inference and export.

Nothing here imports training code (Brains, distillation, metrics):

* :mod:`~speechbrain_kd.pretrained.folder`: the model folder's files;
* :mod:`~speechbrain_kd.pretrained.checkpoints`: finding and strictly
  loading parameter files;
* :mod:`~speechbrain_kd.pretrained.interface`: ``KDEnhancement``;
* :mod:`~speechbrain_kd.pretrained.chunking`: chunked inference;
* :mod:`~speechbrain_kd.pretrained.streaming`: ``StreamingEnhancer``;
* :mod:`~speechbrain_kd.pretrained.export`: ``export_model``;
* :mod:`~speechbrain_kd.pretrained.card`: the model card.
"""

from speechbrain_kd.pretrained.export import export_model
from speechbrain_kd.pretrained.interface import KDEnhancement, ModelLoadError
from speechbrain_kd.pretrained.streaming import StreamingEnhancer

__all__ = [
    "KDEnhancement",
    "ModelLoadError",
    "StreamingEnhancer",
    "export_model",
]
