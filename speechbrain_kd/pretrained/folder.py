"""The pretrained model folder: its files, what each holds, read and write.

A pretrained model is a folder (local, or a HuggingFace repository) laid
out as SpeechBrain's hub models are:

* :data:`HPARAMS_FILE` (``hyperparams.yaml``): inference-only
  hyperparameters: ``sample_rate``, ``chunk_seconds`` and
  ``overlap_seconds`` (optional), :data:`MODULE_KEY` (``enhance_model``:
  the waveform-to-waveform ``torch.nn.Module``, e.g. MANNER),
  ``modules: {enhance_model: PairOutput(<enhance_model>)}`` (the adapter
  SpeechBrain's stock ``WaveformEnhancement`` calls) and a ``pretrainer``
  (``speechbrain.utils.parameter_transfer.Pretrainer`` with
  ``loadables: {enhance_model: !ref <enhance_model>}``);
* :data:`MODEL_FILE` (``enhance_model.ckpt``): the module's state dict;
* :data:`CONFIG_FILE` (``config.json``): :data:`INTERFACE_CONFIG` (the
  interface class, SpeechBrain's ``foreign_class`` convention), plus what
  export adds (sample rate, model class and arguments, usage);
* optionally :data:`EXAMPLE_FILE` (``example.wav``, a noisy clip, as in
  SpeechBrain's hub repositories) with its enhanced version
  :data:`EXAMPLE_ENHANCED_FILE`, and
  :data:`CARD_FILE` (``README.md``, the model card).

Example
-------
>>> import tempfile, torch
>>> from ruamel.yaml.comments import TaggedScalar
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> node = TaggedScalar(value="", tag="!new:torch.nn.Identity")
>>> write_hyperparams(folder, 16000, node)
>>> write_parameters(folder, torch.nn.Identity())
>>> _ = write_config(folder)
>>> check_model_folder(folder) == folder.resolve()
True
>>> read_hyperparams(folder)[MODULE_KEY], read_parameters(folder)
(Identity(), {})
"""

import json
import pathlib


class CheckpointError(ValueError):
    """Raised when parameters cannot be found or do not fit the model."""


#: Hyperparameter file of a model folder.
HPARAMS_FILE = "hyperparams.yaml"
#: File holding the model's state dict.
MODEL_FILE = "enhance_model.ckpt"
#: The interface description (``foreign_class`` convention).
CONFIG_FILE = "config.json"
#: A noisy clip (as in SpeechBrain's hub repositories) and the model's
#: output for it.
EXAMPLE_FILE = "example.wav"
EXAMPLE_INPUT_FILE = EXAMPLE_FILE
EXAMPLE_ENHANCED_FILE = "example_enhanced.wav"
#: The model card.
CARD_FILE = "README.md"
#: Files of an exported model folder (:data:`EXAMPLE_ENHANCED_FILE` too).
EXPORTED_FILES = (
    MODEL_FILE,
    HPARAMS_FILE,
    CONFIG_FILE,
    EXAMPLE_FILE,
    CARD_FILE,
)
#: Key of the enhancement module in hyperparams.yaml (and ``modules``).
MODULE_KEY = "enhance_model"
#: ``modules: enhance_model`` wraps the model for SpeechBrain's stock
#: interfaces (:class:`speechbrain_kd.pretrained.adapters.PairOutput`).
ADAPTER_CLASS = "custom_interface.PairOutput"
#: ``config.json`` entries naming the interface class.
INTERFACE_CONFIG = {
    "speechbrain_interface": "KDEnhancement",
    "interface_module": "speechbrain_kd.pretrained",
}
#: Chunking of long inputs when hyperparams.yaml does not say.
DEFAULT_CHUNK_SECONDS = 10.0
DEFAULT_OVERLAP_SECONDS = 1.0
#: The class collecting and loading :data:`MODEL_FILE`.
PRETRAINER_CLASS = "speechbrain.utils.parameter_transfer.Pretrainer"


def check_model_folder(folder, hparams_file=HPARAMS_FILE):
    """Checks that a local model folder holds its files.

    Arguments
    ---------
    folder : str or pathlib.Path
        The model folder.
    hparams_file : str
        Name of its hyperparameter file.

    Returns
    -------
    pathlib.Path
        The folder, resolved.

    Raises
    ------
    FileNotFoundError
        The folder does not exist, is not a folder, or lacks
        ``hparams_file`` or :data:`MODEL_FILE` (the message names it).

    Example
    -------
    >>> import tempfile
    >>> check_model_folder(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: hyperparams.yaml is missing from the model folder ...
    """
    folder = pathlib.Path(folder).expanduser()
    if not folder.exists():
        raise FileNotFoundError(
            f"model source {folder} does not exist (a local path; "
            "it is not looked up on the HuggingFace hub). Pass an "
            "exported model folder or a hub id such as org/name."
        )
    if not folder.is_dir():
        raise FileNotFoundError(
            f"model source {folder} is not a folder: pass the "
            f"folder holding {hparams_file} and {MODEL_FILE}"
        )
    for name in (hparams_file, MODEL_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"{name} is missing from the model folder {folder} "
                f"(a pretrained model folder holds {hparams_file}, "
                f"{MODEL_FILE} and {CONFIG_FILE}; export a trained "
                "model with `speechbrain-kd export`)"
            )
    return folder.resolve()


