"""The rows of ``recipes/recipes.csv`` and the commands they stand for.

The csv has the columns of SpeechBrain's ``tests/recipes/<Dataset>.csv``.
Its ``test_debug_flags`` name generated inputs with placeholders that the
recipe tests fill in: ``{data}`` (a mini VoiceBank-DEMAND), ``{out}`` (the
row's output folder), ``{manner_teacher}`` / ``{rt_senet_teacher}`` /
``{wave_u_net_teacher}`` / ``{conv_tasnet_teacher}`` (tiny trained teacher
runs: the rows of their yamls), ``{silent_data}`` (the mini
VoiceBank-DEMAND with a silent training and test utterance), ``{clean}`` /
``{noise}`` (folders for FolderMix), ``{timit}`` / ``{noisex}`` (generated
TIMIT and NOISEX-92 folders), ``{binaural}`` (generated speech, noise and
impulse-response folders), ``{mhca_crn_teacher}`` / ``{sjen_bad_student}``
(the spatial-injection teacher and bad student runs).
"""

import csv
import dataclasses
import fcntl
import json
import os
import pathlib
import shlex
import signal
import string
import subprocess
import sys
import threading
from concurrent.futures import Future

from ruamel.yaml import YAML

REPO = pathlib.Path(__file__).resolve().parents[1]
CSV = REPO / "recipes" / "recipes.csv"
COLUMNS = [
    "Task",
    "Dataset",
    "Script_file",
    "Hparam_file",
    "Data_prep_file",
    "Readme_file",
    "Result_url",
    "HF_repo",
    "test_debug_flags",
    "test_debug_checks",
    "performance",
]


def recipe_rows():
    """Every row of ``recipes/recipes.csv`` as a dict."""
    with open(CSV, encoding="utf-8", newline="") as fin:
        return list(csv.DictReader(fin))


def row_id(row):
    """A short test id: ``<script stem>:<yaml stem>``."""
    script = pathlib.Path(row["Script_file"])
    hparams = pathlib.Path(row["Hparam_file"])
    return f"{script.parent.name}/{script.stem}:{hparams.stem}"


def debug_command(row, **paths):
    """The command line of a row's debug run, placeholders filled."""
    flags = row["test_debug_flags"].format(
        **{k: str(v) for k, v in paths.items()}
    )
    return [
        sys.executable,
        str(REPO / row["Script_file"]),
        str(REPO / row["Hparam_file"]),
        *shlex.split(flags),
    ]


def expected_files(row):
    """The files ``test_debug_checks`` says the run writes."""
    checks = row["test_debug_checks"].strip()
    if not checks:
        return []
    name, _, value = checks.partition("=")
    if name != "file_exists":
        raise ValueError(f"unknown test_debug_checks {checks!r}")
    return [item.strip() for item in value.strip("[]").split(",") if item]


def extends_base(hparams_file):
    """The base yaml of an ``extends`` yaml (None for a full recipe)."""
    with open(hparams_file, encoding="utf-8") as fin:
        document = YAML().load(fin)
    base = document.get("extends") if isinstance(document, dict) else None
    return None if base is None else pathlib.Path(hparams_file).parent / base


#: The utterances that :func:`make_silent_valentini` silences, per split.
SILENT_UTTERANCES = {"trainset_28spk": "p226_001", "testset": "p232_001"}
#: Placeholders filled with the run folder of a teacher row.
TEACHER_ROWS = {
    "manner_teacher": "hparams/manner_teacher.yaml",
    "rt_senet_teacher": "hparams/rt_senet_teacher.yaml",
    "wave_u_net_teacher": "hparams/wave_u_net_teacher.yaml",
    "conv_tasnet_teacher": "hparams/conv_tasnet_teacher.yaml",
    "wave_u_net_teacher_timit": "hparams/wave_u_net_teacher_timit.yaml",
    "mhca_crn_teacher": "hparams/mhca_crn_teacher.yaml",
    "sjen_bad_student": "hparams/sjen_no_kd.yaml",
    "wave_u_net_folder_mix": "hparams/wave_u_net_folder_mix.yaml",
    "full_band_48k": "hparams/full_band_48k.yaml",
    "manner_s_dns_teacher": "hparams/manner_s_dns_teacher.yaml",
}


def make_silent_valentini(folder):
    """A mini VoiceBank-DEMAND with :data:`SILENT_UTTERANCES` silent."""
    import numpy as np
    import soundfile as sf

    from speechbrain_kd.data.synthetic import make_mini_valentini

    make_mini_valentini(folder, n_train=6, n_test=2, seed=0)
    for split, uid in SILENT_UTTERANCES.items():
        for kind in ("clean", "noisy"):
            path = folder / f"{kind}_{split}_wav" / f"{uid}.wav"
            info = sf.info(path)
            sf.write(path, np.zeros(info.frames), info.samplerate)
    return folder


