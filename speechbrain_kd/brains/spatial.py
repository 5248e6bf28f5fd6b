"""``SpatialInjectionBrain``: spatial injection (paper 002).

Trains a spectral lobe (SJEN, or the MHCA-CRN teacher itself) on the
reconstruction loss of Eq. 1, and, with a
:class:`~speechbrain_kd.distill.SpatialInjectionTerm`, distils the
binaural teacher's per-ear encoder features into it while pushing them
away from a frozen bad student's (Eqs. 2-5).
"""

import logging

import torch

from speechbrain_kd.brains.kd import KDBrain
from speechbrain_kd.distill import DistillStep, FeatureTaps

logger = logging.getLogger(__name__)

#: The lobe modules whose outputs are the estimates of Eq. 1.
ESTIMATE_TAPS = ("magnitude_out", "phase_out")


class SpatialInjectionBrain(KDBrain):
    """Eq. 1 on the model's own magnitude and phase estimates, plus the
    distillation terms, the bad student run beside the teacher.

    Hyperparameters read besides those of :class:`KDBrain`: ``loss`` (a
    :class:`~speechbrain_kd.distill.spatial.ReconstructionLoss`, called
    with the model's ``magnitude_out`` / ``phase_out`` taps and the clean
    spectrum of the model's own ``spectrogram``), ``bad_student`` and
    ``bad_student_source`` (loaded like a teacher, strict keys, when a
    term reads bad-student features). Without an active term no teacher
    is loaded: the teacher's and the bad student's own trainings use this
    Brain too.

    Arguments
    ---------
    modules : dict
        Must hold ``model`` (a lobe with ``spectrogram``, ``magnitude_out``
        and ``phase_out``).
    opt_class : callable
        Optimizer factory.
    hparams : dict
        Hyperparameters (see above).
    run_opts : dict
        SpeechBrain run options.
    checkpointer : speechbrain.utils.checkpoints.Checkpointer
        Checkpointer of the run.
    teacher : torch.nn.Module, optional
        An already loaded teacher.
    bad_student : torch.nn.Module, optional
        An already loaded bad student.

    Example
    -------
    >>> import speechbrain as sb
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> from speechbrain_kd.distill.spatial import ReconstructionLoss
    >>> from speechbrain_kd.lobes.sjen import SJEN
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <...>
    >>> model = SJEN(channels=[16], hidden=8, phase_channels=4)
    >>> brain = SpatialInjectionBrain(
    ...     modules={"model": model}, hparams={"loss": ReconstructionLoss()}
    ... )
    >>> batch = PaddedBatch(
    ...     [
    ...         {
    ...             "id": "a",
    ...             "noisy_sig": torch.randn(800),
    ...             "clean_sig": torch.randn(800),
    ...         }
    ...     ]
    ... )
    >>> out = brain.compute_forward(batch, sb.Stage.TRAIN)
    >>> loss = brain.compute_objectives(out, batch, sb.Stage.TRAIN)
    >>> loss.dim(), sorted(brain.term_averages())
    (0, ['loss_supervised'])
    """

    teacher_optional = True

    def __init__(
        self,
        modules=None,
        opt_class=None,
        hparams=None,
        run_opts=None,
        checkpointer=None,
        teacher=None,
        bad_student=None,
    ):
        super().__init__(
            modules, opt_class, hparams, run_opts, checkpointer, teacher
        )
        self.estimate_taps = FeatureTaps(
            self.modules.model, list(ESTIMATE_TAPS), role="student"
        )
        names = list(
            dict.fromkeys(
                name
                for term in self.distill_terms
                for name in getattr(term, "bad_student_taps", [])
            )
        )
        self.bad_student = None
        if names:
            if bad_student is None:
                bad_student = self.load_bad_student()
            self.bad_student = (
                bad_student.to(self.device).eval().requires_grad_(False)
            )
            self.bad_student_taps = FeatureTaps(
                self.bad_student, names, detach=True, role="bad student"
            )

    def load_bad_student(self):
        """Loads ``hparams.bad_student`` from ``hparams.bad_student_source``.

        Returns
        -------
        torch.nn.Module
            The loaded bad student.
        """
        return self.load_frozen("bad student")

    def compute_forward(self, batch, stage):
        """The student (and, in training, teacher and bad student).

        Arguments
        ---------
        batch : speechbrain.dataio.batch.PaddedBatch
            The batch.
        stage : speechbrain.Stage
            The current stage.

        Returns
        -------
        torch.Tensor or DistillStep
            As :meth:`KDBrain.compute_forward`, with the bad student's
            features in the step.
        """
        predictions = super().compute_forward(batch, stage)
        if (
            isinstance(predictions, DistillStep)
            and self.bad_student is not None
        ):
            self.bad_student_taps.clear()
            with torch.no_grad():
                self.bad_student(predictions.student_input)
            predictions.bad_student_features = dict(
                self.bad_student_taps.features
            )
        return predictions

    def supervised_loss(self, enhanced, batch):
        """Eq. 1 on the estimates of the model's last forward pass.

        Arguments
        ---------
        enhanced : torch.Tensor
            Enhanced waveforms (not used: the loss reads the estimates).
        batch : speechbrain.dataio.batch.PaddedBatch
            The batch.

        Returns
        -------
        torch.Tensor
            The scalar loss.
        """
        features = self.estimate_taps.features
        clean, lengths = batch.clean_sig
        spectrogram = self.estimate_taps.model.spectrogram
        clean_magnitude, clean_phase = spectrogram.analyse(clean)
        loss = self.hparams.loss(
            features["magnitude_out"],
            features["phase_out"],
            clean_magnitude,
            clean_phase,
            lengths,
        )
        self.log_term("supervised", loss)
        return loss

    def on_stage_start(self, stage, epoch=None):
        """Keeps the bad student in eval mode.

        Arguments
        ---------
        stage : speechbrain.Stage
            The stage starting.
        epoch : int, optional
            The epoch number.
        """
        if self.bad_student is not None:
            self.bad_student.eval()
        super().on_stage_start(stage, epoch)
