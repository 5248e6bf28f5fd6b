"""Training methods as SpeechBrain Brains (they know no dataset)."""

from speechbrain_kd.brains.enhance import EnhanceBrain
from speechbrain_kd.brains.kd import KDBrain
from speechbrain_kd.brains.kdrl import KDRLBrain
from speechbrain_kd.brains.okd_metricgan import OKDMetricGANBrain
from speechbrain_kd.brains.spatial import SpatialInjectionBrain
from speechbrain_kd.brains.teacher import TeacherLoadError, load_teacher

__all__ = [
    "EnhanceBrain",
    "KDBrain",
    "KDRLBrain",
    "OKDMetricGANBrain",
    "SpatialInjectionBrain",
    "TeacherLoadError",
    "load_teacher",
]
