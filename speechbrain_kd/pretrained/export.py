"""Export a trained model as a hub-ready pretrained model folder.

:func:`export_model` turns a training run of one of our recipes into a
folder (:mod:`speechbrain_kd.pretrained.folder`) that
``KDEnhancement.from_hparams`` loads (from a local path, or from the
HuggingFace hub once uploaded):

* ``enhance_model.ckpt``: the state dict of the module under ``key`` of
  the training hyperparameters (``model`` = the student of a KD run),
  taken from the best checkpoint of the run (by its ``ckpt_max_key``,
  validation PESQ by default), or from a given ``CKPT+...`` folder or
  ``.ckpt`` file, checked strictly against the module built from the
  training hyperparameters;
* ``hyperparams.yaml``: inference-only hyperparameters: ``sample_rate``,
  ``chunk_seconds``, ``overlap_seconds``, ``enhance_model`` (the module's
  class and constructor arguments, read from the training file with its
  references resolved), ``modules`` and ``pretrainer``;
* ``config.json``: the interface class, the model class and its
  arguments;
* ``example.wav``: a noisy clip (16-bit; the input, as in SpeechBrain's
  hub repositories) and ``example_enhanced.wav``, the exported model's
  output for it;
* ``README.md``: a model card (:mod:`speechbrain_kd.pretrained.card`).
"""

import datetime
import logging
import pathlib

import numpy as np
import torch

from speechbrain_kd.audio import audio_info, read_audio, resample, write_wav
from speechbrain_kd.hyperyaml import (
    describe_module_node,
    find_module,
    plain_node,
    resolved_nodes,
    yaml_text,
)
from speechbrain_kd.pretrained.bundle import (
    BUNDLE_FILE,
    bundled_node,
    write_custom_interface,
)
from speechbrain_kd.pretrained.card import model_card
from speechbrain_kd.pretrained.checkpoints import (
    CHECKPOINT_NAMES,
    CheckpointError,
    check_state_dict,
    find_checkpoint_file,
    load_parameters,
    module_selection_key,
)
from speechbrain_kd.pretrained.folder import (
    CARD_FILE,
    EXAMPLE_ENHANCED_FILE,
    EXAMPLE_FILE,
    EXAMPLE_INPUT_FILE,
    INTERFACE_CONFIG,
    MODULE_KEY,
    read_hyperparams,
    read_parameters,
    write_config,
    write_hyperparams,
    write_parameters,
)

logger = logging.getLogger(__name__)

EXAMPLE_SECONDS = 3.0
RTF_SECONDS = 4.0


