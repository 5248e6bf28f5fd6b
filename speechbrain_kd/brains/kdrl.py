"""``KDRLBrain``: a policy network weighs teacher and clean target per
utterance (KDRL, Chu, Wu and Su, IEEE Access 2023, Sec. III).

Every training step, in order:

1. the references R1 ("soft") and R2 ("hard") are copied from the student;
2. the policy maps each utterance's state (Eq. 2) to its learning ratio
   alpha; the student is updated on Eq. 7: the yaml's two distillation
   terms, ``hard`` (target: clean) and ``soft`` (target: teacher), are
   weighted per utterance by gamma_hard and gamma_soft of the ``method``
   (A, B or C) through the distillation contract's ``sample_weights``;
3. R1 is updated on the teacher's output only (Eq. 5), R2 on the clean
   signal only (Eq. 6), with the ``distance`` D (MSE for Wave-U-Net,
   -SI-SDR for Conv-TasNet);
4. the mixture is passed again through the student, R1 and R2 (eval mode,
   no gradient: their BatchNorm statistics are not moved by the re-pass);
   their distances to the clean signal give the reward (Eq. 8), the
   progress (Eq. 9, over the student's distance before its update) and
   the policy's loss (Eqs. 10-11), and the policy takes one step of its
   own optimizer.

The readings chosen where the printed equations are not usable as they
stand are documented in :mod:`speechbrain_kd.distill.kdrl`.

Hyperparameters read besides those of
:class:`~speechbrain_kd.brains.kd.KDBrain`: ``policy`` (a
:class:`~speechbrain_kd.distill.kdrl.PolicyNetwork`), ``policy_opt_class``,
``distance`` (called ``distance(pred, target, length=...)``, giving
``[B]``: :class:`~speechbrain_kd.losses.WaveformLoss` with
``reduction: none``), ``kdrl_method`` (``C``),
``hard_term`` / ``soft_term`` (names of the two terms: ``hard``,
``soft``), ``policy_lr`` / ``policy_final_lr`` (the policy's rate decays
geometrically from one to the other over the epochs), ``fixed_alpha`` (a number: no policy, every utterance gets it:
the paper's fixed-ratio baseline) and ``epoch_counter`` (its limit is the
number of epochs of Eq. 9).
"""

import copy
import logging

import torch

import speechbrain as sb
from speechbrain_kd.brains.kd import DISTILL_TERMS, KDBrain
from speechbrain_kd.distill import DistillStep
from speechbrain_kd.distill.kdrl import (
    policy_loss,
    policy_state,
    progress,
    reward,
    target_weights,
)
from speechbrain_kd.distill.taps import unwrap_model

logger = logging.getLogger(__name__)

#: The references: trained on the soft (teacher) or the hard (clean) target.
REFERENCES = ("soft", "hard")


