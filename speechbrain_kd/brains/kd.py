"""``KDBrain``: knowledge distillation from a frozen teacher.

The student is ``modules.model``; the teacher is ``hparams.teacher``, loaded
from ``hparams.teacher_source`` (see :mod:`speechbrain_kd.brains.teacher`)
with a strict key check, kept outside the optimizer, DDP and train mode,
and run once per training batch under ``torch.no_grad()``.

The distillation is ``hparams.distill_terms``, a list of
:class:`~speechbrain_kd.distill.DistillTerm` (a loss plus a few lines of
yaml each). They become the run's module ``distill_terms``
(:class:`~speechbrain_kd.distill.DistillTerms`), so a term with parameters
is trained with the student, checkpointed and DDP-wrapped. Every term is
called with the same :class:`~speechbrain_kd.distill.DistillStep` and
logged separately (``loss_supervised``, ``loss_<name>``); the objective is
``supervised_weight * loss(student, clean) + Σ terms``. The student reads
``hparams.student_input`` of the batch (``noisy_sig``), the teacher
``hparams.teacher_input`` (default: the same). Validation and test use
the student alone.
"""

import logging

import torch

import speechbrain as sb
from speechbrain.utils.distributed import run_on_main
from speechbrain_kd.brains.enhance import EnhanceBrain
from speechbrain_kd.brains.teacher import load_teacher
from speechbrain_kd.distill import (
    DistillStep,
    DistillTerms,
    FeatureTaps,
    collect_taps,
)
from speechbrain_kd.distill.teacher_cache import TeacherCache

logger = logging.getLogger(__name__)

#: Name of the terms' module in ``modules`` and in the checkpointer.
DISTILL_TERMS = "distill_terms"