def export_model(
    hparams_file,
    checkpoint,
    output_dir,
    key="model",
    example_input=None,
    force=False,
    rtf_threads=1,
    rtf_seconds=RTF_SECONDS,
    repo_id=None,
):
    """Exports the module under ``key`` of a training run as a model folder.

    Arguments
    ---------
    hparams_file : str or pathlib.Path
        The run's ``hyperparams.yaml`` (``OUTPUT_FOLDER/hyperparams.yaml``,
        overrides applied). Its folder is taken as the run folder (test
        metrics, recipe script).
    checkpoint : str or pathlib.Path
        A training output folder (the checkpoint with the best validation
        PESQ is taken), its ``save`` folder, a ``CKPT+...`` folder or a
        ``.ckpt`` file holding the module's state dict (or a checkpoint of
        the official MANNER code).
    output_dir : str or pathlib.Path
        The folder to write.
    key : str
        Key of the module in the hyperparameters (``model``: the student
        of a KD run or the model of a teacher run); ``outer.inner`` for an
        entry of a top-level dict.
    example_input : str or pathlib.Path, optional
        A noisy audio file to enhance for ``example.wav`` (default: a
        deterministic 3-s synthetic speech-like clip with babble noise).
    force : bool
        Write into a non-empty ``output_dir`` (files of the same names are
        overwritten).
    rtf_threads : int
        CPU threads for the real-time factor in the model card.
    rtf_seconds : float
        Input length for the real-time factor.
    repo_id : str, optional
        The HuggingFace repository id the card's usage snippet loads
        (default: ``YOUR_HF_USER/<output folder name>``).

    Returns
    -------
    pathlib.Path
        ``output_dir``.

    Raises
    ------
    FileNotFoundError
        If ``hparams_file``, ``checkpoint`` or ``example_input`` is missing.
    ValueError
        If ``key`` holds no module, no checkpoint file is found for it,
        the parameters do not fit the module, or ``output_dir`` is not
        empty and ``force`` is False.

    Example
    -------
    >>> import tempfile
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (run / "hyperparams.yaml").write_text(
    ...     "sample_rate: 8000\\n"
    ...     "model: !new:torch.nn.Conv1d\\n"
    ...     "    in_channels: 1\\n    out_channels: 1\\n    kernel_size: 1\\n"
    ... )
    >>> torch.save(torch.nn.Conv1d(1, 1, 1).state_dict(), run / "model.ckpt")
    >>> out = export_model(
    ...     run / "hyperparams.yaml",
    ...     run / "model.ckpt",
    ...     run / "exported",
    ...     rtf_seconds=0.1,
    ... )
    >>> sorted(path.name for path in out.iterdir())  # doctest: +ELLIPSIS
    ['README.md', 'config.json', 'custom_interface.py', 'enhance_model.ckpt', ...]
    """
    from hyperpyyaml import load_hyperpyyaml

    hparams_file = pathlib.Path(hparams_file).expanduser()
    if not hparams_file.is_file():
        raise FileNotFoundError(f"hparams file not found: {hparams_file}")
    output_dir = pathlib.Path(output_dir).expanduser()
    _check_output_dir(output_dir, force)

    hparams = resolved_nodes(hparams_file.read_text(encoding="utf-8"))
    node = find_module(hparams, key, hparams_file)
    sample_rate = hparams.get("sample_rate")
    if sample_rate is None:
        sample_rate = 16000
        logger.warning("No sample_rate in %s: assuming 16000", hparams_file)
    sample_rate = int(sample_rate)

    module = load_hyperpyyaml(yaml_text({MODULE_KEY: plain_node(node)}))
    module = module[MODULE_KEY]
    max_key = str(hparams.get("ckpt_max_key") or "pesq")
    ckpt_file = _checkpoint_file(checkpoint, key, max_key)
    state_dict = read_parameters(ckpt_file)
    if not isinstance(state_dict, dict):
        raise ValueError(f"{ckpt_file} does not hold a state dict")
    load_parameters(
        module,
        state_dict,
        str(ckpt_file),
        role=f"{key!r}",
        hint=f"Check that {ckpt_file} was saved by the run of "
        f"{hparams_file} (same model hyperparameters) and that --key "
        f"({key}) names the module it holds.",
    )
    module.eval()

    write_parameters(output_dir, module)
    bundled, roots = bundled_node(node)
    write_hyperparams(
        output_dir,
        sample_rate,
        bundled,
        comment=_hyperparams_comment(hparams_file, key),
    )
    write_custom_interface(
        output_dir, roots, _bundle_docstring(hparams_file, key)
    )
    class_path, kwargs = describe_module_node(node)
    write_config(
        output_dir,
        sample_rate=sample_rate,
        model_class=class_path,
        model_kwargs=kwargs,
        pymodule_file=BUNDLE_FILE,
        usage="from speechbrain.inference.interfaces import foreign_class; "
        f"foreign_class(source=..., pymodule_file={BUNDLE_FILE!r}, "
        "classname='KDEnhancement', savedir=...)",
    )

    exported = _load_exported(output_dir)
    _check_same_outputs(module, exported, sample_rate)
    example_note = _write_example(
        exported, output_dir, sample_rate, example_input
    )
    card = model_card(
        module=exported,
        node=node,
        hparams=hparams,
        hparams_file=hparams_file,
        key=key,
        ckpt_file=ckpt_file,
        sample_rate=sample_rate,
        example_note=example_note,
        rtf_threads=rtf_threads,
        rtf_seconds=rtf_seconds,
        output_dir=output_dir,
        repo_id=repo_id,
    )
    (output_dir / CARD_FILE).write_text(card, encoding="utf-8")
    logger.info("Exported %s (%s) to %s", key, ckpt_file, output_dir)
    return output_dir


