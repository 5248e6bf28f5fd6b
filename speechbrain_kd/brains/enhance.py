"""``EnhanceBrain``: supervised training of a waveform enhancement model.

The Brain trains ``modules.model`` (any ``nn.Module`` mapping a noisy
``[batch, time]`` waveform to an enhanced one) with ``hparams.loss``, an
enhancement loss called as ``loss(enhanced, clean, noisy, length)`` (e.g.
:class:`speechbrain_kd.losses.WeightedCleanNoiseLoss`). It knows no
dataset: batches carry ``id``, ``noisy_sig`` and ``clean_sig`` as made by
:func:`speechbrain_kd.data.pipelines.dataio_prep`.

What it adds to ``speechbrain.Brain`` (whose default ``fit_batch`` it keeps,
so ``--precision``, gradient accumulation, clipping and step counting work):

* an optional per-batch learning-rate schedule (``hparams.lr_scheduler``, a
  factory called as ``factory(optimizer, total_steps=...)``, e.g.
  ``!name:torch.optim.lr_scheduler.OneCycleLR``), checkpointed with the
  model;
* validation metrics each epoch (``hparams.valid_metrics``, default PESQ
  and STOI, in ``hparams.metric_jobs`` safe worker processes) and a
  checkpoint kept for the best validation ``hparams.ckpt_max_key``
  (default ``pesq``) plus the most recent one;
* a test stage that writes the enhanced wavs, a per-utterance CSV and a
  summary JSON with every metric of ``hparams.test_metrics``;
* BatchNorm statistics re-estimated before each validation
  (``hparams.bn_recalibration_batches``, see :meth:`recalibrate_batchnorm`);
* the output health of every validation and test file (RMS ratio, SI-SDR)
  in the logs, with a warning when the output has collapsed.

Under DDP, metrics are computed and files written on the main process only;
the summary is broadcast so that every process saves the same checkpoint
meta.
"""

import csv
import json
import logging
import math
import pathlib

import soundfile as sf
import torch

import speechbrain as sb
from speechbrain.utils.distributed import (
    ddp_broadcast,
    if_main_process,
    run_on_main,
)
from speechbrain_kd.brains.batchnorm import recalibrate_batchnorm
from speechbrain_kd.brains.checkpoints import (
    recover_checkpoint,
    reported_save_failure,
    set_aside_incomplete_checkpoints,
)
from speechbrain_kd.brains.nonfinite import NonFiniteGuard
from speechbrain_kd.metrics import ALL_METRICS, EnhancementMetricStats
from speechbrain_kd.metrics.evaluation import (
    PERCEPTUAL_RESAMPLER,
    perceptual_rate,
)
from speechbrain_kd.metrics.health import HEALTH_KEYS, collapsed

logger = logging.getLogger(__name__)

DEFAULT_VALID_METRICS = ("pesq", "stoi")