class KDRLBrain(KDBrain):
    """KDRL: the student learns per utterance how much to follow the
    teacher; see the module docstring for the step and hyperparameters.

    Eq. 8's three cases leave out ties of the smallest distance: a tie
    gives a reward of 0 (no model is better; both formulas tend to 0
    there). Eq. 9 divides by the magnitude of the student's distance
    before its update (floored), Eq. 10 clips to [0, 1]
    (:mod:`speechbrain_kd.distill.kdrl`, every ordering tested in
    ``tests/test_kdrl.py``). Under DDP the policy's gradients are
    averaged over the processes; the references stay local.

    Arguments
    ---------
    modules : dict
        Must hold ``model``, the student.
    opt_class : callable
        Optimizer factory of the student (and of each reference).
    hparams : dict
        Hyperparameters (see the module docstring).
    run_opts : dict
        SpeechBrain run options.
    checkpointer : speechbrain.utils.checkpoints.Checkpointer
        Checkpointer; the policy, the references and their optimizers are
        added to it.
    teacher : torch.nn.Module, optional
        An already loaded teacher.

    Example
    -------
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> from speechbrain.utils.epoch_loop import EpochCounter
    >>> from speechbrain_kd.distill import OutputDistillTerm
    >>> from speechbrain_kd.distill.kdrl import PolicyNetwork
    >>> from speechbrain_kd.lobes.wave_u_net import WaveUNet
    >>> from speechbrain_kd.losses import mse_loss_masked
    >>> from functools import partial
    >>> distance = partial(mse_loss_masked, reduction="none")
    >>> brain = KDRLBrain(
    ...     modules={"model": WaveUNet(width=2, depth=3)},
    ...     opt_class=lambda p: torch.optim.Adam(p, 1e-3),
    ...     hparams={
    ...         "distill_terms": [
    ...             OutputDistillTerm(
    ...                 distance, name="hard", target="clean", pass_noisy=False
    ...             ),
    ...             OutputDistillTerm(distance, name="soft", pass_noisy=False),
    ...         ],
    ...         "distance": distance,
    ...         "policy": PolicyNetwork(800),
    ...         "policy_opt_class": lambda p: torch.optim.Adam(p, 1e-6),
    ...         "epoch_counter": EpochCounter(10),
    ...     },
    ...     run_opts={"device": "cpu"},
    ...     teacher=WaveUNet(width=2, depth=3),
    ... )
    >>> batch = PaddedBatch(
    ...     [
    ...         {
    ...             "id": f"u{i}",
    ...             "noisy_sig": torch.randn(800),
    ...             "clean_sig": torch.randn(800),
    ...         }
    ...         for i in range(2)
    ...     ]
    ... )
    >>> brain.init_optimizers()
    >>> loss = brain.fit_batch(batch)
    >>> sorted(brain.term_averages())  # doctest: +NORMALIZE_WHITESPACE
    ['loss_alpha', 'loss_distance_hard_reference',
     'loss_distance_soft_reference', 'loss_distance_student', 'loss_hard',
     'loss_policy', 'loss_reward', 'loss_soft']
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
        super().__init__(
            modules, opt_class, hparams, run_opts, checkpointer, teacher
        )
        self.method = self.hparam("kdrl_method", "C")
        target_weights(torch.zeros(1), self.method)  # checks the method
        self.term_names = (
            self.hparam("hard_term", "hard"),
            self.hparam("soft_term", "soft"),
        )
        names = [term.name for term in self.distill_terms]
        missing = [n for n in self.term_names if n not in names]
        if missing:
            raise ValueError(
                f"KDRL weighs the terms {list(self.term_names)} per "
                f"utterance, but distill_terms has {names} (missing "
                f"{missing}): add an OutputDistillTerm with target clean "
                "and one with target teacher, of those names"
            )
        self.fixed_alpha = self.hparam("fixed_alpha")
        self.policy = None
        if self.fixed_alpha is None:
            self.policy = self.hparams.policy.to(self.device)
            student = unwrap_model(self.modules.model)[-1]
            self.references = torch.nn.ModuleDict(
                {name: copy.deepcopy(student) for name in REFERENCES}
            ).to(self.device)
            if checkpointer is not None:
                checkpointer.add_recoverable("policy", self.policy)
                checkpointer.add_recoverable("references", self.references)
        self.alphas = []

    # -- optimisers ------------------------------------------------------------
    def init_optimizers(self):
        """The student's optimizer, one per reference and the policy's."""
        super().init_optimizers()
        if self.policy is None:
            return
        self.reference_optimizers = {
            name: self.opt_class(self.references[name].parameters())
            for name in REFERENCES
        }
        self.policy_optimizer = self.hparams.policy_opt_class(
            self.policy.parameters()
        )
        if self.checkpointer is not None:
            for name, optimizer in self.reference_optimizers.items():
                self.checkpointer.add_recoverable(
                    f"reference_{name}_optimizer", optimizer
                )
            self.checkpointer.add_recoverable(
                "policy_optimizer", self.policy_optimizer
            )

    # -- the step --------------------------------------------------------------
    def supervised_loss(self, enhanced, batch):
        """The distance D to the clean signal (the validation loss).

        Arguments
        ---------
        enhanced : torch.Tensor
            Enhanced waveforms.
        batch : PaddedBatch
            The batch.

        Returns
        -------
        torch.Tensor
            The batch mean of D.
        """
        clean, lengths = batch.clean_sig
        return self.hparams.distance(enhanced, clean, length=lengths).mean()

    def compute_objectives(self, predictions, batch, stage):
        """Eq. 7 in training: the two weighted terms, each logged.

        Arguments
        ---------
        predictions : torch.Tensor or DistillStep
            Output of :meth:`compute_forward`.
        batch : PaddedBatch
            The batch.
        stage : speechbrain.Stage
            The stage.

        Returns
        -------
        torch.Tensor
            The scalar objective.
        """
        if stage != sb.Stage.TRAIN or not isinstance(predictions, DistillStep):
            return super().compute_objectives(predictions, batch, stage)
        loss = 0.0
        for name, value in self.modules[DISTILL_TERMS](predictions).items():
            self.log_term(name, value)
            loss = loss + value
        return loss

    def sample_weights(self, step):
        """gamma_hard and gamma_soft of Eq. 7 from the policy's alpha.

        Arguments
        ---------
        step : DistillStep
            The step (student and teacher outputs set).

        Returns
        -------
        dict
            ``{hard_term: gamma_hard, soft_term: gamma_soft}``, ``[B]``.
        """
        if self.policy is None:
            alpha = torch.full(
                (step.batch_size,), float(self.fixed_alpha), device=self.device
            )
        else:
            self.policy.train()
            state = policy_state(step.clean, step.student_out, step.teacher_out)
            alpha = self.policy_forward(state.to(self.device))
        self.step_alpha = alpha
        self.step_state = step
        self.alphas.append(alpha.detach().cpu())
        self.log_term("alpha", alpha.detach().mean())
        hard, soft = target_weights(alpha.detach(), self.method)
        return {self.term_names[0]: hard, self.term_names[1]: soft}

    def fit_batch(self, batch):
        """Student step (Eq. 7), reference steps (Eqs. 5-6), re-pass and
        policy step (Eqs. 8-11).

        With gradient accumulation, an iteration is one optimizer step:
        the references are copied from the student at its first batch,
        accumulate their gradients as the student does, and step with it;
        the re-pass and the policy step then cover every batch of the
        iteration. A batch skipped as non-finite drops the iteration, as
        it does for the student.

        Arguments
        ---------
        batch : PaddedBatch
            The batch.

        Returns
        -------
        torch.Tensor
            The student's detached loss.
        """
        if self.policy is None:
            return super().fit_batch(batch)
        should_step = self.step % self.grad_accumulation_factor == 0
        window = self.__dict__.setdefault("iteration_batches", [])
        if not window:
            self.copy_student_to_references()
        loss = super().fit_batch(batch)
        if not torch.isfinite(loss):
            self.drop_iteration()
            return loss
        step = self.step_state
        record = {
            "noisy": step.student_input.detach(),
            "lengths": step.lengths,
            "clean": step.clean,
            "alpha": self.step_alpha,
            "original": self.hparams.distance(
                step.student_out.detach(), step.clean, length=step.lengths
            ),
        }
        self.accumulate_references(record, step.teacher_out.detach())
        window.append(record)
        if should_step:
            self.step_references()
            self.update_policy(window)
            self.iteration_batches = []
        return loss

    def drop_iteration(self):
        """Forgets the iteration in progress (a non-finite batch)."""
        self.iteration_batches = []
        for name in REFERENCES:
            self.reference_optimizers[name].zero_grad(set_to_none=True)
        self.policy_optimizer.zero_grad(set_to_none=True)

    def update_policy(self, window):
        """Re-pass, reward, progress and one policy step over the
        iteration's batches (Eqs. 8-11).

        Arguments
        ---------
        window : list of dict
            The iteration's batches (mixture, lengths, clean, alpha, the
            student's distance before its update).
        """
        epochs = self.hparams.epoch_counter.limit
        losses, logs = [], {}
        for record in window:
            distances = self.repass(
                record["noisy"], record["lengths"], record["clean"]
            )
            rewards = reward(
                distances["soft"], distances["hard"], distances["student"]
            )
            delta = progress(rewards, record["original"], epochs)
            losses.append(policy_loss(record["alpha"], delta))
            logs.setdefault("reward", []).append(rewards)
            for name, value in distances.items():
                key = (
                    "distance_student"
                    if name == "student"
                    else f"distance_{name}_reference"
                )
                logs.setdefault(key, []).append(value)
        loss_policy = torch.cat(losses).mean()
        self.policy_optimizer.zero_grad(set_to_none=True)
        loss_policy.backward()
        self.policy_optimizer.step()
        self.policy_optimizer.zero_grad(set_to_none=True)
        self.log_term("policy", loss_policy)
        for key, values in logs.items():
            self.log_term(key, torch.cat(values).mean())

    def policy_forward(self, state):
        """The policy's alpha; under DDP through a wrapper that averages
        its gradients over the processes (every process then takes the
        same policy step; the references stay local: each is a copy of
        the synchronised student).

        Arguments
        ---------
        state : torch.Tensor
            ``[batch, 2, time]``.

        Returns
        -------
        torch.Tensor
            ``alpha`` ``[batch]``.
        """
        if not self.distributed_launch:
            return self.policy(state)
        wrapped = self.__dict__.get("_policy_ddp")
        if wrapped is None:
            wrapped = torch.nn.parallel.DistributedDataParallel(self.policy)
            self._policy_ddp = wrapped
        return wrapped(state)

    def copy_student_to_references(self):
        """Starts both references from the student's current weights."""
        student = unwrap_model(self.modules.model)[-1]
        state = student.state_dict()
        for name in REFERENCES:
            self.references[name].load_state_dict(state)

    def reference_scalers(self):
        """One gradient scaler per reference (enabled as the student's:
        ``--precision=fp16``)."""
        scalers = self.__dict__.get("_reference_scalers")
        if scalers is None:
            enabled = self.scaler.is_enabled()
            scalers = {
                name: torch.amp.GradScaler(
                    torch.device(self.device).type, enabled=enabled
                )
                for name in REFERENCES
            }
            self._reference_scalers = scalers
        return scalers

    def accumulate_references(self, record, teacher_out):
        """Backward of R1 on the teacher's output and R2 on the clean
        signal (Eqs. 5 and 6) for one batch, as the student accumulates.

        Arguments
        ---------
        record : dict
            The batch (``noisy``, ``lengths``, ``clean``).
        teacher_out : torch.Tensor
            The teacher's outputs (detached).
        """
        targets = {"soft": teacher_out, "hard": record["clean"]}
        scalers = self.reference_scalers()
        for name in REFERENCES:
            model = self.references[name].train()
            with self.training_ctx:
                out = model(record["noisy"])
                loss = self.hparams.distance(
                    out, targets[name], length=record["lengths"]
                )
            loss = loss.float().mean() / self.grad_accumulation_factor
            scalers[name].scale(loss).backward()

    def step_references(self):
        """Steps both references (clipped as the student is)."""
        for name, scaler in self.reference_scalers().items():
            optimizer = self.reference_optimizers[name]
            if self.max_grad_norm > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(
                    self.references[name].parameters(), self.max_grad_norm
                )
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)

    def update_references(self, noisy, lengths, clean, teacher_out):
        """One full step of both references on one batch.

        Arguments
        ---------
        noisy : torch.Tensor
            The mixtures.
        lengths : torch.Tensor
            Relative lengths.
        clean : torch.Tensor
            Clean targets.
        teacher_out : torch.Tensor
            The teacher's outputs (detached).
        """
        record = {"noisy": noisy, "lengths": lengths, "clean": clean}
        self.accumulate_references(record, teacher_out)
        self.step_references()

    def repass(self, noisy, lengths, clean):
        """Distances to the clean signal after the updates (Eq. 8).

        Arguments
        ---------
        noisy : torch.Tensor
            The mixtures.
        lengths : torch.Tensor
            Relative lengths.
        clean : torch.Tensor
            Clean targets.

        Returns
        -------
        dict
            ``student``, ``soft``, ``hard``: ``[B]`` distances.
        """
        models = {
            "student": unwrap_model(self.modules.model)[-1],
            **{name: self.references[name] for name in REFERENCES},
        }
        distances = {}
        with torch.no_grad():
            for name, model in models.items():
                was_training = model.training
                model.eval()
                with self.training_ctx:
                    out = model(noisy)
                distances[name] = self.hparams.distance(
                    out.float(), clean, length=lengths
                )
                model.train(was_training)
        return distances

    # -- logs ------------------------------------------------------------------
    def on_stage_start(self, stage, epoch=None):
        """Starts the epoch's record of alpha.

        Arguments
        ---------
        stage : speechbrain.Stage
            The stage.
        epoch : int, optional
            The epoch.
        """
        if stage == sb.Stage.TRAIN:
            self.alphas = []
            if self.policy is not None and epoch is not None:
                lr = self.policy_lr(epoch)
                for group in self.policy_optimizer.param_groups:
                    group["lr"] = lr
        super().on_stage_start(stage, epoch)

    def policy_lr(self, epoch):
        """The policy's learning rate in ``epoch``: ``policy_lr`` decaying
        geometrically to ``policy_final_lr`` in the last epoch (the
        paper's best: 1e-6 to 1e-8, Table 12); constant without a final
        rate.

        Arguments
        ---------
        epoch : int
            The epoch (1-based).

        Returns
        -------
        float
            The learning rate.
        """
        start = float(self.hparam("policy_lr", 1e-6))
        final = self.hparam("policy_final_lr")
        epochs = int(self.hparams.epoch_counter.limit)
        if final is None or epochs <= 1:
            return start
        fraction = (min(int(epoch), epochs) - 1) / (epochs - 1)
        return start * (float(final) / start) ** fraction

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Adds alpha's mean and spread over the epoch to the log.

        Arguments
        ---------
        stage : speechbrain.Stage
            The stage.
        stage_loss : float
            The stage's average loss.
        epoch : int, optional
            The epoch.
        """
        super().on_stage_end(stage, stage_loss, epoch)
        if stage == sb.Stage.TRAIN and self.alphas:
            alphas = torch.cat(self.alphas)
            self.train_stats["alpha_mean"] = float(alphas.mean())
            self.train_stats["alpha_std"] = float(alphas.std(unbiased=False))
            self.train_stats["alpha_min"] = float(alphas.min())
            self.train_stats["alpha_max"] = float(alphas.max())
