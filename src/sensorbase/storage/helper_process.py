"""A helper process a server process pokes: started at the first poke (and again if it has
gone), told to look by a byte on its input, ended by the end of that input. The fold helpers
of both stores (sqlite/folder.py, postgres/folder.py) are such processes.

A helper starts with OpenBLAS (numpy's linear algebra, which no helper uses) on one thread:
numpy's import otherwise starts a thread per core, and the SQLite fold helper's start took
0.15 s of CPU against 0.10 with one (this 2-core machine; each server process starts its
own helper).

With `alone` (a lock file's path) at most one such helper runs at a time on the host, of
whichever process started it: the helper holds the lock (a descriptor it inherits) until it
ends, and a poke of another process finds it held and starts none. SQLite's fold helpers
take turns anyway, so every server process's own helper was an idle one's start (~0.10 s
of CPU) and resident memory beside the one that folds; a process whose pokes found the
lock held starts its own at its first poke after that helper has ended (its server process
gone)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys


class HelperProcess:
    def __init__(
        self, module: str, *args: str, env: dict[str, str] | None = None, alone: str | None = None
    ) -> None:
        self.argv = [sys.executable, "-m", module, *args]
        self.env = {"OPENBLAS_NUM_THREADS": "1", **(env or {})}
        self.alone = alone
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def poke(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            process = self._process = self._start()
            if process is None:  # another process's helper runs
                return
        assert process.stdin is not None
        try:
            os.write(process.stdin.fileno(), b".")
        except OSError:  # gone: started again at the next poke
            self._process = None

    def _start(self) -> subprocess.Popen[bytes] | None:
        environ = {**os.environ, **self.env}
        if self.alone is None:
            return subprocess.Popen(self.argv, stdin=subprocess.PIPE, env=environ)
        fd = os.open(self.alone, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None
            # The helper's copy of the descriptor holds the lock from now until it ends.
            return subprocess.Popen(self.argv, stdin=subprocess.PIPE, env=environ, pass_fds=(fd,))
        finally:
            os.close(fd)

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()  # the helper ends at the end of its input
        try:
            process.wait(30)  # (a fold in progress finishes)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
