"""The WAL's fdatasync, done by a small helper process while the event loop goes on.

With durability=full a group of writes is answered only once the WAL frames of its commit are
on disk. The event loop commits a group itself (see storage/write_queue.py) and then asks this
helper for the sync: the loop sends a number, the helper fdatasyncs the WAL and sends the
number back, and a reader callback on the loop answers the group. A thread could not do this
as cheaply: it needs the GIL before and after its system call, and a busy event loop keeps the
GIL for up to a switch interval each time (measured, 16 one-point writers in one process:
150 us of CPU per write with a committer thread, 112 us with the loop committing and this
helper syncing). The helper holds no lock and touches no SQLite state: fdatasync of the file
makes every frame written before it durable, whichever process wrote them, so one sync serves
all requests that came while the previous one ran.

The parent's side is `WalSyncer`; the helper is this module run as a script (`main()`, the
standard library only, so that it starts in a few milliseconds).

Messages are 8-byte little-endian integers: the parent writes a request number; the helper
reads every request waiting, syncs once, and answers the highest number with a second integer,
0 or the errno of a failed sync.
"""

from __future__ import annotations

import asyncio
import errno
import os
import struct
import subprocess
import sys
from collections.abc import Callable

_NUMBER = struct.Struct("<q")
_REPLY = struct.Struct("<qq")
SyncDone = Callable[[OSError | None], None]


class WalSyncer:
    """Parent side: `request(done)` from an event loop; `done(None)` runs on that loop once the
    WAL is synced, `done(OSError)` if the sync failed or the helper died (it is started again
    at the next request)."""

    def __init__(self, wal_path: str) -> None:
        self.wal_path = wal_path
        self._process: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._number = 0
        self._waiting: list[tuple[int, SyncDone]] = []
        self._partial = b""

    def request(self, done: SyncDone) -> None:
        loop = asyncio.get_running_loop()
        process = self._process
        if process is None or loop is not self._loop:
            process = self._start(loop)
        self._number += 1
        self._waiting.append((self._number, done))
        try:
            os.write(process.stdin.fileno(), _NUMBER.pack(self._number))  # type: ignore[union-attr]
        except OSError as exc:
            self._fail(exc)

    def close(self) -> None:
        self._stop()
        self._fail(OSError(errno.ESHUTDOWN, "the store was closed before the WAL was synced"))

    def _start(self, loop: asyncio.AbstractEventLoop) -> subprocess.Popen[bytes]:
        self._stop()
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), self.wal_path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        assert process.stdout is not None
        loop.add_reader(process.stdout.fileno(), self._replied)
        self._process, self._loop = process, loop
        return process

    def _stop(self) -> None:
        process, loop = self._process, self._loop
        self._process = self._loop = None
        self._partial = b""
        if process is None:
            return
        assert process.stdin is not None and process.stdout is not None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(process.stdout.fileno())
        process.stdin.close()  # the helper exits at the end of its input
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()

    def _replied(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        try:
            data = os.read(process.stdout.fileno(), 4096)
        except OSError as exc:
            data, failure = b"", exc
        else:
            failure = OSError(errno.EPIPE, "the WAL sync helper exited")
        if not data:
            self._stop()
            self._fail(failure)
            return
        data, self._partial = self._partial + data, b""
        whole = len(data) - len(data) % _REPLY.size
        self._partial = data[whole:]
        for number, code in _REPLY.iter_unpack(data[:whole]):
            error = OSError(code, os.strerror(code)) if code else None
            self._answer(number, error)

    def _answer(self, number: int, error: OSError | None) -> None:
        done = [item for item in self._waiting if item[0] <= number]
        if not done:
            return
        self._waiting = self._waiting[len(done) :]
        for _, callback in done:
            callback(error)

    def _fail(self, error: OSError) -> None:
        waiting, self._waiting = self._waiting, []
        for _, callback in waiting:
            callback(error)


def main() -> None:
    """The helper: sync the WAL named by argv[1] for every batch of requests on stdin."""
    path = sys.argv[1]
    fd: int | None = None
    pending = b""
    while True:
        data = os.read(0, 65536)
        if not data:
            return
        data, pending = pending + data, b""
        whole = len(data) - len(data) % _NUMBER.size
        pending = data[whole:]
        if not whole:
            continue
        number = _NUMBER.unpack_from(data, whole - _NUMBER.size)[0]
        code = 0
        try:
            if fd is None:  # the WAL exists once the first commit has written it
                fd = os.open(path, os.O_RDONLY)
            os.fdatasync(fd)
        except OSError as exc:
            code = exc.errno or errno.EIO
        os.write(1, _REPLY.pack(number, code))


if __name__ == "__main__":
    main()