def make_folder_mix_folders(root):
    """10 clean 'sentences' at 22.05 kHz (one in a sub-folder) in
    ``root/clean`` and two noise recordings at 16 kHz (one stereo) in
    ``root/noise``."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(22050) / 22050
    for i in range(10):
        sentence = 0.3 * np.sin(2 * np.pi * (150 + 20 * i) * t)
        sentence *= np.sin(np.pi * 3 * t) ** 2  # syllable-like envelope
        folder = root / "clean" / ("more" if i == 9 else "")
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"h{i:02d}.flac", sentence, 22050)
    (root / "noise").mkdir()
    sf.write(
        root / "noise" / "white.wav", 0.1 * rng.standard_normal(48000), 16000
    )
    stereo = 0.05 * rng.standard_normal((32000, 2))
    sf.write(root / "noise" / "car.wav", stereo, 16000)
    return root


@dataclasses.dataclass
class RowRun:
    """A finished debug run of one csv row."""

    row: dict
    out: pathlib.Path  # {out}: holds prepared/ and run/
    result: subprocess.CompletedProcess

    @property
    def run(self):
        """The run's output folder."""
        return self.out / "run"

    @property
    def console(self):
        """Everything the run printed."""
        return self.result.stdout + self.result.stderr


def placeholders(row):
    """The placeholder names in a row's ``test_debug_flags``."""
    parsed = string.Formatter().parse(row["test_debug_flags"])
    return {name for _, name, _, _ in parsed if name}


#: Set ``SBKD_PLAIN_RECIPE_RUNS=1`` to run rows as ``python script.py``
#: subprocesses instead of forks of :class:`ScriptServer`.
PLAIN_RUNS = os.environ.get("SBKD_PLAIN_RECIPE_RUNS", "") == "1"
RUN_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
RUN_TIMEOUT = 900  # seconds per row


def free_port():
    """A TCP port free on this machine now (for ``torchrun``)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_torchrun(script, *args, processes=2):
    """``torchrun`` of ``script args`` on ``processes`` local processes (a
    free master port, one thread each), as ``subprocess.run(...,
    capture_output=True, text=True)`` would."""
    torchrun = pathlib.Path(sys.executable).parent / "torchrun"
    return subprocess.run(
        [
            str(torchrun),
            f"--nproc_per_node={processes}",
            f"--master_port={free_port()}",
            str(script),
            *map(str, args),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def kill_group(process):
    """Kills a process started with ``start_new_session`` and its
    children."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class ScriptServer:
    """``tests/scripts/script_server.py``: runs scripts in forks of one
    interpreter that has imported torch, SpeechBrain and the package, so a
    debug run does not pay 4-6 s of imports (one server per thread)."""

    def __init__(self):
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "tests" / "scripts" / "script_server.py"),
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=RUN_ENV,
            start_new_session=True,
        )

    def run(self, argv, out):
        """Runs ``argv`` (script first); returns (code, stdout, stderr)."""
        logs = {
            name: out / f"console_{name}.txt" for name in ("stdout", "stderr")
        }
        job = {
            "argv": argv,
            "cwd": str(REPO),
            "timeout": RUN_TIMEOUT,
            **{name: str(path) for name, path in logs.items()},
        }
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        if not reply:
            raise RuntimeError("the script server stopped")
        returncode = json.loads(reply)["returncode"]
        stdout, stderr = (logs[n].read_text() for n in ("stdout", "stderr"))
        return returncode, stdout, stderr


class ScriptRunner:
    """``runner(command)`` runs ``[python, script, args...]`` from the
    repository root as ``subprocess.run(..., capture_output=True)`` would,
    in a fork of one :class:`ScriptServer` (or as a plain subprocess,
    :data:`PLAIN_RUNS`); the consoles go to files under ``folder``."""

    def __init__(self, folder):
        self.folder = folder
        self.server = None if PLAIN_RUNS else ScriptServer()  # imports now
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, command):
        if PLAIN_RUNS:
            return subprocess.run(
                command,
                cwd=REPO,
                capture_output=True,
                text=True,
                env=RUN_ENV,
                timeout=RUN_TIMEOUT,
            )
        with self.lock:
            self.count += 1
            logs = self.folder / f"run{self.count:03d}"
            logs.mkdir()
            returncode, stdout, stderr = self.server.run(command[1:], logs)
        return subprocess.CompletedProcess(command, returncode, stdout, stderr)

    def close(self):
        """Stops the server."""
        if self.server is not None:
            kill_group(self.server.process)


