"""speechbrain-kd: knowledge distillation for speech enhancement.

A SpeechBrain plugin that ships published speech-enhancement knowledge
distillation methods as recipes: data preparation, models (SpeechBrain
lobes), Brains, losses, reference-grade metrics and profiling.
"""

__version__ = "0.1.0"
