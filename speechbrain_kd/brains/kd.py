"""``KDBrain``: knowledge distillation from a frozen teacher.

The student is ``modules.model``; the teacher is ``hparams.teacher``, loaded
from ``hparams.teacher_source`` (a training output folder, a checkpoint
folder or a HuggingFace id, see :mod:`speechbrain_kd.brains.teacher`) with
a strict key check. The teacher is kept **outside** ``modules``: it is not
handed to the optimizer, not wrapped by DDP, not switched to train mode by
``Brain.fit``; it lives on the device in eval mode without gradients and
runs once per training batch under ``torch.no_grad()``.

The distillation is declared in yaml as ``hparams.distill_terms``, a list of
:class:`speechbrain_kd.distill.FeatureDistillTerm` (student tap(s), teacher
tap(s), a loss, a weight) and :class:`speechbrain_kd.distill.OutputDistillTerm`
(a loss between the student's and the teacher's outputs). A new KD method
is therefore a loss plus a few lines of yaml. The training objective is::

    supervised_weight * loss(student, clean) + sum(term for term in terms)

and every term is logged separately (``loss_supervised``, ``loss_<name>``).
Validation and test use the student alone.
"""

import logging

import speechbrain as sb
import torch
from speechbrain.utils.distributed import run_on_main

from speechbrain_kd.brains.enhance import EnhanceBrain
from speechbrain_kd.brains.teacher import load_teacher
from speechbrain_kd.distill import FeatureTaps, OutputDistillTerm, collect_taps

logger = logging.getLogger(__name__)


