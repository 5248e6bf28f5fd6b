"""Runs ``train_okd.py`` and dies as ``kill -9`` would (``os._exit``, no
clean-up) at a chosen point of one epoch.

Usage: ``okd_dies.py WHERE EPOCH AFTER train_okd.py ARGS...`` with WHERE
``discriminator`` (after AFTER discriminator updates of EPOCH) or
``validation`` (when the validation of EPOCH starts). Run by
``tests/test_okd_recipes.py``.
"""

import os
import sys

from dies_in_training import run_as_main  # this script's folder

import speechbrain as sb
from speechbrain_kd.brains.okd_metricgan import OKDMetricGANBrain


def main(where, epoch, after, script, args):
    """Patches the Brain to die at the point, then runs the recipe.

    Arguments
    ---------
    where : str
        ``discriminator`` or ``validation``.
    epoch : int
        The epoch to die in.
    after : int
        Discriminator updates of that epoch to survive.
    script : str
        The recipe script.
    args : list of str
        Its arguments.
    """
    update = OKDMetricGANBrain.discriminator_update
    stage_start = OKDMetricGANBrain.on_stage_start
    count = [0]

    def dying_update(self, example):
        """Dies after ``after`` updates of ``epoch``."""
        if where == "discriminator" and self.train_epoch == epoch:
            if count[0] == after:
                os._exit(137)
            count[0] += 1
        return update(self, example)

    def dying_stage_start(self, stage, epoch_now=None):
        """Dies when the validation of ``epoch`` starts."""
        if where == "validation" and stage == sb.Stage.VALID:
            if epoch_now == epoch:
                os._exit(137)
        return stage_start(self, stage, epoch_now)

    OKDMetricGANBrain.discriminator_update = dying_update
    OKDMetricGANBrain.on_stage_start = dying_stage_start
    run_as_main(script, args)


if __name__ == "__main__":
    main(
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        sys.argv[4],
        sys.argv[5:],
    )
