"""Training that never applies a non-finite update nor saves NaN weights.

SpeechBrain 1.1.2 counts a non-finite loss but still applies the step; one
NaN sample then turns every weight into NaN. :class:`NonFiniteGuard` skips
such a batch (logged with its utterance ids), stops a run whose every
batch of an epoch was skipped, and refuses to checkpoint non-finite
weights.
"""

import logging

import torch

from speechbrain_kd.brains.checkpoints import reported_save_failure

logger = logging.getLogger(__name__)


class NonFiniteError(RuntimeError):
    """Training produced nothing finite (every batch skipped, or weights
    that are not finite).

    Example
    -------
    >>> isinstance(NonFiniteError("every batch skipped"), RuntimeError)
    True
    """


def nonfinite_parameters(modules):
    """Names of the parameters and buffers of ``modules`` holding a NaN or
    an infinity.

    Arguments
    ---------
    modules : torch.nn.Module
        The modules to check.

    Returns
    -------
    list of str
        The names (empty when every value is finite).

    Example
    -------
    >>> layer = torch.nn.Linear(2, 1)
    >>> nonfinite_parameters(layer)
    []
    >>> with torch.no_grad():
    ...     layer.bias.fill_(float("nan"))
    Parameter containing:
    tensor([nan], requires_grad=True)
    >>> nonfinite_parameters(layer)
    ['bias']
    """
    return [
        name
        for name, value in modules.state_dict().items()
        if torch.is_tensor(value)
        and value.is_floating_point()
        and not torch.isfinite(value).all()
    ]


class NonFiniteGuard:
    """Mixin for a ``speechbrain.Brain`` with the default ``fit_batch``
    loop: a batch whose loss or gradients are not finite is skipped (no
    update, the buffers its forward pass changed put back; an accumulation
    window in progress is dropped), logged with its ids; an epoch in which every batch was skipped raises
    :class:`NonFiniteError`; :meth:`check_finite_weights` guards saves.
    Under DDP the processes agree (one skips, all skip).

    Example
    -------
    >>> import speechbrain as sb
    >>> class Brain(NonFiniteGuard, sb.Brain):
    ...     pass
    >>> layer = torch.nn.Linear(1, 1)
    >>> brain = Brain(modules={"layer": layer}, run_opts={"device": "cpu"})
    >>> brain.check_finite_weights("saving")
    >>> with torch.no_grad():
    ...     layer.bias.fill_(float("inf"))
    Parameter containing:
    tensor([inf], requires_grad=True)
    >>> brain.check_finite_weights("saving")
    Traceback (most recent call last):
    ...
    speechbrain_kd.brains.nonfinite.NonFiniteError: not saving: 1 parameter tensors are not finite (layer.bias); the previous checkpoint is kept
    """

    def fit_batch(self, batch):
        """Fits one batch unless its loss or gradients are non-finite.

        Arguments
        ---------
        batch : PaddedBatch
            The batch.

        Returns
        -------
        torch.Tensor
            The detached loss (non-finite for a skipped batch).
        """
        import speechbrain as sb

        should_step = (self.step % self.grad_accumulation_factor) == 0
        self.on_fit_batch_start(batch, should_step)
        self.train_batches = getattr(self, "train_batches", 0) + 1
        # The forward pass itself updates buffers (BatchNorm statistics):
        # a skipped batch puts them back.
        buffers = [
            (buffer, buffer.detach().clone())
            for buffer in self.modules.buffers()
        ]
        with self.no_sync(not should_step):
            with self.training_ctx:
                outputs = self.compute_forward(batch, sb.Stage.TRAIN)
                loss = self.compute_objectives(outputs, batch, sb.Stage.TRAIN)
            if not _all_agree(torch.isfinite(loss.detach())):
                return self._skip_batch(batch, "loss", loss, buffers)
            self.scaler.scale(loss / self.grad_accumulation_factor).backward()
        if should_step:
            if not self.scaler.is_enabled() and not _all_agree(
                self._gradients_finite()
            ):
                return self._skip_batch(batch, "gradients", loss, buffers)
            self.optimizers_step()
        self.on_fit_batch_end(batch, outputs, loss, should_step)
        return loss.detach().cpu()

    def _gradients_finite(self):
        for param in self.modules.parameters():
            if param.grad is not None and not torch.isfinite(param.grad).all():
                return torch.tensor(False)
        return torch.tensor(True)

    def _skip_batch(self, batch, what, loss, buffers):
        self.skipped_batches = getattr(self, "skipped_batches", 0) + 1
        for param in self.modules.parameters():
            param.grad = None
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
        ids = list(getattr(batch, "id", []))
        logger.warning(
            "skipped a training batch with non-finite %s (%s); no update "
            "applied. Utterances: %s",
            what,
            float(loss.detach()),
            ", ".join(map(str, ids)) or "(no ids)",
        )
        return loss.detach().cpu()

    def check_nonfinite_epoch(self, epoch):
        """Raises when every training batch of the epoch was skipped, then
        resets the counts.

        Arguments
        ---------
        epoch : int or None
            The epoch that ended (for the message).
        """
        skipped = getattr(self, "skipped_batches", 0)
        total = getattr(self, "train_batches", 0)
        self.skipped_batches = self.train_batches = 0
        if skipped:
            logger.warning(
                "epoch %s: %d of %d training batches skipped (non-finite)",
                epoch,
                skipped,
                total,
            )
        if total and skipped == total:
            raise NonFiniteError(
                f"every training batch of epoch {epoch} ({total}) had a "
                "non-finite loss or gradients, so nothing was learnt: check "
                "the data (speechbrain-kd prepare refuses non-finite "
                "files), the learning rate and the loss"
            )

    def check_finite_weights(self, when):
        """Raises instead of checkpointing non-finite weights.

        Arguments
        ---------
        when : str
            What was about to happen (for the message).
        """
        bad = nonfinite_parameters(self.modules)
        if bad:
            raise NonFiniteError(
                f"not {when}: {len(bad)} parameter tensors are not finite "
                f"({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''}); "
                "the previous checkpoint is kept"
            )

    def _save_intra_epoch_ckpt(self):
        self.check_finite_weights("saving an intra-epoch checkpoint")
        with reported_save_failure(self.checkpointer, "within the epoch"):
            super()._save_intra_epoch_ckpt()


def _all_agree(flag):
    """``flag`` (a bool tensor) and-ed over the DDP processes."""
    import torch.distributed as dist

    flag = flag.detach().to(torch.float32).reshape(())
    if dist.is_available() and dist.is_initialized():
        flag = flag.to(
            "cuda" if dist.get_backend() == "nccl" else "cpu"
        ).clone()
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item() > 0.5)
