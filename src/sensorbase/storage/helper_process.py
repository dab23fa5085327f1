"""A helper process a server process pokes: started at the first poke (and again if it has
gone), told to look by a byte on its input, ended by the end of that input. The fold helpers
of both stores (sqlite/folder.py, postgres/folder.py) are such processes.

A helper starts with OpenBLAS (numpy's linear algebra, which no helper uses) on one thread:
numpy's import otherwise starts a thread per core, and the SQLite fold helper's start took
0.15 s of CPU against 0.10 with one (this 2-core machine; each server process starts its
own helper)."""

from __future__ import annotations

import os
import subprocess
import sys


class HelperProcess:
    def __init__(self, module: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.argv = [sys.executable, "-m", module, *args]
        self.env = {"OPENBLAS_NUM_THREADS": "1", **(env or {})}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def poke(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            process = self._process = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, env={**os.environ, **self.env}
            )
        assert process.stdin is not None
        try:
            os.write(process.stdin.fileno(), b".")
        except OSError:  # gone: started again at the next poke
            self._process = None

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
