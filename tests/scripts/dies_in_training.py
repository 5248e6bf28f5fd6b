"""Runs a recipe and dies as ``kill -9`` would (``os._exit``, no clean-up)
when a Brain is about to train its ``STEP``-th batch of epoch ``EPOCH``.

Usage: ``dies_in_training.py MODULE:BRAIN EPOCH STEP script.py ARGS...``,
e.g. ``speechbrain_kd.brains:SpatialInjectionBrain 2 3``. Run by the
resume tests.
"""

import importlib
import os
import runpy
import sys


def main(brain_path, epoch, step, script, args):
    """Patches the Brain's ``fit_batch`` to die, then runs the recipe.

    Arguments
    ---------
    brain_path : str
        ``module:ClassName`` of the Brain.
    epoch : int
        The epoch to die in.
    step : int
        The step (1-based, within the epoch) that never runs.
    script : str
        The recipe script.
    args : list of str
        Its arguments.
    """
    module, _, name = brain_path.partition(":")
    brain_class = getattr(importlib.import_module(module), name)
    fit_batch = brain_class.fit_batch

    def dying_fit_batch(self, batch):
        """Dies instead of training step ``step`` of ``epoch``."""
        if self.hparams.epoch_counter.current == epoch and self.step == step:
            os._exit(137)
        return fit_batch(self, batch)

    brain_class.fit_batch = dying_fit_batch
    run_as_main(script, args)


def run_as_main(script, args):
    """Runs ``script args`` in this process as ``python script args`` would.

    Arguments
    ---------
    script : str
        The recipe script.
    args : list of str
        Its arguments.
    """
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        sys.argv[4],
        sys.argv[5:],
    )