class RecipeRuns:
    """Runs csv rows in the background, each at most once, ``workers`` at
    a time (one torch thread each: two rows fill two cores, where one run
    alone leaves a core idle most of the time), in forks of a
    :class:`ScriptServer` (or plain subprocesses, :data:`PLAIN_RUNS`).

    ``prefetch`` queues rows ahead of need; calling the object with a yaml
    moves that row (and the teacher rows it names) to the front of the
    queue and waits for its :class:`RowRun`. A row's teachers are always
    queued before it, so a row only ever waits on runs already started.
    ``folder(placeholder)`` gives the generated input folders (``data``,
    ``silent_data``, ``clean``, ``noise``); it is called on the calling
    thread only. Row folders live in ``root``, shared by the pytest
    workers of one session: a row runs once whichever worker asks first
    (a lock file per row), the others read its result.
    """

    def __init__(self, root, folder, workers=2):
        self.root = root
        self.folder = folder
        self.rows = {row["Hparam_file"]: row for row in recipe_rows()}
        self._jobs = {}  # hparam file -> (future, command, out, teachers)
        self._pending = []  # queued, not started, in start order
        self._running = set()  # Popen objects to kill on close
        self._closed = False
        self._condition = threading.Condition()
        self._threads = [
            threading.Thread(target=self._work, daemon=True)
            for _ in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def prefetch(self, hparam_files):
        """Queues rows (teachers first) without waiting for them."""
        for hparam_file in hparam_files:
            self._queue(hparam_file)

    def __call__(self, hparam_file):
        chain = self._queue(hparam_file)
        with self._condition:
            waiting = [h for h in chain if h in self._pending]
            for h in waiting:
                self._pending.remove(h)
            self._pending[:0] = waiting
        return self._jobs[hparam_file][0].result()

    def close(self):
        """Drops the queue and stops the runs in progress."""
        with self._condition:
            self._closed = True
            self._pending.clear()
            for process in self._running:
                kill_group(process)
            self._condition.notify_all()

    def _queue(self, hparam_file):
        """Queues a row after its teachers; returns [teachers..., row]."""
        row = self.rows[hparam_file]
        names = placeholders(row)
        chain = []
        for name in sorted(names & set(TEACHER_ROWS)):
            chain += self._queue(TEACHER_ROWS[name])
        with self._condition:
            if hparam_file in self._jobs:
                return [*chain, hparam_file]
        out = self.root / row_id(row).replace("/", "-").replace(":", "-")
        out.mkdir(parents=True, exist_ok=True)
        paths = {"out": out}
        for name in names - {"out"}:
            if name in TEACHER_ROWS:
                paths[name] = self._jobs[TEACHER_ROWS[name]][2] / "run"
            else:
                paths[name] = self.folder(name)
        teachers = [TEACHER_ROWS[n] for n in names if n in TEACHER_ROWS]
        job = (Future(), debug_command(row, **paths), out, teachers)
        with self._condition:
            self._jobs[hparam_file] = job
            self._pending.append(hparam_file)
            self._condition.notify()
        return [*chain, hparam_file]

    def _work(self):
        server = None
        while True:
            with self._condition:
                while not self._pending and not self._closed:
                    self._condition.wait()
                if self._closed:
                    return
                hparam_file = self._pending.pop(0)
                if server is None and not PLAIN_RUNS:
                    server = ScriptServer()
                    self._running.add(server.process)
            future, command, out, teachers = self._jobs[hparam_file]
            try:
                for teacher in teachers:
                    self._jobs[teacher][0].result()
                future.set_result(self._run(hparam_file, command, out, server))
            except BaseException as error:  # noqa: BLE001 (to the waiter)
                future.set_exception(error)

    def _run(self, hparam_file, command, out, server):
        """Runs a row, or reads its result when another pytest worker
        ran it (one lock file per row in the shared root)."""
        row = self.rows[hparam_file]
        with open(out.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            done = out / "result.json"
            if done.is_file():
                returncode = json.loads(done.read_text())["returncode"]
                stdout, stderr = (
                    (out / f"console_{n}.txt").read_text()
                    for n in ("stdout", "stderr")
                )
            else:
                if server is None:
                    returncode, stdout, stderr = self._run_plain(command)
                    for name, text in (("stdout", stdout), ("stderr", stderr)):
                        (out / f"console_{name}.txt").write_text(text)
                else:
                    returncode, stdout, stderr = server.run(command[1:], out)
                done.write_text(json.dumps({"returncode": returncode}))
        if returncode != 0:
            raise AssertionError(
                f"{row_id(row)} failed ({returncode}):\n" + stderr[-4000:]
            )
        result = subprocess.CompletedProcess(
            command, returncode, stdout, stderr
        )
        return RowRun(row, out, result)

    def _run_plain(self, command):
        """``python script.py ...`` in a subprocess."""
        process = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=RUN_ENV,
            start_new_session=True,
        )
        with self._condition:
            self._running.add(process)
        try:
            stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            kill_group(process)
            stdout, stderr = process.communicate()
        finally:
            with self._condition:
                self._running.discard(process)
        return process.returncode, stdout, stderr