class EnhanceBrain(NonFiniteGuard, sb.Brain):
    """Trains and evaluates a waveform-to-waveform enhancement model.

    Hyperparameters read (besides SpeechBrain's run options):
    ``loss`` (required), ``student_input`` (the batch key the model reads,
    ``noisy_sig``), ``sample_rate`` (16000), ``valid_metrics``,
    ``test_metrics``, ``metric_jobs`` (1), ``ckpt_max_key`` (``pesq``),
    ``lr_scheduler`` (optional), ``epoch_counter`` (for the schedule
    length), ``train_logger`` (optional), ``output_folder`` and
    ``save_enhanced`` (True) for the test stage.

    Arguments
    ---------
    See ``speechbrain.Brain``; ``modules`` must hold ``model``.

    Example
    -------
    >>> import torch
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> from speechbrain_kd.losses import WeightedCleanNoiseLoss
    >>> brain = EnhanceBrain(
    ...     modules={"model": torch.nn.Identity()},
    ...     hparams={"loss": WeightedCleanNoiseLoss()},
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
    """

    def __init__(
        self,
        modules=None,
        opt_class=None,
        hparams=None,
        run_opts=None,
        checkpointer=None,
    ):
        super().__init__(modules, opt_class, hparams, run_opts, checkpointer)
        if getattr(self.checkpointer, "tempdir", None) is not None:
            # --debug gives every process its own temporary checkpoint
            # folder; the others then never see the checkpoints the main
            # process saves and deletes, and the next deletion deadlocks
            # (SpeechBrain 1.1.2). Share the main process's folder.
            folder = ddp_broadcast(str(self.checkpointer.checkpoints_dir))
            self.checkpointer.checkpoints_dir = pathlib.Path(folder)

    # -- forward and loss ------------------------------------------------
    def compute_forward(self, batch, stage):
        """Enhances the noisy batch.

        Arguments
        ---------
        batch : speechbrain.dataio.batch.PaddedBatch
            Holds ``noisy_sig`` (waveforms and relative lengths).
        stage : speechbrain.Stage
            The current stage.

        Returns
        -------
        torch.Tensor
            Enhanced waveforms ``[batch, time]``.
        """
        batch = batch.to(self.device)
        noisy, _ = getattr(batch, self.student_input_key)
        return self.modules.model(noisy)

    def compute_objectives(self, predictions, batch, stage):
        """Computes the supervised loss; scores and saves outside training.

        Arguments
        ---------
        predictions : torch.Tensor
            Output of :meth:`compute_forward`.
        batch : speechbrain.dataio.batch.PaddedBatch
            The batch (``clean_sig``, ``noisy_sig``, ``id``).
        stage : speechbrain.Stage
            The current stage.

        Returns
        -------
        torch.Tensor
            The scalar loss.
        """
        enhanced = self.enhanced_from(predictions)
        loss = self.supervised_loss(enhanced, batch)
        if stage != sb.Stage.TRAIN:
            self.score_and_save(enhanced, batch, stage)
        return loss

    def enhanced_from(self, predictions):
        """The enhanced waveforms inside ``predictions``.

        Subclasses whose ``compute_forward`` returns more (e.g. a teacher's
        output) override this.

        Arguments
        ---------
        predictions : object
            Output of :meth:`compute_forward`.

        Returns
        -------
        torch.Tensor
            Enhanced waveforms ``[batch, time]``.
        """
        return predictions

    def supervised_loss(self, enhanced, batch):
        """``hparams.loss`` against the clean target, padding masked.

        Arguments
        ---------
        enhanced : torch.Tensor
            Enhanced waveforms ``[batch, time]``.
        batch : speechbrain.dataio.batch.PaddedBatch
            The batch.

        Returns
        -------
        torch.Tensor
            The scalar loss.
        """
        clean, lengths = batch.clean_sig
        noisy, _ = getattr(batch, self.student_input_key)
        loss = self.hparams.loss(enhanced, clean, noisy, lengths)
        self.log_term("supervised", loss)
        return loss

    # -- per-term loss logging -------------------------------------------
    def log_term(self, name, value):
        """Accumulates a loss term for the stage's log line.

        Arguments
        ---------
        name : str
            Term name; logged as ``loss_<name>``.
        value : torch.Tensor
            Scalar value for this batch.
        """
        sums = self.__dict__.setdefault("_term_sums", {})
        total, count = sums.get(name, (0.0, 0))
        sums[name] = (total + float(value.detach()), count + 1)

    def term_averages(self):
        """Stage averages of the logged loss terms, then resets them.

        Returns
        -------
        dict
            ``{"loss_<name>": average}``.
        """
        sums = self.__dict__.pop("_term_sums", {})
        return {f"loss_{k}": total / n for k, (total, n) in sums.items()}

    # -- scoring and test outputs ------------------------------------------
    def score_and_save(self, enhanced, batch, stage):
        """Queues the batch for metrics and writes test wavs (main only).

        Arguments
        ---------
        enhanced : torch.Tensor
            Enhanced waveforms ``[batch, time]``.
        batch : speechbrain.dataio.batch.PaddedBatch
            The batch.
        stage : speechbrain.Stage
            VALID or TEST.
        """
        if not if_main_process():
            return
        clean, lengths = batch.clean_sig
        enhanced = enhanced.detach().float()
        self.metrics.append(
            batch.id, predict=enhanced, target=clean, lengths=lengths
        )
        if stage == sb.Stage.TEST and self.hparam("save_enhanced", True):
            self.write_enhanced(batch.id, enhanced, lengths)

    def write_enhanced(self, ids, enhanced, lengths, folder=None):
        """Writes enhanced waveforms as 16-bit wavs, trimmed to length.

        Arguments
        ---------
        ids : list of str
            Utterance ids (file names).
        enhanced : torch.Tensor
            Enhanced waveforms ``[batch, time]``.
        lengths : torch.Tensor
            Relative lengths.
        folder : pathlib.Path, optional
            Where to write (default: ``output_folder/enhanced``).
        """
        folder = self.output_path("enhanced") if folder is None else folder
        folder.mkdir(parents=True, exist_ok=True)
        samples = (lengths * enhanced.shape[1]).round().long()
        for uid, wav, n in zip(
            ids, enhanced.cpu(), samples.tolist(), strict=False
        ):
            audio = wav[:n].clamp(-1.0, 1.0).numpy()
            sf.write(folder / f"{uid}.wav", audio, self.sample_rate, "PCM_16")

    def output_path(self, name):
        """A path under ``hparams.output_folder`` (or the working dir).

        Arguments
        ---------
        name : str
            File or folder name.

        Returns
        -------
        pathlib.Path
            The path.
        """
        return pathlib.Path(self.hparam("output_folder", ".")) / name

    @property
    def student_input_key(self):
        """The batch key the model reads (``hparams.student_input``,
        default ``noisy_sig``)."""
        return self.hparam("student_input", "noisy_sig")

    def hparam(self, name, default=None):
        """An optional hyperparameter with a default.

        Arguments
        ---------
        name : str
            Hyperparameter name.
        default : object
            Value when absent.

        Returns
        -------
        object
            The value.
        """
        return getattr(self.hparams, name, default)

    @property
    def sample_rate(self):
        """The sample rate of the data and model (``hparams.sample_rate``)."""
        return self.hparam("sample_rate", 16000)

    # -- stage hooks ---------------------------------------------------------
    def on_stage_start(self, stage, epoch=None):
        """Creates the metric accumulator for VALID and TEST.

        Arguments
        ---------
        stage : speechbrain.Stage
            The stage starting.
        epoch : int, optional
            The epoch number.
        """
        self.term_averages()  # drop anything left from an aborted stage
        if stage == sb.Stage.TRAIN:
            return
        if stage == sb.Stage.VALID:
            self.recalibrate_batchnorm()
        names = (
            self.hparam("valid_metrics", DEFAULT_VALID_METRICS)
            if stage == sb.Stage.VALID
            else self.hparam("test_metrics", ALL_METRICS)
        )
        self.metrics = EnhancementMetricStats(
            list(names),
            sample_rate=self.sample_rate,
            n_jobs=self.hparam("metric_jobs", 1),
        )

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs the stage, checkpoints after validation, reports the test.

        Arguments
        ---------
        stage : speechbrain.Stage
            The stage ending.
        stage_loss : float
            Average loss of the stage.
        epoch : int, optional
            The epoch number.
        """
        stats = {"loss": stage_loss, **self.term_averages()}
        if stage == sb.Stage.TRAIN:
            self.check_nonfinite_epoch(epoch)
            self.train_stats = stats
            return
        label = str(stage).split(".")[-1].lower()
        if epoch is not None:
            label = f"{label}, epoch {epoch}"
        summary = self.summarize_metrics(label=label)
        stats.update(summary)
        if stage == sb.Stage.VALID:
            optimizer = getattr(self, "optimizer", None)
            lr = optimizer.param_groups[0]["lr"] if optimizer else 0.0
            self.log_stats(
                {"epoch": epoch, "lr": lr},
                train_stats=getattr(self, "train_stats", None),
                valid_stats=stats,
            )
            key = self.hparam("ckpt_max_key", "pesq")
            meta = {key: _finite(stats.get(key)), "epoch": epoch}
            if meta[key] == -math.inf and if_main_process():
                logger.warning(undefined_selection(key, self.metrics, epoch))
            if self.checkpointer is not None:
                self.check_finite_weights(
                    f"saving the checkpoint of epoch {epoch}"
                )
                with reported_save_failure(
                    self.checkpointer, f"of epoch {epoch}"
                ):
                    self.checkpointer.save_and_keep_only(
                        meta=meta, max_keys=[key], num_to_keep=1
                    )
        else:
            self.log_stats(
                {"Epoch loaded": self.hparams.epoch_counter.current}
                if hasattr(self.hparams, "epoch_counter")
                else {},
                test_stats=stats,
            )
            if if_main_process():
                self.write_test_report(stats, suffix=self.test_report_suffix)

    def validates(self, epoch):
        """Whether ``epoch`` is validated (and checkpointed at its end).

        Every ``hparams.valid_interval`` epochs (default 1) and always the
        last epoch of ``hparams.epoch_counter``.

        Arguments
        ---------
        epoch : int
            The epoch number.

        Returns
        -------
        bool
            True to validate.

        Example
        -------
        >>> from speechbrain.utils.epoch_loop import EpochCounter
        >>> brain = EnhanceBrain(
        ...     modules={"model": torch.nn.Identity()},
        ...     hparams={"valid_interval": 3, "epoch_counter": EpochCounter(7)},
        ... )
        >>> [epoch for epoch in range(1, 8) if brain.validates(epoch)]
        [3, 6, 7]
        """
        interval = self.hparam("valid_interval", 1)
        if isinstance(interval, bool) or not isinstance(interval, int):
            raise ValueError(
                f"valid_interval must be a whole number of epochs, got "
                f"{interval!r}"
            )
        if interval < 1:
            raise ValueError(f"valid_interval must be >= 1, got {interval}")
        counter = self.hparam("epoch_counter")
        last = getattr(counter, "limit", None)
        return epoch is None or epoch % interval == 0 or epoch == last

    def _fit_valid(self, valid_set, epoch, enable):
        """Validates, or between validations logs the training stats.

        An epoch that is not validated (see :meth:`validates`) saves no
        end-of-epoch checkpoint: a run killed after it resumes from the
        last validated epoch (or an interval checkpoint) and redoes the
        epochs since, which the epoch-seeded sampler makes identical.
        Validation does not change the training (BatchNorm statistics are
        re-estimated from the weights before each validation), so the
        interval changes only how often the curves are sampled.

        Arguments
        ---------
        valid_set : DataLoader or None
            The validation data.
        epoch : int
            The epoch number.
        enable : bool
            Whether the progress bar is shown.
        """
        if valid_set is None or self.validates(epoch):
            super()._fit_valid(valid_set, epoch, enable)
            return
        optimizer = getattr(self, "optimizer", None)
        lr = optimizer.param_groups[0]["lr"] if optimizer else 0.0
        self.log_stats(
            {"epoch": epoch, "lr": lr},
            train_stats=getattr(self, "train_stats", None),
        )

    #: Added to the test report's file names (a recipe testing several
    #: sets, one per SNR, sets it before each ``evaluate``).
    test_report_suffix = ""

    def summarize_metrics(self, metrics=None, label=None):
        """Per-metric means on the main process, broadcast to all.

        Logs a warning when the output has collapsed (see
        :class:`~speechbrain_kd.metrics.health.OutputHealth`).

        Arguments
        ---------
        metrics : EnhancementMetricStats, optional
            The accumulator (default: ``self.metrics``).
        label : str, optional
            What was evaluated, for the warning (e.g. ``valid, epoch 3``).

        Returns
        -------
        dict
            Metric means (``pesq``, ``stoi``, ...), ``n_failed``,
            ``n_items`` and the output health (``rms_ratio``,
            ``si_sdr_median``, ``collapsed_files``).
        """
        metrics = self.metrics if metrics is None else metrics
        summary = None
        if if_main_process():
            full = metrics.summarize()
            summary = {
                key: (float(value) if isinstance(value, float) else value)
                for key, value in full.items()
                if key in metrics.metrics
                or key.startswith("n_")
                or key in HEALTH_KEYS
            }
            if collapsed(full):
                logger.warning(
                    "%s: the output collapsed on %.0f%% of %d files "
                    "(median output/clean RMS ratio %.3f, median SI-SDR "
                    "%.1f dB): the model emits near-silence or a signal "
                    "unrelated to the speech. See 'Collapsed output' in "
                    "recipes/Valentini/README.md.",
                    label or "evaluation",
                    100 * full["collapsed_files"],
                    full["n_items"],
                    full["rms_ratio"],
                    full["si_sdr_median"],
                )
        return ddp_broadcast(summary, src=0)

    def write_test_report(self, stats, metrics=None, suffix=""):
        """Writes ``test_per_utterance.csv`` and ``test_summary.json``.

        Arguments
        ---------
        stats : dict
            Stage statistics (loss and metric means).
        metrics : EnhancementMetricStats, optional
            The per-utterance scores (default: ``self.metrics``).
        suffix : str
            Added to the file names (``test_summary<suffix>.json``).
        """
        metrics = self.metrics if metrics is None else metrics
        folder = self.output_path("")
        folder.mkdir(parents=True, exist_ok=True)
        names = list(metrics.metrics)
        csv_path = folder / f"test_per_utterance{suffix}.csv"
        with open(csv_path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", *names])
            for uid, row in zip(metrics.ids, metrics.rows, strict=False):
                writer.writerow([uid, *(row.get(n) for n in names)])
        summary = {k: (None if _is_nan(v) else v) for k, v in stats.items()}
        rate = self.hparam("sample_rate", 16000)
        if perceptual_rate(rate) != rate:
            summary["sample_rate"] = rate
            summary["perceptual_metrics"] = (
                f"PESQ, STOI, ESTOI, CSIG/CBAK/COVL after "
                f"{PERCEPTUAL_RESAMPLER}; SI-SDR and SSNR at {rate} Hz"
            )
        with open(folder / f"test_summary{suffix}.json", "w") as f:
            json.dump(summary, f, indent=2)
        logger.info("Test report written to %s", folder)

    def log_stats(self, stats_meta, **stats):
        """Writes to ``hparams.train_logger`` when there is one.

        Arguments
        ---------
        stats_meta : dict
            Epoch, learning rate, ...
        **stats : dict
            ``train_stats``, ``valid_stats`` or ``test_stats``.
        """
        train_logger = self.hparam("train_logger")
        if train_logger is not None:
            train_logger.log_stats(stats_meta=stats_meta, **stats)
        else:
            logger.info("%s %s", stats_meta, stats)

    def on_fit_start(self):
        """SpeechBrain's start, setting incomplete checkpoints aside.

        As ``speechbrain.Brain.on_fit_start`` (compile, wrap for DDP,
        create the optimizers, recover), except that checkpoints a killed
        run left half-written are set aside once every recoverable
        (optimizers and schedule included) is registered, so recovery
        falls back to the newest complete checkpoint instead of crashing.
        """
        self._compile()
        self._wrap_distributed()
        self.init_optimizers()
        if self.checkpointer is not None:
            run_on_main(
                set_aside_incomplete_checkpoints,
                kwargs={"checkpointer": self.checkpointer},
            )
            self.recovered_checkpoint = recover_checkpoint(self.checkpointer)

    # -- distributed ---------------------------------------------------------
    def _wrap_distributed(self):
        """DDP wrapping that also works on CPU (gloo).

        SpeechBrain 1.1.2 always converts BatchNorm layers to
        ``SyncBatchNorm``, which only runs on GPUs; on CPU the modules are
        wrapped in plain DDP instead (each process then normalises with
        its own batch statistics). On GPUs SpeechBrain's wrapping is kept.
        """
        if not self.distributed_launch or torch.device(self.device).type != (
            "cpu"
        ):
            return super()._wrap_distributed()
        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                self.modules[name] = torch.nn.parallel.DistributedDataParallel(
                    module,
                    find_unused_parameters=self.find_unused_parameters,
                )

    # -- optimisation ------------------------------------------------------
    def make_dataloader(self, dataset, stage, ckpt_prefix="dataloader-", **kw):
        """SpeechBrain's loader; records the training batches per epoch.

        Arguments
        ---------
        dataset : Dataset
            The data.
        stage : speechbrain.Stage
            The stage.
        ckpt_prefix : str
            Checkpoint prefix of the loader (see ``speechbrain.Brain``).
        **kw : dict
            DataLoader options.

        Returns
        -------
        DataLoader
            The loader.
        """
        loader = super().make_dataloader(
            dataset, stage, ckpt_prefix=ckpt_prefix, **kw
        )
        if stage == sb.Stage.TRAIN:
            self.train_batches_per_epoch = len(loader)
            self.recalibration_data = (dataset, kw.get("batch_size", 1))
        return loader

    def recalibrate_batchnorm(self):
        """Re-estimates the model's BatchNorm statistics before validation.

        Runs the first ``hparams.bn_recalibration_batches`` (default 32)
        training batches (of the training batch size) through the model in
        training mode without gradients, with cumulative averaging (see
        :func:`speechbrain_kd.brains.batchnorm.recalibrate_batchnorm`).
        Validation, the saved checkpoint and the test then use statistics
        of the current weights instead of a running average that lags far
        behind them in short runs (momentum 0.01). ``0`` turns it off.
        The training itself is unchanged.
        """
        batches = self.hparam("bn_recalibration_batches", 32)
        if isinstance(batches, bool) or not isinstance(batches, int):
            raise ValueError(
                "bn_recalibration_batches must be a whole number of batches "
                f"(0: off), got {batches!r}"
            )
        if batches < 0:
            raise ValueError(
                f"bn_recalibration_batches must be >= 0, got {batches}"
            )
        data = getattr(self, "recalibration_data", None)
        if batches == 0 or data is None:
            return
        dataset, batch_size = data
        model = self.modules["model"]

        def forward(batch):
            """Runs the model on the inputs of ``batch``."""
            noisy, _ = getattr(batch.to(self.device), self.student_input_key)
            model(noisy)

        recalibrate_batchnorm(model, dataset, forward, batches, batch_size)

    def init_optimizers(self):
        """Creates the optimizer, then the per-batch LR schedule if any."""
        super().init_optimizers()
        factory = self.hparam("lr_scheduler")
        self.lr_scheduler = None
        if factory is None or self.opt_class is None:
            return
        batches = getattr(self, "train_batches_per_epoch", None)
        if batches is None:
            raise RuntimeError(
                "lr_scheduler needs the number of training batches: pass "
                "a Dataset (not a DataLoader) to fit()"
            )
        # SpeechBrain steps on full accumulations only and drops the rest
        # of an epoch, hence the floor.
        steps = max(1, batches // self.grad_accumulation_factor)
        epochs = self.hparams.epoch_counter.limit
        self.lr_scheduler = factory(self.optimizer, total_steps=steps * epochs)
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("lr_scheduler", self.lr_scheduler)

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        """Steps the per-batch learning-rate schedule after each update.

        Arguments
        ---------
        batch : PaddedBatch
            The batch.
        outputs : object
            Forward outputs.
        loss : torch.Tensor
            The loss.
        should_step : bool
            Whether the optimizer stepped.
        """
        scheduler = getattr(self, "lr_scheduler", None)
        if should_step and scheduler is not None:
            # OneCycleLR raises past its last step (e.g. after a resume
            # with more data); hold the final rate instead.
            total = getattr(scheduler, "total_steps", math.inf)
            if scheduler.last_epoch + 1 < total:
                scheduler.step()


def undefined_selection(key, metrics, epoch, option="ckpt_max_key"):
    """Why a checkpoint is scored -inf: its selection metric is undefined.

    Arguments
    ---------
    key : str
        The selection metric (``ckpt_max_key``).
    metrics : EnhancementMetricStats
        The validation scores.
    epoch : int or None
        The epoch.
    option : str
        The hyperparameter that chooses the metric.

    Returns
    -------
    str
        The warning.

    Example
    -------
    >>> from types import SimpleNamespace
    >>> stats = SimpleNamespace(ids=["a", "b"], durations=[0.1, 0.2])
    >>> print(undefined_selection("pesq", stats, 3))  # doctest: +ELLIPSIS
    epoch 3: pesq is undefined for every one of the 2 validation ...
    """
    shortest = min(getattr(metrics, "durations", None) or [math.nan])
    needs = {
        "pesq": "PESQ needs 1/4 s and some speech",
        "stoi": "STOI needs about 0.4 s of speech",
        "estoi": "ESTOI needs about 0.4 s of speech",
    }.get(key, "see the metric's documentation")
    return (
        f"epoch {epoch}: {key} is undefined for every one of the "
        f"{len(metrics.ids)} validation utterances (the shortest lasts "
        f"{shortest:.2f} s; {needs}), so this checkpoint is scored -inf and "
        f"the best checkpoint cannot be chosen by {key}. Use longer "
        "validation utterances, or select on another metric "
        f"(--{option}=si_sdr, say)"
    )


def _finite(value):
    """A float usable as checkpoint meta (NaN and None become -inf)."""
    if value is None or _is_nan(value):
        return -math.inf
    return float(value)


def _is_nan(value):
    """True for float NaN."""
    return isinstance(value, float) and math.isnan(value)
