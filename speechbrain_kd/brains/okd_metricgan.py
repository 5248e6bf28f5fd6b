"""``OKDMetricGANBrain``: MetricGAN-OKD (and MetricGAN+) training.

One MetricGAN+ generator per target metric (``modules.generator_<metric>``,
each a :class:`~speechbrain_kd.lobes.metricgan.SpectralMaskEnhancer`) and
one discriminator (``modules.discriminator``, a
:class:`~speechbrain_kd.lobes.metricgan.MultiMetricDiscriminator` with one
score per target metric). With one target metric and no peers this is
plain MetricGAN+.

Every epoch, in the order of the official code (``IMPLEMENTATION_NOTES.md``
§3; the order is tested in ``tests/test_okd.py``):

1. ``utterances_per_epoch`` (100) training utterances are drawn (a
   seeded sampler: the same draw after a resume);
2. **generator phase** (SpeechBrain's training loop over the drawn
   utterances, batch 1; from ``generator_start_epoch``, 2: the first
   epoch trains the critic only): all generators are updated with
   :class:`~speechbrain_kd.distill.okd.OKDLoss` (adversarial term against
   their own discriminator head + ``kd_weight`` times the distance to the
   detached peers), the discriminator not updated but in training mode
   (per-utterance BatchNorm statistics, as the official code);
3. **discriminator phase** (at the end of the training stage, so the
   critic learns from the generators just updated): one generator, drawn
   at random (seeded by the epoch), enhances the same utterances; their
   metric scores and those of the noisy inputs (cached) are computed in
   ``metric_jobs`` worker processes that never hang (a failed metric, e.g.
   PESQ of a silent utterance, drops that example); the enhanced
   utterances and scores are written to the historical set on disk (main
   process only). The discriminator is then trained on (a) the current set,
   three updates per utterance (enhanced, noisy, clean -> 1), (b) a
   ``historical_fraction`` (20 %) sample of earlier epochs' enhanced
   utterances plus the current enhanced ones (:func:`discriminator_passes`),
   (c) the current set again.

Both phases go through SpeechBrain's ``fit_batch``: the optimizers live in
``optimizers_dict`` (``generator_<metric>`` and ``discriminator``) and
:meth:`freeze_optimizers` selects the phase's ones, so ``--precision``,
gradient clipping (``max_grad_norm``, per optimizer; 5 in the recipes) and
the step counter keep working.

Validation scores every generator (``valid_metrics``) and logs them as
``<metric>[<generator>]``. As the official code (``best_model{i}``), each
generator has its own best checkpoint, by its own ``selection_metric``:
the checkpoint meta holds ``selection_score[<generator>]`` for every
generator (epochs before ``selection_start_epoch`` do not count), the
checkpointer keeps the best for each, and the test stage loads every
generator from its own best (:meth:`OKDMetricGANBrain.on_evaluate_start`).
The test stage writes, per generator, enhanced wavs under
``enhanced/<generator>/`` and ``test_summary_<generator>.json`` (with the
epoch it was selected from).

Hyperparameters read: ``target_metrics``, ``okd_loss``, ``g_opt_class``,
``d_opt_class``, ``utterances_per_epoch`` (100), ``historical_fraction``
(0.2), ``historical_folder`` (``output_folder/historical``),
``metric_jobs`` (1), ``metric_timeout`` (60 s), ``seed`` (0),
``generator_start_epoch`` (2), ``selection_metric`` (the first target),
``selection_start_epoch`` (1), ``ckpt_max_key`` (``selection_score``),
``critic_eval_in_generator_phase`` (False),
plus :class:`~speechbrain_kd.brains.enhance.EnhanceBrain`'s.
"""

import dataclasses
import logging
import math
import random
import time

import torch
from tqdm import tqdm

import speechbrain as sb
from speechbrain.core import INTRA_EPOCH_CKPT_FLAG
from speechbrain.dataio.sampler import ReproducibleRandomSampler
from speechbrain.utils.distributed import ddp_barrier, if_main_process
from speechbrain_kd.brains.checkpoints import (
    recover_checkpoint,
    reported_save_failure,
)
from speechbrain_kd.brains.enhance import (
    EnhanceBrain,
    _finite,
    undefined_selection,
)
from speechbrain_kd.brains.historical import HistoricalRecord, HistoricalSet
from speechbrain_kd.brains.teacher import module_selection_key
from speechbrain_kd.distill.okd import check_target_metrics, normalize_metric
from speechbrain_kd.distill.taps import unwrap_model
from speechbrain_kd.metrics import EnhancementMetricStats, evaluate_pairs
from speechbrain_kd.pretrained.folder import read_parameters

logger = logging.getLogger(__name__)

GENERATOR = "generator"
DISCRIMINATOR = "discriminator"

