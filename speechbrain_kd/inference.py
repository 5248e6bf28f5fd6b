"""Former home of the inference interface: see :mod:`speechbrain_kd.pretrained`.

Kept so that ``from speechbrain_kd.inference import KDEnhancement`` and
model folders exported before the move (their ``config.json`` names
``interface_module: speechbrain_kd.inference``) keep working.
"""

from speechbrain_kd.audio import fit_length, write_wav
from speechbrain_kd.pretrained.chunking import chunk_starts, crossfade_weights
from speechbrain_kd.pretrained.folder import (
    DEFAULT_CHUNK_SECONDS,
    DEFAULT_OVERLAP_SECONDS,
    HPARAMS_FILE,
    INTERFACE_CONFIG,
    MODEL_FILE,
    write_config as write_interface_config,
)
from speechbrain_kd.pretrained.interface import KDEnhancement, ModelLoadError
from speechbrain_kd.pretrained.streaming import StreamingEnhancer

__all__ = [
    "DEFAULT_CHUNK_SECONDS",
    "DEFAULT_OVERLAP_SECONDS",
    "HPARAMS_FILE",
    "INTERFACE_CONFIG",
    "KDEnhancement",
    "MODEL_FILE",
    "ModelLoadError",
    "StreamingEnhancer",
    "chunk_starts",
    "crossfade_weights",
    "fit_length",
    "write_interface_config",
    "write_wav",
]