class KDBrain(EnhanceBrain):
    """Distils ``hparams.teacher`` into ``modules.model``.

    Hyperparameters read besides those of :class:`EnhanceBrain`:
    ``teacher`` (the teacher module, required), ``teacher_source``
    (where to load it from; ``None`` when the caller passes an already
    loaded ``teacher``), ``distill_terms`` (list, may be empty; a term of
    weight 0 is off: not computed, tapped or logged),
    ``supervised_weight`` (1.0).

    Arguments
    ---------
    modules : dict
        Must hold ``model``, the student.
    opt_class : callable
        Optimizer factory (student parameters only).
    hparams : dict
        Hyperparameters (see above).
    run_opts : dict
        SpeechBrain run options.
    checkpointer : speechbrain.utils.checkpoints.Checkpointer
        Checkpointer of the student run.
    teacher : torch.nn.Module, optional
        An already loaded teacher; overrides ``hparams.teacher`` and skips
        loading from ``teacher_source``.

    Example
    -------
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> from speechbrain_kd.distill import OutputDistillTerm
    >>> from speechbrain_kd.losses import WeightedCleanNoiseLoss
    >>> loss = WeightedCleanNoiseLoss()
    >>> brain = KDBrain(
    ...     modules={"model": torch.nn.Identity()},
    ...     hparams={"loss": loss, "distill_terms": [
    ...         OutputDistillTerm(loss, weight=1.0, name="output_kd")]},
    ...     teacher=torch.nn.Identity(),
    ... )
    >>> batch = PaddedBatch([{"id": "a", "noisy_sig": torch.ones(800),
    ...                       "clean_sig": torch.ones(800)}])
    >>> out = brain.compute_forward(batch, sb.Stage.TRAIN)
    >>> float(brain.compute_objectives(out, batch, sb.Stage.TRAIN))
    0.0
    >>> sorted(brain.term_averages())
    ['loss_output_kd', 'loss_supervised']
    """

    def __init__(
        self,
        modules=None,
        opt_class=None,
        hparams=None,
        run_opts=None,
        checkpointer=None,
        teacher=None,
    ):
        super().__init__(modules, opt_class, hparams, run_opts, checkpointer)
        if teacher is None:
            teacher = self.load_teacher()
        self.teacher = teacher.to(self.device).eval().requires_grad_(False)
        terms = list(self.hparam("distill_terms") or [])
        # A zero weight switches a term off (ablations, --kd_weight 0): it
        # is neither computed nor tapped nor logged.
        self.distill_terms = [t for t in terms if t.weight != 0]
        for term in terms:
            if term.weight == 0:
                logger.info("Distillation term %s off (weight 0)", term.name)
        student_names, teacher_names = collect_taps(self.distill_terms)
        self.student_taps = FeatureTaps(self.modules.model, student_names)
        self.teacher_taps = FeatureTaps(
            self.teacher, teacher_names, detach=True
        )

    def load_teacher(self):
        """Loads ``hparams.teacher`` from ``hparams.teacher_source``.

        The main process collects the file first (hub download or local
        link), then the other processes load it.

        Returns
        -------
        torch.nn.Module
            The loaded teacher.
        """
        kwargs = {
            "model": self.hparams.teacher,
            "source": self.hparam("teacher_source"),
            "savedir": self.hparam(
                "teacher_savedir", self.output_path("teacher")
            ),
        }
        run_on_main(
            load_teacher,
            kwargs=kwargs,
            post_func=load_teacher,
            post_kwargs=kwargs,
        )
        return self.hparams.teacher

    def compute_forward(self, batch, stage):
        """Runs the student, and in training the teacher once, no grad.

        Arguments
        ---------
        batch : speechbrain.dataio.batch.PaddedBatch
            The batch.
        stage : speechbrain.Stage
            The current stage.

        Returns
        -------
        torch.Tensor or dict
            Outside training, the student's output. In training, a dict
            with ``enhanced``, ``teacher`` and the tapped features.
        """
        if stage != sb.Stage.TRAIN or not self.distill_terms:
            return super().compute_forward(batch, stage)
        batch = batch.to(self.device)
        noisy, _ = batch.noisy_sig
        self.student_taps.clear()
        self.teacher_taps.clear()
        enhanced = self.modules.model(noisy)
        with torch.no_grad():
            teacher_out = self.teacher(noisy)
        return {
            "enhanced": enhanced,
            "teacher": teacher_out,
            "student_features": dict(self.student_taps.features),
            "teacher_features": dict(self.teacher_taps.features),
        }

    def enhanced_from(self, predictions):
        """The student's output inside ``predictions``.

        Arguments
        ---------
        predictions : torch.Tensor or dict
            Output of :meth:`compute_forward`.

        Returns
        -------
        torch.Tensor
            Enhanced waveforms.
        """
        if isinstance(predictions, dict):
            return predictions["enhanced"]
        return predictions

    def compute_objectives(self, predictions, batch, stage):
        """Supervised loss plus every distillation term, each logged.

        Arguments
        ---------
        predictions : torch.Tensor or dict
            Output of :meth:`compute_forward`.
        batch : speechbrain.dataio.batch.PaddedBatch
            The batch.
        stage : speechbrain.Stage
            The current stage.

        Returns
        -------
        torch.Tensor
            The scalar training objective.
        """
        loss = super().compute_objectives(predictions, batch, stage)
        if not isinstance(predictions, dict):
            return loss
        loss = loss * self.hparam("supervised_weight", 1.0)
        noisy, lengths = batch.noisy_sig
        for term in self.distill_terms:
            if isinstance(term, OutputDistillTerm):
                value = term(
                    predictions["enhanced"],
                    predictions["teacher"],
                    noisy,
                    lengths,
                )
            else:
                value = term(
                    predictions["student_features"],
                    predictions["teacher_features"],
                    lengths,
                )
            self.log_term(term.name, value)
            loss = loss + value
        return loss

    def on_stage_start(self, stage, epoch=None):
        """Keeps the teacher in eval mode whatever happened to it.

        Arguments
        ---------
        stage : speechbrain.Stage
            The stage starting.
        epoch : int, optional
            The epoch number.
        """
        self.teacher.eval()
        super().on_stage_start(stage, epoch)