# Meta keys of the discriminator phase's intra-epoch checkpoints.
PHASE_EPOCH = "okd_discriminator_epoch"
UPDATES = "okd_discriminator_updates"
STEPS = "okd_discriminator_steps"
PHASE_DONE = "okd_discriminator_done"
TERMS = "okd_discriminator_terms"


def discriminator_passes(current, replay):
    """The three discriminator passes of an epoch, as the official code.

    (a) the current set (enhanced, noisy and clean examples); (b) the
    historical replay plus the current *enhanced* examples only (the
    official historical pass holds (clean, enhanced) pairs); (c) the
    current set again.

    Arguments
    ---------
    current : list
        The epoch's examples (objects with a ``kind``).
    replay : list
        Historical records sampled for replay.

    Returns
    -------
    list of list
        The three passes, in order (each is shuffled by the caller).

    Example
    -------
    >>> from types import SimpleNamespace as Ex
    >>> current = [Ex(kind=k) for k in ("enhanced", "noisy", "clean")]
    >>> passes = discriminator_passes(current, ["h1", "h2"])
    >>> [len(p) for p in passes]
    [3, 3, 3]
    >>> passes[1][:2], passes[1][2].kind
    (['h1', 'h2'], 'enhanced')
    """
    enhanced = [e for e in current if e.kind == "enhanced"]
    return [list(current), list(replay) + enhanced, list(current)]


@dataclasses.dataclass
class DiscriminatorExample:
    """One discriminator update: score ``test`` against ``clean``.

    Arguments
    ---------
    clean : torch.Tensor
        Clean waveform ``[time]``.
    test : torch.Tensor
        Waveform to score ``[time]`` (enhanced, noisy or clean).
    targets : torch.Tensor
        Normalised metric targets ``[n_metrics]``.
    kind : str
        ``enhanced``, ``noisy``, ``clean`` or ``historical``.
    id : list of str
        The utterance id (a list, as a batch's ``id``; named in the log
        when an update is skipped as non-finite).
    """

    clean: torch.Tensor
    test: torch.Tensor
    targets: torch.Tensor
    kind: str
    id: list = dataclasses.field(default_factory=list)


