"""A cache of the frozen teacher's outputs and tapped features per item.

With deterministic training items (``segment_hop_seconds``, no random
augmentation) the teacher computes the same thing for an item every epoch;
the cache runs it once per item and serves the result afterwards.
"""

import hashlib

import torch
import torch.nn.functional as F


class TeacherCacheError(ValueError):
    """An item's teacher input changed between epochs, or a tap cannot be
    cached."""


class TeacherCache:
    """Teacher output and tapped features of every training item, once.

    Each item is run alone, on its own (unpadded) length, so what is
    cached depends only on the item, not on the batch it first came in:
    a resumed run recomputes the same values. A batch is assembled by
    zero-padding every item's output and features on their last (time)
    axis to the longest item's, which is the length the teacher would
    give for the padded batch; the KD losses mask padded frames. Each
    entry keeps a fingerprint (BLAKE2b of the input samples): an item
    whose input changes (random crops, augmentation) raises
    :class:`TeacherCacheError` instead of serving a stale output.

    Arguments
    ---------
    teacher : torch.nn.Module
        The frozen teacher (eval mode, no gradients).
    taps : speechbrain_kd.distill.FeatureTaps
        The teacher's taps (``detach=True``); every tapped output must be
        a tensor with a batch axis first.

    Example
    -------
    >>> import torch.nn as nn
    >>> from speechbrain_kd.distill import FeatureTaps
    >>> teacher = nn.Sequential(nn.Conv1d(1, 2, 3, padding=1)).eval()
    >>> taps = FeatureTaps(teacher, ["0"], detach=True)
    >>> cache = TeacherCache(lambda x: teacher(x[:, None])[:, 0], taps)
    >>> x = torch.randn(2, 8)
    >>> out, feats = cache(["a", "b"], x, torch.tensor([1.0, 0.5]))
    >>> out.shape, feats["0"].shape, len(cache), cache.misses
    (torch.Size([2, 8]), torch.Size([2, 2, 8]), 2, 2)
    >>> torch.allclose(out[0], teacher(x[:1, None])[0, 0])
    True
    >>> float(out[1, 4:].abs().sum())  # item b is 4 samples long
    0.0
    >>> _ = cache(["b", "a"], x.flip(0), torch.tensor([1.0, 1.0]))
    Traceback (most recent call last):
    ...
    speechbrain_kd.distill.teacher_cache.TeacherCacheError: ...
    """

    def __init__(self, teacher, taps):
        self.teacher = teacher
        self.taps = taps
        self.entries = {}
        self.hits = 0
        self.misses = 0

    def __len__(self):
        return len(self.entries)

    @property
    def nbytes(self):
        """Memory held by the cached tensors, in bytes."""
        total = 0
        for _, out, features in self.entries.values():
            for tensor in (out, *features.values()):
                total += tensor.element_size() * tensor.numel()
        return total

    def __call__(self, ids, teacher_input, lengths):
        """The teacher's output and features for a batch.

        Arguments
        ---------
        ids : list of str
            Item ids of the batch (the cache keys).
        teacher_input : torch.Tensor
            The teacher's padded input ``[B, ..., T]``.
        lengths : torch.Tensor
            Relative lengths ``[B]`` of ``teacher_input``.

        Returns
        -------
        teacher_out : torch.Tensor
            The outputs, zero-padded to the longest item's.
        features : dict
            Tap name -> features, zero-padded likewise.
        """
        frames = teacher_input.shape[-1]
        entries = []
        for index, item_id in enumerate(ids):
            samples = int(round(float(lengths[index]) * frames))
            item = teacher_input[index : index + 1, ..., :samples]
            fingerprint = _fingerprint(item)
            entry = self.entries.get(item_id)
            if entry is None:
                entry = (fingerprint, *self._run(item))
                self.entries[item_id] = entry
                self.misses += 1
            elif entry[0] != fingerprint:
                raise TeacherCacheError(
                    f"teacher_cache: the teacher input of item {item_id!r} "
                    "changed since it was cached (random crops or "
                    "augmentation?); set segment_hop_seconds for "
                    "deterministic segments or teacher_cache: False"
                )
            else:
                self.hits += 1
            entries.append(entry)
        outputs = _pad_stack([entry[1] for entry in entries], "output")
        features = {
            name: _pad_stack([entry[2][name] for entry in entries], name)
            for name in entries[0][2]
        }
        return outputs, features

    def _run(self, item):
        self.taps.clear()
        with torch.no_grad():
            output = self.teacher(item)
        features = {}
        for name, feature in self.taps.features.items():
            if not isinstance(feature, torch.Tensor):
                raise TeacherCacheError(
                    f"teacher_cache: tap {name!r} outputs a "
                    f"{type(feature).__name__}, not a tensor; it cannot be "
                    "cached (set teacher_cache: False)"
                )
            features[name] = feature[0]
        return output[0], features


def _fingerprint(tensor):
    data = tensor.detach().to("cpu", torch.float32).contiguous().numpy()
    digest = hashlib.blake2b(data.tobytes(), digest_size=16).digest()
    return tuple(tensor.shape), digest


def _pad_stack(tensors, name):
    longest = max(tensor.shape[-1] for tensor in tensors)
    if len({tuple(tensor.shape[:-1]) for tensor in tensors}) > 1:
        raise TeacherCacheError(
            f"teacher_cache: {name} has shapes "
            f"{[tuple(t.shape) for t in tensors]} across items; only the "
            "last (time) axis may differ"
        )
    return torch.stack(
        [F.pad(tensor, (0, longest - tensor.shape[-1])) for tensor in tensors]
    )
