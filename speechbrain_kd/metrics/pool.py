"""A process pool for metric evaluation that cannot loop or hang forever.

SpeechBrain's ``multiprocess_evaluation`` retries a whole batch forever
when one metric call raises (PESQ raises on silent input), and a joblib
pool cannot stop a single hung call. :class:`SafePool` runs every task
exactly once:

* each worker is a process of its own with a private pipe, so the parent
  knows which task each worker runs and since when;
* a task that runs longer than ``timeout`` seconds has its worker killed
  (and replaced if tasks remain): the task fails with the reason
  ``"timed out after ... s"``;
* a worker that dies (segfault, out of memory) fails its task the same
  way; an exception raised by the task function fails only that task;
* nothing is retried, so the pool finishes after at most one attempt per
  task; a worker that cannot even start raises ``RuntimeError``.

Workers are started with the ``forkserver`` method where available (the
fork server preloads :mod:`speechbrain_kd.metrics.evaluation` once, so a
replacement worker starts in milliseconds) and ``spawn`` elsewhere; both
are safe with CUDA and threads in the parent. The task function must be
defined at module level (picklable). Arguments and results travel through
pipes: send numpy arrays, not CUDA tensors.

With ``n_jobs=1`` tasks run in the calling process, without a pool and
without timeout (exceptions still fail only their task).
"""

import collections
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import sys
import time
import weakref

from tqdm.auto import tqdm

__all__ = ["DEFAULT_TIMEOUT", "SafePool", "TaskResult", "safe_map"]

logger = logging.getLogger(__name__)

#: Default per-task limit in seconds (all metrics on a 10-s file take
#: about half a second on one core).
DEFAULT_TIMEOUT = 120.0
#: Limit for a fresh worker to import its modules and report ready.
STARTUP_TIMEOUT = 300.0
#: Modules the fork server imports once for every worker it forks.
PRELOAD = ("speechbrain_kd.metrics.evaluation",)
#: Thread-count variables set to 1 for workers (read when numpy/BLAS
#: load). Multi-threaded BLAS doubles STOI's cost on 2 cores even
#: without other workers competing for them.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

TaskResult = collections.namedtuple("TaskResult", ["ok", "value", "error"])
TaskResult.__doc__ = """Outcome of one task.

``ok`` is True when the function returned; ``value`` is what it returned
(None on failure) and ``error`` the reason of a failure (None on success).
"""


def _worker_main(connection, function):
    """Worker loop: report ready, then run tasks until told to stop."""
    torch = sys.modules.get("torch")
    if torch is not None:
        # One intra-op thread per worker: the workers are the parallelism.
        torch.set_num_threads(1)
    connection.send(("ready", None, None))
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        index, args = message
        try:
            reply = (index, True, function(*args))
        except Exception as error:  # a failed task, not a failed worker
            reply = (index, False, f"{type(error).__name__}: {error}")
        try:
            connection.send(reply)
        except Exception as error:  # e.g. an unpicklable result
            connection.send((index, False, f"cannot send result: {error}"))


