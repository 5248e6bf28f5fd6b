"""Former home of model export: see :mod:`speechbrain_kd.pretrained.export`.

Kept so that ``from speechbrain_kd.export import export_model`` keeps
working.
"""

from speechbrain_kd.pretrained.export import export_model, synthetic_noisy_clip  # noqa: F401
from speechbrain_kd.pretrained.folder import EXPORTED_FILES

__all__ = ["EXPORTED_FILES", "export_model", "synthetic_noisy_clip"]
