"""Two-ear impulse responses simulated with pyroomacoustics.

For users without measured BRIRs: shoebox rooms (image method), a source
and two omnidirectional receivers at ear distance. There is no head
between the receivers, so the level and spectral differences a head
makes are missing; only the time differences and the room are simulated.
"""

import os
import pathlib

import numpy as np
import soundfile as sf

#: Speed of sound used by pyroomacoustics (m/s).
SPEED_OF_SOUND = 343.0


def simulate_binaural_irs(
    save_folder,
    count=20,
    sample_rate=16000,
    room_min=(3.0, 3.0, 2.5),
    room_max=(8.0, 6.0, 3.5),
    rt60=(0.2, 0.6),
    ear_distance=0.18,
    source_distance=(1.0, 3.0),
    seed=0,
):
    """Writes ``count`` two-channel impulse responses into ``save_folder``.

    Each file ``room<k>.wav`` (left, right) comes from its own room (size
    uniform between ``room_min`` and ``room_max``, reverberation time
    uniform in ``rt60``, wall absorption by Sabine's formula) with a
    listener 1.6 m high facing a random direction, receivers
    ``ear_distance`` apart, and a source at a random azimuth and distance.
    Everything is drawn from ``seed``; existing files are kept, so an
    interrupted simulation resumes.

    Arguments
    ---------
    save_folder : str or pathlib.Path
        Output folder (the ``ir_folder`` of
        :func:`~speechbrain_kd.data.binaural_folders.prepare_binaural`).
    count : int
        Impulse responses.
    sample_rate : int
        Rate (Hz).
    room_min : tuple of float
        Smallest room (m).
    room_max : tuple of float
        Largest room (m).
    rt60 : tuple of float
        Reverberation-time range (s).
    ear_distance : float
        Distance between the receivers (m).
    source_distance : tuple of float
        Source distance range from the head (m).
    seed : int
        Seed of every draw.

    Returns
    -------
    pathlib.Path
        ``save_folder``.

    Example
    -------
    >>> import tempfile
    >>> folder = simulate_binaural_irs(
    ...     tempfile.mkdtemp(), count=1, rt60=(0.2, 0.2)
    ... )
    >>> sf.info(str(folder / "room000.wav")).channels
    2
    """
    try:
        import pyroomacoustics as pra
    except ImportError:
        raise ImportError(
            "simulating impulse responses needs pyroomacoustics: "
            "pip install speechbrain-kd[binaural] (or pass ir_folder, a "
            "folder of measured two-channel impulse responses)"
        ) from None
    folder = pathlib.Path(save_folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(int(seed))
    for index in range(int(count)):
        room = rng.uniform(room_min, room_max)
        reverberation = rng.uniform(*rt60)
        facing = rng.uniform(0, 2 * np.pi)
        azimuth = rng.uniform(0, 2 * np.pi)
        distance = rng.uniform(*source_distance)
        margin = 0.5
        head = np.array(
            [
                rng.uniform(margin, room[0] - margin),
                rng.uniform(margin, room[1] - margin),
                1.6,
            ]
        )
        path = folder / f"room{index:03d}.wav"
        if path.is_file():
            continue
        ears = np.array([-np.sin(facing), np.cos(facing), 0.0])
        receivers = np.stack(
            [head + ears * ear_distance / 2, head - ears * ear_distance / 2]
        )
        direction = np.array([np.cos(azimuth), np.sin(azimuth), 0.0])
        source = head + direction * distance
        source = np.clip(source, 0.1, room - 0.1)
        absorption, max_order = pra.inverse_sabine(reverberation, room)
        shoebox = pra.ShoeBox(
            room,
            fs=int(sample_rate),
            materials=pra.Material(absorption),
            max_order=max_order,
        )
        shoebox.add_source(source)
        shoebox.add_microphone_array(receivers.T)
        shoebox.compute_rir()
        taps = max(len(shoebox.rir[ear][0]) for ear in (0, 1))
        ir = np.zeros((taps, 2))
        for ear in (0, 1):
            response = shoebox.rir[ear][0]
            ir[: len(response), ear] = response
        partial = path.with_suffix(".partial.wav")
        sf.write(partial, ir / np.abs(ir).max(), int(sample_rate), "FLOAT")
        os.replace(partial, path)
    return folder