class KDBrain(EnhanceBrain):
    """Distils ``hparams.teacher`` into ``modules.model``.

    Hyperparameters read besides those of :class:`EnhanceBrain`:
    ``teacher`` (the teacher module, required), ``teacher_source``
    (where to load it from; ``None`` when the caller passes an already
    loaded ``teacher``), ``distill_terms`` (list, may be empty; a term of
    weight 0 is off: not computed, tapped or logged),
    ``supervised_weight`` (1.0), ``teacher_input`` (the batch key the
    teacher reads; default: the student's ``student_input``).

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
    ...     hparams={
    ...         "loss": loss,
    ...         "distill_terms": [
    ...             OutputDistillTerm(loss, weight=1.0, name="output_kd")
    ...         ],
    ...     },
    ...     teacher=torch.nn.Identity(),
    ... )
    >>> batch = PaddedBatch(
    ...     [
    ...         {
    ...             "id": "a",
    ...             "noisy_sig": torch.ones(800),
    ...             "clean_sig": torch.ones(800),
    ...         }
    ...     ]
    ... )
    >>> out = brain.compute_forward(batch, sb.Stage.TRAIN)
    >>> float(brain.compute_objectives(out, batch, sb.Stage.TRAIN))
    0.0
    >>> sorted(brain.term_averages())
    ['loss_output_kd', 'loss_supervised']
    """

    #: A Brain whose runs may have no term at all (then no teacher is
    #: loaded) sets this; KDBrain itself always loads its teacher.
    teacher_optional = False

    def __init__(
        self,
        modules=None,
        opt_class=None,
        hparams=None,
        run_opts=None,
        checkpointer=None,
        teacher=None,
    ):
        terms = list((hparams or {}).get("distill_terms") or [])
        # A zero weight switches a term off (ablations, --kd_weight 0): it
        # is neither computed nor tapped nor logged.
        active = DistillTerms(t for t in terms if t.weight != 0)
        modules = {**(modules or {}), DISTILL_TERMS: active}
        super().__init__(modules, opt_class, hparams, run_opts, checkpointer)
        for term in terms:
            if term.weight == 0:
                logger.info("Distillation term %s off (weight 0)", term.name)
        has_parameters = any(True for _ in active.parameters())
        if (
            checkpointer is not None
            and has_parameters
            and DISTILL_TERMS not in checkpointer.recoverables
        ):
            checkpointer.add_recoverable(DISTILL_TERMS, active)
        self.distill_terms = list(active)
        if teacher is None and (active or not self.teacher_optional):
            teacher = self.load_teacher()
        self.teacher = teacher
        student_names, teacher_names = collect_taps(self.distill_terms)
        self.student_taps = FeatureTaps(
            self.modules.model, student_names, role="student"
        )
        if teacher is None:
            logger.info("No distillation term: no teacher is loaded")
            return
        self.teacher = teacher.to(self.device).eval().requires_grad_(False)
        self.teacher_taps = FeatureTaps(
            self.teacher, teacher_names, detach=True, role="teacher"
        )
        self.teacher_cache = None
        if self.hparam("teacher_cache", False):
            self.teacher_cache = TeacherCache(self.teacher, self.teacher_taps)
            logger.info("Teacher outputs cached per training item")

    def load_teacher(self):
        """Loads ``hparams.teacher`` from ``hparams.teacher_source``.

        The main process collects the file first (hub download or local
        link), then the other processes load it.

        Returns
        -------
        torch.nn.Module
            The loaded teacher.
        """
        return self.load_frozen(
            "teacher",
            savedir=self.hparam("teacher_savedir", self.output_path("teacher")),
        )

    def load_frozen(self, role, savedir=None):
        """Loads ``hparams.<role>`` from ``hparams.<role>_source``, strictly.

        The main process collects the file first (hub download or local
        link), then the other processes load it.

        Arguments
        ---------
        role : str
            ``teacher`` or another frozen model (``bad student``).
        savedir : str, optional
            Where the file is collected (default: ``<output>/<role>``).

        Returns
        -------
        torch.nn.Module
            The loaded model.
        """
        name = role.replace(" ", "_")
        model = getattr(self.hparams, name)
        kwargs = {
            "model": model,
            "source": self.hparam(f"{name}_source"),
            "savedir": savedir or self.output_path(name),
            "role": role,
        }
        run_on_main(
            load_teacher,
            kwargs=kwargs,
            post_func=load_teacher,
            post_kwargs=kwargs,
        )
        return model

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
        torch.Tensor or DistillStep
            Outside training (or without terms), the student's output; in
            training, the step the terms see.
        """
        if stage != sb.Stage.TRAIN or not self.distill_terms:
            return super().compute_forward(batch, stage)
        batch = batch.to(self.device)
        self.student_taps.clear()
        self.teacher_taps.clear()
        step = DistillStep.for_batch(
            batch,
            student_key=self.student_input_key,
            teacher_key=self.hparam("teacher_input"),
            student_out=None,
        )
        step.student_out = self.modules.model(step.student_input)
        step.student_features = dict(self.student_taps.features)
        if self.teacher_cache is not None:
            step.teacher_out, step.teacher_features = self.teacher_cache(
                batch.id, step.teacher_input, self.teacher_lengths(batch)
            )
        else:
            with torch.no_grad():
                step.teacher_out = self.teacher(step.teacher_input)
            step.teacher_features = dict(self.teacher_taps.features)
        step.sample_weights = self.sample_weights(step)
        return step

    def teacher_lengths(self, batch):
        """Relative lengths of the teacher's input in ``batch``.

        Arguments
        ---------
        batch : speechbrain.dataio.batch.PaddedBatch
            The batch.

        Returns
        -------
        torch.Tensor
            ``[B]`` relative lengths.
        """
        key = self.hparam("teacher_input") or self.student_input_key
        return getattr(batch, key).lengths

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs the teacher cache's size after each training epoch.

        Arguments
        ---------
        stage : speechbrain.Stage
            The stage ending.
        stage_loss : float
            Its average loss.
        epoch : int, optional
            The epoch number.
        """
        cache = getattr(self, "teacher_cache", None)
        if stage == sb.Stage.TRAIN and cache is not None:
            logger.info(
                "Teacher cache: %d items, %.1f MB, %d hits, %d misses",
                len(cache),
                cache.nbytes / 2**20,
                cache.hits,
                cache.misses,
            )
        super().on_stage_end(stage, stage_loss, epoch)

    def sample_weights(self, step):
        """Per-utterance weights of the terms (none by default).

        A Brain that weighs utterances (KDRL's policy) overrides this.

        Arguments
        ---------
        step : DistillStep
            The step being built (outputs and features set).

        Returns
        -------
        dict
            Term name -> ``[B]`` weights.
        """
        return {}

    def enhanced_from(self, predictions):
        """The student's output inside ``predictions``.

        Arguments
        ---------
        predictions : torch.Tensor or DistillStep
            Output of :meth:`compute_forward`.

        Returns
        -------
        torch.Tensor
            Enhanced waveforms.
        """
        if isinstance(predictions, DistillStep):
            return predictions.student_out
        return predictions

    def compute_objectives(self, predictions, batch, stage):
        """Supervised loss plus every distillation term, each logged.

        Arguments
        ---------
        predictions : torch.Tensor or DistillStep
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
        if not isinstance(predictions, DistillStep):
            return loss
        loss = loss * self.hparam("supervised_weight", 1.0)
        for name, value in self.modules[DISTILL_TERMS](predictions).items():
            self.log_term(name, value)
            loss = loss + value
        for term in self.distill_terms:
            for part, value in term.logged.items():
                self.log_term(f"{term.name}_{part}", value)
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
        if self.teacher is not None:
            self.teacher.eval()
        super().on_stage_start(stage, epoch)
