"""Model building blocks (lobes): plain ``torch.nn.Module`` networks.

* :mod:`speechbrain_kd.lobes.manner`: MANNER (multi-view attention U-Net),
  the MV-AT teacher and student backbone.
* :mod:`speechbrain_kd.lobes.manner_official`: loads checkpoints of the
  official MANNER code into it.
"""

from speechbrain_kd.lobes.manner import MANNER, attention_tap_names

__all__ = ["MANNER", "attention_tap_names"]
