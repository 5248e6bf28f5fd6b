"""Knowledge-distillation building blocks: taps, AT / MV-AT, yaml terms.

* :class:`FeatureTaps` — forward hooks capturing submodule outputs by path.
* :class:`TeacherCache` — the teacher's outputs and features per item, once.
* :func:`attention_map`, :func:`at_loss`, :class:`ATLoss` — attention
  transfer (MV-AT Eq. 1-2), with dual-depth matching (a list of teacher
  features is summed; maps of different lengths are interpolated).
* :func:`mvat_pairs`, :func:`single_view_pairs`, :func:`layer_pairs` — tap
  pairs, asked of the models (``tap_path``).
* :class:`DistillStep`, :class:`DistillTerm`, :class:`DistillTerms` — the
  term protocol; :class:`FeatureDistillTerm`, :class:`OutputDistillTerm`,
  :func:`collect_taps` — the terms declared in yaml.
* :class:`FeatureMSELoss` — FitNets-style hint loss (with a projection).
* :class:`LatentAlignmentTerm`, :class:`CosineDistanceLoss`,
  :class:`LinearInvertedBottleneck` — latent alignment with the cosine
  distance (or L2) through a trained linear projection.
* :class:`SimilarityLoss`, :func:`similarity_loss` — CNNC-Distill
  time-by-time feature-similarity loss (works across network widths).
* :class:`SpatialInjectionTerm` — spatial injection (teacher over bad
  student feature distances).
* :class:`OKDLoss`, :func:`normalize_metric` — MetricGAN-OKD generator
  loss and the discriminator's metric targets.
"""

from speechbrain_kd.distill.attention import (
    ATLoss,
    at_loss,
    attention_map,
    resample_map,
)
from speechbrain_kd.distill.hint import FeatureMSELoss
from speechbrain_kd.distill.latent import (
    CosineDistanceLoss,
    LatentAlignmentTerm,
    LinearInvertedBottleneck,
    cosine_distance,
    tap_widths,
)
from speechbrain_kd.distill.okd import (
    TARGET_METRICS,
    OKDLoss,
    check_target_metrics,
    normalize_metric,
)
from speechbrain_kd.distill.pairs import (
    layer_pairs,
    mvat_pairs,
    single_view_pairs,
)
from speechbrain_kd.distill.similarity import (
    SimilarityLoss,
    resample_frames,
    similarity_loss,
    similarity_matrix,
)
from speechbrain_kd.distill.spatial import SpatialInjectionTerm
from speechbrain_kd.distill.taps import FeatureTaps, unwrap_model
from speechbrain_kd.distill.teacher_cache import TeacherCache, TeacherCacheError
from speechbrain_kd.distill.terms import (
    DistillStep,
    DistillTerm,
    DistillTerms,
    FeatureDistillTerm,
    OutputDistillTerm,
    collect_taps,
)

__all__ = [
    "TARGET_METRICS",
    "OKDLoss",
    "check_target_metrics",
    "normalize_metric",
    "ATLoss",
    "CosineDistanceLoss",
    "LatentAlignmentTerm",
    "LinearInvertedBottleneck",
    "cosine_distance",
    "tap_widths",
    "DistillStep",
    "DistillTerm",
    "DistillTerms",
    "FeatureDistillTerm",
    "FeatureMSELoss",
    "FeatureTaps",
    "TeacherCache",
    "TeacherCacheError",
    "OutputDistillTerm",
    "SimilarityLoss",
    "SpatialInjectionTerm",
    "at_loss",
    "attention_map",
    "collect_taps",
    "layer_pairs",
    "mvat_pairs",
    "resample_frames",
    "resample_map",
    "similarity_loss",
    "similarity_matrix",
    "single_view_pairs",
    "unwrap_model",
]