def _hyperparams_comment(hparams_file, key):
    """The comment at the top of an exported ``hyperparams.yaml``."""
    today = datetime.date.today().isoformat()
    rule = "#" * 74
    return (
        f"{rule}\n"
        "Inference hyperparameters of a speech-enhancement model exported\n"
        f"by `speechbrain-kd export` on {today} (module {key!r} of the\n"
        f"training file {hparams_file.name}).\n"
        f"The custom_interface.* classes are those of {BUNDLE_FILE}.\n"
        "Load with SpeechBrain only:\n"
        "  from speechbrain.inference.interfaces import foreign_class\n"
        f"  model = foreign_class(source=..., pymodule_file={BUNDLE_FILE!r},\n"
        "                        classname='KDEnhancement', savedir=...)\n"
        "or, with speechbrain-kd installed (its own classes):\n"
        f"  from {INTERFACE_CONFIG['interface_module']} import "
        "KDEnhancement\n"
        "  model = KDEnhancement.from_hparams(source=..., savedir=...)\n"
        f"{rule}"
    )


def _bundle_docstring(hparams_file, key):
    """The module docstring of an exported ``custom_interface.py``."""
    from speechbrain_kd import __version__

    return (
        "The interface and model code of this model folder.\n\n"
        f"Generated by ``speechbrain-kd export`` {__version__} on "
        f"{datetime.date.today().isoformat()} from the module\n"
        f"{key!r} of {hparams_file.name},\n"
        "gathered from the speechbrain_kd package so that SpeechBrain alone "
        "loads\nthe folder::\n\n"
        "    from speechbrain.inference.interfaces import foreign_class\n\n"
        "    enhancer = foreign_class(\n"
        "        source=...,\n"
        '        pymodule_file="custom_interface.py",\n'
        '        classname="KDEnhancement",\n'
        "    )\n\n"
        "Do not edit: export again instead. Docstring examples refer to the\n"
        "package's modules, where each definition comes from "
        "(``BUNDLED_FROM``,\nat the end). Licence: Apache-2.0.\n"
    )


def _checkpoint_file(checkpoint, key, max_key="pesq"):
    """The ``.ckpt`` file holding the state dict of ``key`` (in the best
    checkpoint by ``max_key`` when given a run or checkpoints folder)."""
    path = pathlib.Path(checkpoint).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_file():
        return path
    module = key.split(".")[-1]
    wanted_name = f"{module}.ckpt"
    try:
        # A run that selects each module on its own score (MetricGAN-OKD's
        # generators) ranks its checkpoints per module.
        keys = (module_selection_key(max_key, module), max_key)
        found = find_checkpoint_file(
            path, keys, names=(wanted_name, *CHECKPOINT_NAMES)
        )
    except CheckpointError:
        raise ValueError(
            f"{path} holds no checkpoint: pass a training output folder "
            "(with save/CKPT+*), a CKPT+... folder or a .ckpt file (a "
            "--debug run keeps its checkpoints only with "
            "--debug_persistently)"
        ) from None
    folder = found.parent
    wanted = folder / wanted_name
    if wanted.is_file():
        return wanted
    if key == "model" and found.name in CHECKPOINT_NAMES:
        return found
    present = sorted(p.name for p in folder.glob("*.ckpt"))
    advice = ""
    if key == "teacher":
        advice = (
            " A knowledge-distillation run does not checkpoint its teacher "
            "(it is loaded from teacher_source): export the teacher from "
            "its own training run (--hparams TEACHER_RUN/hyperparams.yaml "
            "--checkpoint TEACHER_RUN --key model)."
        )
    raise ValueError(
        f"no {wanted.name} in {folder} (files there: "
        f"{', '.join(present) or 'none'}).{advice}"
    )


def _load_exported(output_dir):
    """Builds the module of an exported folder, parameters loaded strictly."""
    module = read_hyperparams(output_dir)[MODULE_KEY]
    check_state_dict(
        module, read_parameters(output_dir), str(output_dir), role="exported"
    )
    return module.eval()


