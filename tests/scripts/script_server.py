"""Runs recipe scripts in forks of one interpreter that imported torch,
SpeechBrain and the package once.

Started by ``tests/recipe_rows.py``: it reads one JSON job per line on
stdin (``argv``, ``cwd``, ``stdout``, ``stderr``, ``timeout``), forks, and
the child runs ``argv[0]`` as ``__main__`` with that ``sys.argv`` (and the
script's folder first on ``sys.path``, as ``python script.py`` does),
output to the two files; the reply is ``{"returncode": N}``. A script run
this way does what ``python script.py`` does minus 4-6 s of imports.
"""

import json
import os
import runpy
import signal
import sys

import torch  # noqa: F401 (imported once, for every fork)
import torch._dynamo  # noqa: F401 (imported by the first optimizer)

import speechbrain.core  # noqa: F401
import speechbrain_kd.brains  # noqa: F401
import speechbrain_kd.recipe  # noqa: F401


def run_child(job):
    """In the fork: redirect the output, then run the script."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        out = os.open(job[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, fd)
        os.close(out)
    signal.alarm(int(job["timeout"]))  # SIGALRM ends a hung run
    os.chdir(job["cwd"])
    sys.argv = list(job["argv"])
    sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
    runpy.run_path(sys.argv[0], run_name="__main__")
    sys.exit(0)  # SystemExit, as a script's end or sys.exit would


def serve():
    """Forks one child per job line and replies with its exit status."""
    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            run_child(job)
        _, status = os.waitpid(pid, 0)
        reply = {"returncode": os.waitstatus_to_exitcode(status)}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    serve()