class OKDMetricGANBrain(EnhanceBrain):
    """MetricGAN-OKD: generators per target metric that learn from peers.

    See the module docstring for the scheme and the hyperparameters.

    Arguments
    ---------
    See ``speechbrain.Brain``; ``modules`` holds ``generator_<metric>``
    for each of ``hparams.target_metrics`` and ``discriminator``.

    Example
    -------
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> from speechbrain_kd.distill import OKDLoss
    >>> from speechbrain_kd.lobes.metricgan import (
    ...     MetricGANGenerator,
    ...     MultiMetricDiscriminator,
    ...     SpectralMaskEnhancer,
    ... )
    >>> def generator():
    ...     return SpectralMaskEnhancer(
    ...         MetricGANGenerator(hidden_size=8, linear_size=8)
    ...     )
    >>> brain = OKDMetricGANBrain(
    ...     modules={
    ...         "generator_pesq": generator(),
    ...         "generator_csig": generator(),
    ...         "discriminator": MultiMetricDiscriminator(2),
    ...     },
    ...     hparams={
    ...         "target_metrics": ["pesq", "csig"],
    ...         "okd_loss": OKDLoss(kd_weight=5.0),
    ...     },
    ... )
    >>> brain.generator_names
    ['generator_pesq', 'generator_csig']
    >>> batch = PaddedBatch(
    ...     [
    ...         {
    ...             "id": "a",
    ...             "noisy_sig": torch.randn(8000),
    ...             "clean_sig": torch.randn(8000),
    ...         }
    ...     ]
    ... )
    >>> out = brain.compute_forward(batch, sb.Stage.TRAIN)
    >>> [tuple(e.shape) for e in out["enhanced"]]
    [(1, 32, 257), (1, 32, 257)]
    >>> bool(brain.compute_objectives(out, batch, sb.Stage.TRAIN) > 0)
    True
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.target_metrics = check_target_metrics(self.hparams.target_metrics)
        self.generator_names = [f"{GENERATOR}_{m}" for m in self.target_metrics]
        missing = [
            name
            for name in [*self.generator_names, DISCRIMINATOR]
            if name not in self.modules
        ]
        if missing:
            raise ValueError(
                f"modules lack {missing}: an OKD yaml declares one "
                "generator_<metric> per target_metrics entry and a "
                "discriminator"
            )
        n_outputs = getattr(self.modules[DISCRIMINATOR], "n_metrics", None)
        if n_outputs is not None and n_outputs != len(self.target_metrics):
            raise ValueError(
                f"the discriminator scores {n_outputs} metric(s) but "
                f"target_metrics has {len(self.target_metrics)}: set its "
                "n_metrics to the number of target metrics"
            )
        self.selection_metric = self.hparam(
            "selection_metric", self.target_metrics[0]
        )
        self.phase = GENERATOR
        self.train_epoch = None
        self.discriminator_steps = 0

    # -- helpers ---------------------------------------------------------------
    def enhancer(self, index=0):
        """Generator ``index`` without its DDP wrapper (for STFTs).

        Arguments
        ---------
        index : int
            Generator index.

        Returns
        -------
        SpectralMaskEnhancer
            The module.
        """
        return unwrap_model(self.modules[self.generator_names[index]])[-1]

    @property
    def historical_set(self):
        """The disk-backed historical set of this run."""
        folder = self.hparam("historical_folder")
        if folder is None:
            folder = self.output_path("historical")
        return HistoricalSet(folder, self.sample_rate)

    # -- forward and losses ----------------------------------------------------
    def compute_forward(self, batch, stage):
        """Discriminator scores (D phase) or every generator's output.

        Arguments
        ---------
        batch : PaddedBatch or DiscriminatorExample
            A data batch, or one discriminator example in the D phase.
        stage : speechbrain.Stage
            The stage.

        Returns
        -------
        torch.Tensor or dict
            D phase: scores ``[1, n_metrics]``. Otherwise ``enhanced`` (per
            generator log1p magnitudes), ``clean`` (log1p magnitudes),
            ``lengths`` and, outside training, ``noisy_spectrum``.
        """
        if self.phase == DISCRIMINATOR:
            stft = self.enhancer()
            clean = stft.log_magnitude(batch.clean.to(self.device)[None])
            test = stft.log_magnitude(batch.test.to(self.device)[None])
            return self.modules[DISCRIMINATOR](clean, test)
        batch = batch.to(self.device)
        noisy, lengths = batch.noisy_sig
        clean, _ = batch.clean_sig
        enhanced = [
            self.modules[name](noisy, lengths, "log_magnitude")
            for name in self.generator_names
        ]
        out = {
            "enhanced": enhanced,
            "clean": self.enhancer().log_magnitude(clean),
            "lengths": lengths,
        }
        if stage != sb.Stage.TRAIN:
            out["noisy_spectrum"] = self.enhancer().spectrum(noisy)
        return out

    def compute_objectives(self, predictions, batch, stage):
        """Discriminator MSE (D phase) or the OKD generator loss.

        Arguments
        ---------
        predictions : torch.Tensor or dict
            Output of :meth:`compute_forward`.
        batch : PaddedBatch or DiscriminatorExample
            The batch.
        stage : speechbrain.Stage
            The stage.

        Returns
        -------
        torch.Tensor
            The scalar loss.
        """
        if self.phase == DISCRIMINATOR:
            targets = batch.targets.to(predictions)[None]
            loss = torch.nn.functional.mse_loss(predictions, targets)
            self.log_term(f"{DISCRIMINATOR}_{batch.kind}", loss)
            return loss
        discriminator = self.modules[DISCRIMINATOR]
        scores = [
            discriminator(predictions["clean"], enhanced)[:, i]
            for i, enhanced in enumerate(predictions["enhanced"])
        ]
        loss, terms = self.hparams.okd_loss(
            scores, predictions["enhanced"], predictions["lengths"]
        )
        for metric, adv, peer in zip(
            self.target_metrics,
            terms["adversarial"],
            terms["peer"],
            strict=False,
        ):
            self.log_term(f"adversarial_{metric}", torch.tensor(adv))
            if len(self.target_metrics) > 1:
                self.log_term(f"peer_{metric}", torch.tensor(peer))
        if stage != sb.Stage.TRAIN:
            self.score_generators(predictions, batch, stage)
        return loss

    def score_generators(self, predictions, batch, stage):
        """Resynthesises every generator's output, queues its metrics and
        writes test wavs (main process only).

        Arguments
        ---------
        predictions : dict
            Output of :meth:`compute_forward` (VALID or TEST).
        batch : PaddedBatch
            The batch.
        stage : speechbrain.Stage
            VALID or TEST.
        """
        if not if_main_process():
            return
        clean, lengths = batch.clean_sig
        spectrum = predictions["noisy_spectrum"]
        for index, metric in enumerate(self.target_metrics):
            wav = self.enhancer(index).synthesize(
                predictions["enhanced"][index], spectrum, clean.shape[-1]
            )
            wav = wav.detach().float()
            self.generator_metrics[metric].append(
                batch.id, predict=wav, target=clean, lengths=lengths
            )
            if stage == sb.Stage.TEST and self.hparam("save_enhanced", True):
                folder = self.output_path("enhanced") / f"{GENERATOR}_{metric}"
                self.write_enhanced(batch.id, wav, lengths, folder)

    # -- optimisers ------------------------------------------------------------
    def init_optimizers(self):
        """One optimizer per generator and one for the discriminator.

        They go into ``optimizers_dict`` (so SpeechBrain's ``fit_batch``
        steps, clips and scales them) and into the checkpointer.
        """
        self.optimizers_dict = {}
        for name in self.generator_names:
            params = self.modules[name].parameters()
            self.optimizers_dict[name] = self.hparams.g_opt_class(params)
        self.optimizers_dict[DISCRIMINATOR] = self.hparams.d_opt_class(
            self.modules[DISCRIMINATOR].parameters()
        )
        if self.checkpointer is not None:
            for name, optimizer in self.optimizers_dict.items():
                self.checkpointer.add_recoverable(f"{name}_opt", optimizer)

    def freeze_optimizers(self, optimizers):
        """The optimizers of the current phase.

        Arguments
        ---------
        optimizers : dict
            All optimizers.

        Returns
        -------
        dict
            The generators' (generator phase) or the discriminator's.
        """
        if self.phase == DISCRIMINATOR:
            return {DISCRIMINATOR: optimizers[DISCRIMINATOR]}
        return {k: v for k, v in optimizers.items() if k != DISCRIMINATOR}

    def on_fit_batch_start(self, batch, should_step):
        """Keeps the discriminator in training mode in both phases.

        As the official code (and SpeechBrain's MetricGAN+ recipe): in the
        generator phase the critic is not updated, but its input BatchNorm
        normalises each utterance by its own statistics. With
        ``hparams.critic_eval_in_generator_phase`` (False) it runs in eval
        mode there instead (running statistics, the project's earlier
        behaviour).

        Arguments
        ---------
        batch : object
            The batch.
        should_step : bool
            Whether the optimizers step after this batch.
        """
        evaluating = self.phase != DISCRIMINATOR and self.hparam(
            "critic_eval_in_generator_phase", False
        )
        self.modules[DISCRIMINATOR].train(not evaluating)

    # -- data ------------------------------------------------------------------
    def make_dataloader(self, dataset, stage, ckpt_prefix="dataloader-", **kw):
        """Training loader over ``utterances_per_epoch`` utterances drawn
        afresh (and reproducibly) every epoch.

        Arguments
        ---------
        dataset : Dataset
            The data.
        stage : speechbrain.Stage
            The stage.
        ckpt_prefix : str
            Checkpoint prefix of the loader.
        **kw : dict
            DataLoader options (``shuffle`` is replaced by the sampler).

        Returns
        -------
        DataLoader
            The loader.
        """
        if stage == sb.Stage.TRAIN:
            count = min(
                int(self.hparam("utterances_per_epoch", 100)), len(dataset)
            )
            kw.pop("shuffle", None)
            self.epoch_sampler = ReproducibleRandomSampler(
                dataset, seed=self.hparam("seed", 0), num_samples=count
            )
            kw["sampler"] = self.epoch_sampler
            self.train_dataset = dataset
        loader = super().make_dataloader(
            dataset, stage, ckpt_prefix=ckpt_prefix, **kw
        )
        if stage == sb.Stage.TRAIN and self.train_sampler is None:
            # SpeechBrain sets the epoch of its own samplers only.
            self.train_sampler = self.epoch_sampler
        return loader

    def epoch_items(self, epoch):
        """The training items drawn for ``epoch`` (same on every process).

        Arguments
        ---------
        epoch : int
            The epoch.

        Returns
        -------
        list of dict
            Dataset items (``id``, ``noisy_sig``, ``clean_sig``).
        """
        self.epoch_sampler.set_epoch(epoch)
        return [self.train_dataset[i] for i in self.epoch_sampler]

    # -- discriminator phase ---------------------------------------------------
    def discriminator_phase(self, epoch):
        """Builds the epoch's discriminator data and trains on it.

        Resumable: on the checkpoint interval (``ckpt_interval_minutes`` /
        ``ckpt_interval_steps``) and once at its end, the phase saves an
        intra-epoch checkpoint whose meta records how far it got. A run
        resumed from one continues the phase at that update (the epoch's
        historical set, already written, is not written again) or, if the
        phase had finished, goes on to validation.

        Arguments
        ---------
        epoch : int
            The epoch (selects the generator and the historical epochs).

        Returns
        -------
        dict
            The averages of the discriminator's loss terms.
        """
        progress = self.resumed_progress(epoch)
        if progress.get(PHASE_DONE):
            logger.info(
                "Epoch %d: the discriminator phase had finished before the "
                "restart; not repeated",
                epoch,
            )
            self.discriminator_steps = int(progress[STEPS])
            return dict(progress.get(TERMS) or {})
        rng = random.Random(int(self.hparam("seed", 0)) * 7919 + int(epoch))
        index = rng.randrange(len(self.generator_names))
        items = self.epoch_items(epoch)
        clean_by_id = {item["id"]: item["clean_sig"] for item in items}
        noisy_by_id = {item["id"]: item["noisy_sig"] for item in items}
        history = self.historical_set
        done = int(progress.get(UPDATES, 0))
        if done:
            logger.info(
                "Epoch %d: resuming the discriminator phase after update %d "
                "(its historical set was written before the restart)",
                epoch,
                done,
            )
            self.discriminator_steps = int(progress[STEPS])
            self.__dict__["_term_sums"] = {
                name: tuple(value)
                for name, value in (progress.get(TERMS) or {}).items()
            }
        elif if_main_process():
            self.write_current_set(epoch, index, items, history)
        ddp_barrier()
        current = history.epoch_records(epoch)
        noisy_scores = history.noisy_scores()
        examples = []
        for record in current:
            clean = clean_by_id[record.uid]
            examples += [
                self.example(
                    clean, record.load(), record.scores, "enhanced", record.uid
                ),
                self.example(
                    clean,
                    noisy_by_id[record.uid],
                    noisy_scores.get(record.uid, {}),
                    "noisy",
                    record.uid,
                ),
                self.example(clean, clean, None, "clean", record.uid),
            ]
        examples = [e for e in examples if e is not None]
        # Replayed records (usable targets only) are loaded one at a time
        # in the update loop: late in training they are thousands.
        fraction = float(self.hparam("historical_fraction", 0.2))
        replay = history.sample(
            epoch, fraction, self.hparam("seed", 0), self.target_metrics
        )
        logger.info(
            "Epoch %d discriminator phase: generator %s, %d current "
            "examples, %d historical replays",
            epoch,
            self.generator_names[index],
            len(examples),
            len(replay),
        )
        passes = discriminator_passes(examples, replay)
        self.modules[DISCRIMINATOR].train()
        self.optimizers_dict[DISCRIMINATOR].zero_grad(set_to_none=True)
        self.phase = DISCRIMINATOR
        position, since_save, last_save = 0, 0, time.time()
        try:
            with tqdm(
                total=sum(len(p) for p in passes),
                initial=done,
                desc=f"{DISCRIMINATOR} (epoch {epoch})",
                disable=not if_main_process(),
                dynamic_ncols=True,
            ) as bar:
                for examples_of_pass in passes:
                    order = list(examples_of_pass)
                    rng.shuffle(order)
                    for example in order:
                        position += 1
                        if position <= done:
                            continue  # done before the restart
                        if isinstance(example, HistoricalRecord):
                            example = self.replay_example(example, clean_by_id)
                        if example is not None:
                            self.discriminator_update(example)
                        bar.update()
                        since_save += 1
                        if self._should_save_intra_epoch_ckpt(
                            last_save, since_save
                        ):
                            self.save_progress(epoch, position, False)
                            since_save, last_save = 0, time.time()
        finally:
            self.phase = GENERATOR
        # Gradients the critic received in the generator phase are stale.
        self.optimizers_dict[DISCRIMINATOR].zero_grad(set_to_none=True)
        self.check_nonfinite_epoch(epoch)
        terms = self.term_averages()
        self.save_progress(epoch, position, True, terms)
        return terms

    def resumed_progress(self, epoch):
        """How far the discriminator phase of ``epoch`` got before the
        restart (empty when it had not started).

        Arguments
        ---------
        epoch : int
            The epoch.

        Returns
        -------
        dict
            The progress meta of the checkpoint the run resumed from.
        """
        checkpoint = self.__dict__.pop("recovered_checkpoint", None)
        meta = getattr(checkpoint, "meta", None) or {}
        if meta.get(PHASE_EPOCH) != int(epoch):
            return {}
        return meta

    def save_progress(self, epoch, position, finished, terms=None):
        """Saves an intra-epoch checkpoint inside the discriminator phase.

        Arguments
        ---------
        epoch : int
            The epoch.
        position : int
            Discriminator updates done in this phase (skipped ones count).
        finished : bool
            Whether the phase is complete.
        terms : dict, optional
            The phase's term averages (``finished``); else the running
            sums are saved.
        """
        if self.checkpointer is None:
            return
        if finished:
            saved_terms = dict(terms or {})
        else:
            saved_terms = {
                name: list(value)
                for name, value in self.__dict__.get("_term_sums", {}).items()
            }
        meta = {
            INTRA_EPOCH_CKPT_FLAG: True,
            PHASE_EPOCH: int(epoch),
            UPDATES: int(position),
            STEPS: int(self.discriminator_steps),
            PHASE_DONE: bool(finished),
            TERMS: saved_terms,
        }
        self.check_finite_weights("saving an intra-epoch checkpoint")
        with reported_save_failure(
            self.checkpointer, f"of the discriminator phase of epoch {epoch}"
        ):
            self.checkpointer.save_and_keep_only(
                end_of_epoch=False,
                num_to_keep=1,
                ckpt_predicate=lambda c: INTRA_EPOCH_CKPT_FLAG in c.meta,
                meta=meta,
                verbosity=logging.DEBUG,
            )

    def discriminator_update(self, example):
        """One discriminator step through SpeechBrain's ``fit_batch``.

        ``fit_batch`` decides on gradient accumulation from ``self.step``;
        the discriminator keeps its own step count, put there meanwhile.

        Arguments
        ---------
        example : DiscriminatorExample
            The example.
        """
        saved_step = self.step
        self.discriminator_steps += 1
        self.step = self.discriminator_steps
        try:
            self.fit_batch(example)
        finally:
            self.step = saved_step

    def example(self, clean, test, scores, kind, uid=None):
        """A discriminator example, or None when a target is undefined.

        Arguments
        ---------
        clean : torch.Tensor or numpy.ndarray
            Clean waveform.
        test : torch.Tensor or numpy.ndarray
            Waveform to score.
        scores : dict or None
            Raw metric scores of ``test`` (None: clean, every target 1).
        kind : str
            Example kind (logged).
        uid : str, optional
            The utterance id.

        Returns
        -------
        DiscriminatorExample or None
            None if a target metric is missing or NaN.
        """
        if scores is None:
            targets = [1.0] * len(self.target_metrics)
        else:
            targets = [
                normalize_metric(m, scores.get(m, math.nan))
                for m in self.target_metrics
            ]
            if any(math.isnan(t) for t in targets):
                return None
        clean = torch.as_tensor(clean, dtype=torch.float32)
        test = torch.as_tensor(test, dtype=torch.float32)
        length = min(clean.shape[-1], test.shape[-1])
        return DiscriminatorExample(
            clean=clean[:length],
            test=test[:length],
            targets=torch.tensor(targets),
            kind=kind,
            id=[] if uid is None else [uid],
        )

    def replay_example(self, record, known):
        """The discriminator example of a historical record (loaded now).

        Arguments
        ---------
        record : HistoricalRecord
            An enhanced utterance of an earlier epoch.
        known : dict
            Clean waveforms already loaded, by id.

        Returns
        -------
        DiscriminatorExample or None
            None if a target is undefined.
        """
        clean = self.train_item_clean(record.uid, known)
        return self.example(
            clean, record.load(), record.scores, "historical", record.uid
        )

    def train_item_clean(self, uid, known):
        """The clean waveform of training utterance ``uid``.

        Arguments
        ---------
        uid : str
            Utterance id.
        known : dict
            Already loaded clean waveforms by id.

        Returns
        -------
        torch.Tensor
            The clean waveform.
        """
        if uid in known:
            return known[uid]
        index_of = self.__dict__.get("_train_index")
        if index_of is None:
            ids = getattr(self.train_dataset, "data_ids", None)
            if ids is None:
                raise TypeError(
                    "the historical replay looks utterances up by id: the "
                    "training set must be a DynamicItemDataset"
                )
            index_of = self._train_index = {u: i for i, u in enumerate(ids)}
        # Only the clean signal is read (not the noisy one too).
        with self.train_dataset.output_keys_as(["clean_sig"]):
            return self.train_dataset[index_of[uid]]["clean_sig"]

    def write_current_set(self, epoch, index, items, history):
        """Enhances the epoch's utterances with generator ``index``, scores
        them (and the noisy inputs not yet cached) and stores them.

        Arguments
        ---------
        epoch : int
            The epoch.
        index : int
            The generator.
        items : list of dict
            The epoch's training items.
        history : HistoricalSet
            Where to write.
        """
        # Unwrapped: DDP's forward syncs buffers across processes, and
        # only the main process runs this.
        generator = self.enhancer(index)
        generator.eval()
        enhanced, finite_items = [], []
        with torch.no_grad():
            for item in items:
                noisy = item["noisy_sig"].to(self.device)[None]
                output = generator(noisy)[0]
                if not torch.isfinite(output).all():
                    logger.warning(
                        "Epoch %d: %s's output for %s is not finite; left "
                        "out of the historical set",
                        epoch,
                        self.generator_names[index],
                        item["id"],
                    )
                    continue
                enhanced.append(output.cpu().numpy())
                finite_items.append(item)
        items = finite_items
        clean = [item["clean_sig"].numpy() for item in items]
        ids = [item["id"] for item in items]
        options = dict(
            sample_rate=self.sample_rate,
            metrics=self.target_metrics,
            n_jobs=self.hparam("metric_jobs", 1),
            timeout=self.hparam("metric_timeout", 60.0),
            progress=False,
        )
        rows = evaluate_pairs(
            zip(clean, enhanced, strict=False), names=ids, **options
        )
        history.write_epoch(
            epoch,
            self.generator_names[index],
            zip(ids, enhanced, rows, strict=False),
        )
        cached = history.noisy_scores()
        todo = [
            (uid, item)
            for uid, item in zip(ids, items, strict=False)
            if not all(m in cached.get(uid, {}) for m in self.target_metrics)
        ]
        if todo:
            pairs = [
                (item["clean_sig"].numpy(), item["noisy_sig"].numpy())
                for _, item in todo
            ]
            rows = evaluate_pairs(
                pairs, names=[uid for uid, _ in todo], **options
            )
            for (uid, _), row in zip(todo, rows, strict=False):
                cached.setdefault(uid, {}).update(row)
            history.save_noisy_scores(cached)

    # -- stages ----------------------------------------------------------------
    def generator_phase_skipped(self, epoch):
        """Whether ``epoch`` trains the critic only.

        The official code starts the generator phase at epoch 2: the
        generators first meet a critic that has seen one discriminator
        phase (``generator_start_epoch``).

        Arguments
        ---------
        epoch : int or None
            The epoch.

        Returns
        -------
        bool
            True before ``generator_start_epoch``.
        """
        start = int(self.hparam("generator_start_epoch", 2))
        return epoch is not None and int(epoch) < start

    def fit_batch(self, batch):
        """A generator step, or nothing in a critic-only epoch.

        Arguments
        ---------
        batch : PaddedBatch or DiscriminatorExample
            The batch.

        Returns
        -------
        torch.Tensor
            The detached loss (0 when the generator phase is skipped).
        """
        if self.phase == GENERATOR and self.generator_phase_skipped(
            self.train_epoch
        ):
            return torch.tensor(0.0)
        return super().fit_batch(batch)

    def on_stage_start(self, stage, epoch=None):
        """Metrics per generator; notes a critic-only epoch.

        Arguments
        ---------
        stage : speechbrain.Stage
            The stage starting.
        epoch : int, optional
            The epoch.
        """
        self.term_averages()  # drop anything left from an aborted stage
        self.phase = GENERATOR
        if stage == sb.Stage.TRAIN:
            self.train_epoch = epoch
            if self.generator_phase_skipped(epoch):
                logger.info(
                    "Epoch %s trains the discriminator only (the "
                    "generators start at generator_start_epoch %s)",
                    epoch,
                    self.hparam("generator_start_epoch", 2),
                )
            return
        names = (
            self.hparam("valid_metrics", self.target_metrics)
            if stage == sb.Stage.VALID
            else self.hparam("test_metrics", self.target_metrics)
        )
        self.generator_metrics = {
            metric: EnhancementMetricStats(
                list(names),
                sample_rate=self.sample_rate,
                n_jobs=self.hparam("metric_jobs", 1),
            )
            for metric in self.target_metrics
        }

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Discriminator phase after training; per-generator metrics,
        checkpoints and test reports.

        Arguments
        ---------
        stage : speechbrain.Stage
            The stage ending.
        stage_loss : float
            Average generator loss of the stage.
        epoch : int, optional
            The epoch.
        """
        if stage == sb.Stage.TRAIN:
            skipped = self.generator_phase_skipped(epoch)
            if not skipped:
                self.check_nonfinite_epoch(epoch)
            generator_terms = self.term_averages()
            discriminator_terms = self.discriminator_phase(epoch)
            self.train_stats = {
                **({} if skipped else {"loss": stage_loss}),
                **generator_terms,
                **(discriminator_terms or {}),
            }
            return
        stats = {"loss": stage_loss, **self.term_averages()}
        summaries = {}
        for metric, metrics in self.generator_metrics.items():
            label = f"{str(stage).split('.')[-1].lower()}, {metric} generator"
            if epoch is not None:
                label = f"{label}, epoch {epoch}"
            summaries[metric] = self.summarize_metrics(metrics, label=label)
            for key, value in summaries[metric].items():
                stats[f"{key}[{metric}]"] = value
        if stage == sb.Stage.VALID:
            self.log_stats(
                {"epoch": epoch},
                train_stats=getattr(self, "train_stats", None),
                valid_stats=stats,
            )
            self.save_selection_checkpoint(summaries, epoch)
            return
        self.log_stats(
            {"Epoch loaded": self.hparams.epoch_counter.current}
            if hasattr(self.hparams, "epoch_counter")
            else {},
            test_stats=stats,
        )
        if if_main_process():
            selected = getattr(self, "selected_epochs", {})
            for metric, metrics in self.generator_metrics.items():
                report = {"loss": stage_loss, **summaries[metric]}
                epoch_of = selected.get(f"{GENERATOR}_{metric}")
                if epoch_of is not None:
                    report["checkpoint_epoch"] = epoch_of
                self.write_test_report(
                    report, metrics, suffix=f"_{GENERATOR}_{metric}"
                )

    # -- per-generator model selection -----------------------------------------
    @property
    def selection_keys(self):
        """Checkpoint meta key of each generator's selection score."""
        base = self.hparam("ckpt_max_key", "selection_score")
        return {
            name: module_selection_key(base, name)
            for name in self.generator_names
        }

    def save_selection_checkpoint(self, summaries, epoch):
        """Saves a checkpoint scored for every generator; keeps the best
        of each (and the most recent).

        Arguments
        ---------
        summaries : dict
            Validation summary of each target metric's generator.
        epoch : int or None
            The epoch.
        """
        if self.checkpointer is None:
            return
        counts = epoch is None or epoch >= self.hparam(
            "selection_start_epoch", 1
        )
        meta = {"epoch": epoch}
        for metric, (name, key) in zip(
            self.target_metrics, self.selection_keys.items(), strict=False
        ):
            score = _finite(summaries[metric].get(self.selection_metric))
            if counts and score == -math.inf and if_main_process():
                logger.warning(
                    "%s: %s",
                    name,
                    undefined_selection(
                        self.selection_metric,
                        self.generator_metrics[metric],
                        epoch,
                        option="selection_metric",
                    ),
                )
            meta[key] = score if counts else -math.inf
        with reported_save_failure(self.checkpointer, f"of epoch {epoch}"):
            self.checkpointer.save_and_keep_only(
                meta=meta,
                max_keys=list(self.selection_keys.values()),
                num_to_keep=1,
            )

    def on_evaluate_start(self, max_key=None, min_key=None):
        """Loads every generator from its own best checkpoint.

        The rest of the state (discriminator, counters) comes from the
        first generator's best. With a ``max_key`` or ``min_key`` that is
        not the run's ``ckpt_max_key``, or checkpoints without per-generator
        scores (written before they existed), SpeechBrain's single-key
        recovery is used.

        Arguments
        ---------
        max_key : str, optional
            Checkpoint meta key to maximise (the recipes pass
            ``ckpt_max_key``).
        min_key : str, optional
            Checkpoint meta key to minimise.
        """
        self.selected_epochs = {}
        base = self.hparam("ckpt_max_key", "selection_score")
        checkpointer = self.checkpointer
        per_generator = (
            checkpointer is not None
            and max_key == base
            and min_key is None
            and any(
                all(key in c.meta for key in self.selection_keys.values())
                for c in checkpointer.list_checkpoints()
            )
        )
        if not per_generator:
            super().on_evaluate_start(max_key=max_key, min_key=min_key)
            return
        keys = self.selection_keys
        recover_checkpoint(checkpointer, max_key=keys[self.generator_names[0]])
        for name, key in keys.items():
            best = checkpointer.find_checkpoint(max_key=key)
            file_name, module = recoverable_of(checkpointer, self.modules[name])
            state = read_parameters(best.path / f"{file_name}.ckpt")
            module.load_state_dict(state, strict=True)
            self.selected_epochs[name] = best.meta.get("epoch")
        logger.info(
            "Test: each generator from its own best checkpoint (%s), by "
            "epoch: %s",
            self.selection_metric,
            self.selected_epochs,
        )


def recoverable_of(checkpointer, module):
    """The recoverable (name and object) that saves ``module``.

    Arguments
    ---------
    checkpointer : speechbrain.utils.checkpoints.Checkpointer
        The checkpointer.
    module : torch.nn.Module
        A module, possibly DDP-wrapped.

    Returns
    -------
    tuple
        ``(name, recoverable)``: the checkpoint file is ``<name>.ckpt``.

    Raises
    ------
    ValueError
        If no recoverable is the module (or a wrapper of it).

    Example
    -------
    >>> from speechbrain.utils.checkpoints import Checkpointer
    >>> layer = torch.nn.Linear(1, 1)
    >>> recoverable_of(Checkpointer("/tmp", {"g": layer}), layer)[0]
    'g'
    """
    chain = unwrap_model(module)
    for name, recoverable in checkpointer.recoverables.items():
        if any(recoverable is m for m in chain):
            return name, recoverable
    raise ValueError(
        f"the checkpointer does not save {type(chain[-1]).__name__}: add "
        "each generator to the checkpointer's recoverables"
    )