def _check_same_outputs(module, exported, sample_rate):
    """Checks that the exported module computes what the trained one does."""
    from speechbrain_kd.profiling import make_example_input

    inputs = make_example_input(module, 0.1, sample_rate)
    with torch.no_grad():
        expected = module(inputs)
        got = exported(inputs)
    if not torch.allclose(expected, got, atol=1e-6, rtol=0):
        raise RuntimeError(
            "the exported model does not reproduce the trained one "
            f"(max abs diff {(expected - got).abs().max().item():.3g})"
        )


def _check_output_dir(output_dir, force):
    """Refuses a non-empty output folder unless ``force``."""
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"--output {output_dir} is a file, not a folder")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not force:
        raise ValueError(
            f"output folder {output_dir} is not empty: choose another one "
            "or pass --force (force=True) to overwrite the exported files"
        )
    from speechbrain_kd.outputs import check_output_folder

    check_output_folder(output_dir, "--output")


def synthetic_noisy_clip(sample_rate=16000, seconds=EXAMPLE_SECONDS, seed=0):
    """A deterministic speech-like clip in babble noise at 5 dB SNR.

    Arguments
    ---------
    sample_rate : int
        Sample rate in Hz.
    seconds : float
        Duration.
    seed : int
        Random seed.

    Returns
    -------
    torch.Tensor
        The noisy clip, ``[time]`` float32 (synthesised at 16 kHz or more,
        then resampled; peak about 0.9 at most).

    Example
    -------
    >>> clip = synthetic_noisy_clip(8000, 0.5)
    >>> clip.shape, bool(abs(clip).max() <= 0.95)
    (torch.Size([4000]), True)
    >>> bool((clip == synthetic_noisy_clip(8000, 0.5)).all())
    True
    """
    from speechbrain_kd.data import synthetic

    rate = max(int(sample_rate), 16000)
    rng = np.random.default_rng(seed)
    n_samples = int(round(seconds * rate))
    voice = synthetic._speaker_voice(seed, "p232")
    clean = synthetic._speech_like(
        rng, voice, n_samples, rate, 0.2 * seconds / 3, 0.2 * seconds / 3
    )
    clean = clean * 10 ** (-25 / 20) / max(synthetic._rms(clean), 1e-12)
    noise = synthetic._NOISE_MAKERS["babble"](rng, n_samples, rate)
    noisy = clean + synthetic._scale_to_snr(clean, noise, 5.0)
    noisy = noisy * min(1.0, 0.9 / max(np.max(np.abs(noisy)), 1e-12))
    return resample(torch.from_numpy(noisy).float(), rate, sample_rate)


def _write_example(module, output_dir, sample_rate, example_input):
    """Writes ``example.wav`` (noisy) and ``example_enhanced.wav``."""
    if example_input is None:
        noisy = synthetic_noisy_clip(sample_rate)
        note = (
            f"`{EXAMPLE_INPUT_FILE}` is a deterministic "
            f"{EXAMPLE_SECONDS:g}-s synthetic speech-like clip (harmonic "
            "voiced syllables with formants, `speechbrain_kd.data."
            "synthetic`) in babble noise at 5 dB SNR; "
            f"`{EXAMPLE_ENHANCED_FILE}` is that clip enhanced by this model."
        )
    else:
        try:
            rate = audio_info(example_input).sample_rate
        except FileNotFoundError:
            raise FileNotFoundError(
                f"example input not found: {example_input}"
            ) from None
        noisy = read_audio(example_input, sample_rate)
        note = (
            f"`{EXAMPLE_INPUT_FILE}` is "
            f"`{pathlib.Path(example_input).name}` (mono, {rate} Hz "
            f"resampled to {sample_rate} Hz when needed); "
            f"`{EXAMPLE_ENHANCED_FILE}` is that clip enhanced by this model."
        )
    with torch.no_grad():
        enhanced = module(noisy.unsqueeze(0)).reshape(-1)
    write_wav(output_dir / EXAMPLE_ENHANCED_FILE, enhanced, sample_rate)
    write_wav(output_dir / EXAMPLE_FILE, noisy, sample_rate)
    return note