@contextlib.contextmanager
def _single_threaded_environment():
    """Sets the thread-count variables to 1 while a worker starts.

    A spawned worker (or the fork server, started with the first worker)
    inherits the environment of this moment; the caller's own settings
    are restored right after.
    """
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _default_context():
    """``forkserver`` (preloading the metric modules) or ``spawn``."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # Ignored once the fork server runs (it keeps its first preload).
        context.set_forkserver_preload(list(PRELOAD))
        return context
    return multiprocessing.get_context("spawn")


class _Worker:
    """One worker process, its pipe and the task it is running."""

    def __init__(self, context, function):
        self.connection, child_connection = context.Pipe(duplex=True)
        self.process = context.Process(
            target=_worker_main,
            args=(child_connection, function),
            name="speechbrain-kd-metric-worker",
            daemon=True,
        )
        with _single_threaded_environment():
            self.process.start()
        child_connection.close()
        self.started = time.monotonic()
        self.ready = False
        self.task = None  # index of the running task
        self.deadline = None

    def send(self, index, args, timeout):
        """Hands a task to an idle, ready worker."""
        self.task = index
        self.connection.send((index, args))
        self.deadline = time.monotonic() + timeout

    def stop(self, kill=False):
        """Stops the process (politely unless ``kill``) and closes the pipe."""
        if self.process.is_alive() and not kill:
            try:
                self.connection.send(None)
            except OSError:
                pass
            self.process.join(timeout=2.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5.0)
        self.connection.close()


def _stop_all(workers):
    """Finaliser: stops every worker of a pool (also on garbage collection)."""
    while workers:
        workers.pop().stop()


class SafePool:
    """A pool of metric workers with a per-task timeout and no retries.

    Arguments
    ---------
    function : callable
        Module-level function called as ``function(*args)`` for each task.
    n_jobs : int
        Number of worker processes (``1``: run in the calling process).
    timeout : float
        Seconds one task may run before its worker is killed.
    context : multiprocessing context, optional
        Start method; default ``forkserver`` (``spawn`` where absent).

    Example
    -------
    >>> with SafePool(abs, n_jobs=1) as pool:
    ...     pool.map([(-1,), ("x",)])  # doctest: +NORMALIZE_WHITESPACE
    [TaskResult(ok=True, value=1, error=None),
     TaskResult(ok=False, value=None,
                error="TypeError: bad operand type for abs(): 'str'")]
    """

    def __init__(
        self, function, n_jobs=2, timeout=DEFAULT_TIMEOUT, context=None
    ):
        if n_jobs < 1:
            raise ValueError(f"n_jobs must be at least 1, got {n_jobs}")
        if not timeout or timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.function = function
        self.n_jobs = int(n_jobs)
        self.timeout = float(timeout)
        self._context = context
        self._workers = []
        self._starts_left = 0
        self._finalizer = weakref.finalize(self, _stop_all, self._workers)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __getstate__(self):
        raise TypeError("a SafePool holds processes and cannot be pickled")

    def close(self):
        """Stops the workers; the pool restarts them if used again."""
        _stop_all(self._workers)

    def map(self, tasks, progress=False, desc=None):
        """Runs ``function(*args)`` once for every ``args`` in ``tasks``.

        Arguments
        ---------
        tasks : iterable of tuple
            Argument tuples, one per task.
        progress : bool
            Show a tqdm progress bar (on stderr).
        desc : str, optional
            Label of the progress bar.

        Returns
        -------
        list of TaskResult
            One result per task, in the order of ``tasks``.
        """
        tasks = [tuple(args) for args in tasks]
        with tqdm(
            total=len(tasks), desc=desc, unit="file", disable=not progress
        ) as bar:
            if self.n_jobs == 1:
                return self._map_inline(tasks, bar)
            try:
                return self._map_pool(tasks, bar)
            except BaseException:
                # Interrupted (or a worker could not start): no worker may
                # keep running a task of this call into the next one.
                self.close()
                raise

    def _map_inline(self, tasks, bar):
        """Sequential evaluation in this process."""
        results = []
        for index, args in enumerate(tasks):
            try:
                results.append(TaskResult(True, self.function(*args), None))
            except Exception as error:
                reason = f"{type(error).__name__}: {error}"
                logger.debug("task %d failed: %s", index, reason)
                results.append(TaskResult(False, None, reason))
            bar.update(1)
        return results

    def _fail(self, results, index, reason, bar):
        logger.debug("task %d failed: %s", index, reason)
        results[index] = TaskResult(False, None, reason)
        bar.update(1)

    def _start_workers(self, count):
        """Tops the pool up to ``count`` live workers."""
        if self._context is None:
            self._context = _default_context()
        while len(self._workers) < count:
            if self._starts_left <= 0:
                # Every replacement follows a failed task or a dead idle
                # worker; this bound keeps a broken setup from looping.
                self.close()
                raise RuntimeError("metric workers keep dying; giving up")
            self._starts_left -= 1
            self._workers.append(_Worker(self._context, self.function))

    def _retire(self, worker, kill):
        """Removes a worker from the pool and stops it."""
        self._workers.remove(worker)
        worker.stop(kill=kill)

    def _map_pool(self, tasks, bar):
        """Parallel evaluation with per-task deadlines."""
        results = [None] * len(tasks)
        pending = collections.deque(range(len(tasks)))
        self._starts_left = 2 * (self.n_jobs + len(tasks))
        self._start_workers(min(self.n_jobs, len(tasks)))
        while pending or any(w.task is not None for w in self._workers):
            # Keep as many workers as there is work for.
            busy = sum(w.task is not None for w in self._workers)
            self._start_workers(min(self.n_jobs, busy + len(pending)))
            for worker in self._workers:
                if worker.ready and worker.task is None and pending:
                    index = pending.popleft()
                    try:
                        worker.send(index, tasks[index], self.timeout)
                    except OSError as error:  # died while idle
                        self._retire(worker, kill=True)
                        self._fail(results, index, f"worker died: {error}", bar)
                        break
            self._wait_and_collect(results, bar)
        return results

    def _wait_and_collect(self, results, bar):
        """Waits for a reply, a dead worker or the next deadline."""
        now = time.monotonic()
        deadlines = [
            w.deadline if w.ready else w.started + STARTUP_TIMEOUT
            for w in self._workers
            if w.task is not None or not w.ready
        ]
        wait_for = max(0.0, min(deadlines) - now) if deadlines else 0.0
        handles = {}
        for worker in self._workers:
            handles[worker.connection] = worker
            handles[worker.process.sentinel] = worker
        ready = multiprocessing.connection.wait(list(handles), wait_for)
        touched = {handles[handle] for handle in ready}
        for worker in list(self._workers):
            if worker in touched:
                self._collect(worker, results, bar)
        now = time.monotonic()
        for worker in list(self._workers):
            if not worker.ready and now > worker.started + STARTUP_TIMEOUT:
                self.close()
                raise RuntimeError(
                    f"a metric worker did not start within {STARTUP_TIMEOUT} s"
                )
            if worker.task is not None and now > worker.deadline:
                index = worker.task
                self._retire(worker, kill=True)
                self._fail(
                    results, index, f"timed out after {self.timeout:g} s", bar
                )

    def _collect(self, worker, results, bar):
        """Reads one message from a worker, or handles its death."""
        try:
            if not worker.connection.poll():
                raise EOFError  # only the sentinel fired: the process died
            message = worker.connection.recv()
        except (EOFError, OSError):
            worker.process.join(timeout=1.0)
            code = worker.process.exitcode
            self._retire(worker, kill=True)
            if not worker.ready:
                self.close()
                raise RuntimeError(
                    f"a metric worker exited during start-up (exit code "
                    f"{code}); run with n_jobs=1 to see the error"
                ) from None
            if worker.task is not None:
                self._fail(
                    results, worker.task, f"worker died (exit code {code})", bar
                )
            return
        index, ok, value = message
        if index == "ready":
            worker.ready = True
            return
        worker.task = None
        worker.deadline = None
        if ok:
            results[index] = TaskResult(True, value, None)
            bar.update(1)
        else:
            self._fail(results, index, value, bar)


def safe_map(
    function,
    tasks,
    n_jobs=1,
    timeout=DEFAULT_TIMEOUT,
    progress=False,
    desc=None,
):
    """Runs ``function(*args)`` once per task in a temporary :class:`SafePool`.

    Arguments
    ---------
    function : callable
        Module-level function (picklable when ``n_jobs > 1``).
    tasks : iterable of tuple
        Argument tuples, one per task.
    n_jobs : int
        Worker processes; 1 runs in this process (no timeout).
    timeout : float
        Seconds one task may run (``n_jobs > 1`` only).
    progress : bool
        Show a progress bar.
    desc : str, optional
        Label of the progress bar.

    Returns
    -------
    list of TaskResult
        One result per task, in order.

    Example
    -------
    >>> [r.value for r in safe_map(pow, [(2, 3), (3, 2)])]
    [8, 9]
    """
    with SafePool(function, n_jobs=n_jobs, timeout=timeout) as pool:
        return pool.map(tasks, progress=progress, desc=desc)