def read_parameters(path, shown_as=None):
    """The state dict of a model folder (or of a ``.ckpt`` file).

    Arguments
    ---------
    path : str or pathlib.Path
        A model folder (its :data:`MODEL_FILE` is read) or a file.
    shown_as : str, optional
        The file's name in errors (e.g. the source of a collected copy).

    Returns
    -------
    object
        What the file holds (a state dict), on the CPU.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    CheckpointError
        If the file is empty, truncated, not a PyTorch file or holds
        objects other than tensors (never loaded: they could run code).

    Example
    -------
    >>> import tempfile, torch
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_parameters(folder, torch.nn.Linear(1, 1))
    >>> sorted(read_parameters(folder))
    ['bias', 'weight']
    """
    import torch

    path = pathlib.Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"parameter file {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 (torch raises many kinds)
        raise CheckpointError(
            f"cannot read the parameter file {shown_as or path}: "
            f"{unreadable_reason(path, error)}"
        ) from None


def parameter_file_problem(path):
    """Why a parameter file cannot be a PyTorch file, without loading it.

    Arguments
    ---------
    path : pathlib.Path
        The file.

    Returns
    -------
    str or None
        The reason (empty, truncated or damaged, not a PyTorch file), or
        None when it looks sound.

    Example
    -------
    >>> import tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.ckpt"
    >>> _ = path.write_text("hello")
    >>> parameter_file_problem(path)
    'it is not a PyTorch parameter file; point at a .ckpt written by torch.save'
    """
    import zipfile

    path = pathlib.Path(path)
    size = path.stat().st_size
    if size == 0:
        return (
            "it is empty (0 bytes), probably a save that was interrupted; "
            "use an earlier checkpoint or train again"
        )
    with open(path, "rb") as handle:
        start = handle.read(2)
    if start != b"PK":
        if start.startswith(b"\x80"):  # a legacy (pre-zip) torch file
            return None
        return (
            "it is not a PyTorch parameter file; point at a .ckpt written "
            "by torch.save"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip() is not None
    except (zipfile.BadZipFile, OSError, EOFError):
        damaged = True
    if damaged:
        return (
            f"it is truncated or damaged ({size} bytes), probably a save "
            "that was interrupted; use an earlier checkpoint or copy the "
            "file again"
        )
    return None


def unreadable_reason(path, error):
    """Why ``torch.load`` failed on ``path``, in words.

    Never advises loading unsafely (``weights_only=False``), as PyTorch's
    own message does.

    Arguments
    ---------
    path : pathlib.Path
        The file.
    error : Exception
        What ``torch.load`` raised.

    Returns
    -------
    str
        The reason.

    Example
    -------
    >>> import pickle, tempfile, torch
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.ckpt"
    >>> torch.save({"w": torch.ones(1)}, path)
    >>> unreadable_reason(path, pickle.UnpicklingError("Weights only"))[:40]
    'it holds Python objects besides tensors,'
    """
    import pickle

    problem = parameter_file_problem(path)
    if problem is not None:
        return problem
    if isinstance(error, pickle.UnpicklingError):
        return (
            "it holds Python objects besides tensors, which are never "
            "loaded (they could run code); a model's parameters are a "
            "state dict of tensors, e.g. torch.save(model.state_dict(), "
            "path)"
        )
    return f"{type(error).__name__}: {error}"


def write_parameters(folder, module):
    """Writes ``module``'s state dict as the folder's :data:`MODEL_FILE`.

    Arguments
    ---------
    folder : str or pathlib.Path
        The model folder (created if needed).
    module : torch.nn.Module
        The model.

    Example
    -------
    >>> import tempfile, torch
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_parameters(folder, torch.nn.Linear(1, 1))
    >>> (folder / MODEL_FILE).is_file()
    True
    """
    import torch

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state_dict = {
        name: tensor.detach().cpu().contiguous()
        for name, tensor in module.state_dict().items()
    }
    torch.save(state_dict, folder / MODEL_FILE)


def read_hyperparams(folder, hparams_file=HPARAMS_FILE):
    """Loads the folder's hyperparameters (the module is built, untrained).

    Arguments
    ---------
    folder : str or pathlib.Path
        The model folder.
    hparams_file : str
        Name of its hyperparameter file.

    Returns
    -------
    dict
        The loaded hyperparameters; ``[MODULE_KEY]`` is the model.

    Example
    -------
    >>> import tempfile
    >>> from ruamel.yaml.comments import TaggedScalar
    >>> node = TaggedScalar(value="", tag="!new:torch.nn.Identity")
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_hyperparams(folder, 8000, node, chunk_seconds=4.0)
    >>> hparams = read_hyperparams(folder)
    >>> hparams["chunk_seconds"], hparams[MODULE_KEY]
    (4.0, Identity())
    """
    from hyperpyyaml import load_hyperpyyaml

    from speechbrain_kd.pretrained.bundle import package_classes_resolved

    path = pathlib.Path(folder) / hparams_file
    with open(path, encoding="utf-8") as stream, package_classes_resolved():
        return load_hyperpyyaml(stream)


def write_hyperparams(
    folder,
    sample_rate,
    module_node,
    comment=None,
    chunk_seconds=DEFAULT_CHUNK_SECONDS,
    overlap_seconds=DEFAULT_OVERLAP_SECONDS,
):
    """Writes the folder's :data:`HPARAMS_FILE` (with ruamel.yaml).

    Arguments
    ---------
    folder : str or pathlib.Path
        The model folder (created if needed).
    sample_rate : int
        The model's sample rate.
    module_node : object
        The YAML value of :data:`MODULE_KEY`: a ``!new:`` node of
        :func:`speechbrain_kd.hyperyaml.resolved_nodes` (copied without
        its comments) or plain data.
    comment : str, optional
        A comment for the top of the file.
    chunk_seconds : float
        Chunk length for long inputs.
    overlap_seconds : float
        Minimum overlap of neighbouring chunks.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_kd.hyperyaml import resolved_nodes
    >>> node = resolved_nodes("m: !new:torch.nn.Linear [4, 4]")["m"]
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_hyperparams(folder, 16000, node)
    >>> print((folder / HPARAMS_FILE).read_text(), end="")
    sample_rate: 16000
    # Long inputs are enhanced in chunks of chunk_seconds overlapping by
    # overlap_seconds.
    chunk_seconds: 10.0
    overlap_seconds: 1.0
    enhance_model: !new:torch.nn.Linear [4, 4]
    modules:
        enhance_model: !new:custom_interface.PairOutput
            model: !ref <enhance_model>
    pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
        loadables:
            enhance_model: !ref <enhance_model>
    """
    from ruamel.yaml.comments import CommentedMap, TaggedScalar

    from speechbrain_kd.hyperyaml import plain_node, yaml_text

    def ref():
        """A fresh ``!ref`` to the module key."""
        # One node per use: a shared node would be written as an anchor.
        return TaggedScalar(value=f"<{MODULE_KEY}>", tag="!ref")

    pretrainer = CommentedMap(loadables={MODULE_KEY: ref()})
    pretrainer.yaml_set_ctag(_tag("!new:" + PRETRAINER_CLASS))
    # SpeechBrain's stock WaveformEnhancement unpacks (wav, lengths)
    adapter = CommentedMap(model=ref())
    adapter.yaml_set_ctag(_tag("!new:" + ADAPTER_CLASS))
    data = CommentedMap(
        [
            ("sample_rate", int(sample_rate)),
            ("chunk_seconds", float(chunk_seconds)),
            ("overlap_seconds", float(overlap_seconds)),
            (MODULE_KEY, plain_node(module_node)),
            ("modules", {MODULE_KEY: adapter}),
            ("pretrainer", pretrainer),
        ]
    )
    data.yaml_set_comment_before_after_key(
        "chunk_seconds",
        before="Long inputs are enhanced in chunks of chunk_seconds "
        "overlapping by\noverlap_seconds.",
    )
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / HPARAMS_FILE).write_text(
        yaml_text(data, comment), encoding="utf-8"
    )


def _tag(text):
    """A ruamel tag object."""
    from ruamel.yaml.tag import Tag

    return Tag(suffix=text)


def write_config(folder, **extra):
    """Writes the folder's :data:`CONFIG_FILE` naming the interface.

    Arguments
    ---------
    folder : str or pathlib.Path
        The model folder (created if needed).
    **extra : dict
        More (JSON-serialisable) entries.

    Returns
    -------
    pathlib.Path
        The written file.

    Example
    -------
    >>> import tempfile
    >>> path = write_config(tempfile.mkdtemp(), sample_rate=16000)
    >>> json.loads(path.read_text())["speechbrain_interface"]
    'KDEnhancement'
    """
    path = pathlib.Path(folder) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({**INTERFACE_CONFIG, **extra}, indent=2) + "\n",
        encoding="utf-8",
    )
    return path
