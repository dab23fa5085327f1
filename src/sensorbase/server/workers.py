"""`sensorbase serve --workers N`: N server processes behind one listening socket, which the
supervisor owns. The supervisor accepts every connection and hands it to the workers in turn
(its file descriptor passed over a Unix socket), so each worker holds an equal share. Each
worker is handed the supervisor's `Settings` and wires its own app from them (run.py).
Passing descriptors needs `socket.send_fds`, which every platform that uvloop runs on has.

Letting the kernel spread connections falls short exactly where a Sensorbase meets its
heaviest clients, a gateway or a collector holding a few long-lived connections: with one
socket shared by all workers (uvicorn's --workers), whichever worker wakes first accepts every
connection waiting; with a socket per worker (SO_REUSEPORT), the kernel picks a worker by a
hash of the client's address and port, so four connections land 2-2 only 3 times in 8, and
3-1 or 4-0 otherwise. Measured with the benchmark's four batch writers over two workers:
2-2 splits gave 355-375k points/s, 1-3 splits 273-329k. A connection's bytes never pass through
the supervisor: after the hand-over it belongs to its worker alone.

The supervisor stops the workers on SIGINT or SIGTERM (each finishes its requests and its
commits) and replaces a worker that dies; a worker that dies during its start-up, before its
app has started (a database it cannot reach, a setting it refuses), stops the whole server
instead of being restarted in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import logging.config
import multiprocessing
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

from sensorbase.server import ServerError
from sensorbase.server.listener import BACKLOG, listening_socket
from sensorbase.server.run import uvicorn_config
from sensorbase.settings import Settings

STARTUP_S = 10.0
ACCEPT_S = 0.5  # the accepting thread looks whether to stop at least this often
PR_SET_PDEATHSIG = 1  # linux/prctl.h
log = logging.getLogger("uvicorn.error")


def serve_workers(count: int, settings: Settings, options: dict[str, Any]) -> None:
    """Run `count` workers, each serving its own app wired from `settings`, until SIGINT or
    SIGTERM."""
    listener = listening_socket(options["host"], options["port"], options.get("backlog", BACKLOG))
    if isinstance(options.get("log_config"), dict):  # the supervisor logs as its workers do
        logging.config.dictConfig(options["log_config"])
        log.setLevel(options.get("log_level", "info").upper())
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    dispatcher = _Dispatcher(listener, count)

    def start(i: int) -> tuple[BaseProcess, Any]:
        # A fresh channel per worker process: a replacement never reads what its predecessor
        # left unread (connections sent to a dead worker die with it).
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ready = context.Event()
        # Each worker's MQTT consumer keeps a persistent session of its own, and the workers
        # share the messages through one shared subscription (docs/mqtt.md).
        mqtt = {
            "mqtt_client_id": f"{settings.mqtt_client_id}-{i}",
            "mqtt_share_group": settings.mqtt_share_group or settings.mqtt_client_id,
        }
        own = settings.model_copy(update=mqtt)
        process = context.Process(
            target=_worker, args=(own, options, theirs, ready), name="sensorbase-worker"
        )
        process.start()
        theirs.close()
        dispatcher.connect(i, ours, ready)
        return process, ready

    workers = [start(i) for i in range(count)]
    dispatcher.start()
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    log.info("Sensorbase running on http://%s:%d with %d workers (Press CTRL+C to quit)", shown,
             port, count)  # fmt: skip
    failed: str | None = None
    try:
        while not stopping.wait(0.5):
            for i, (process, ready) in enumerate(workers):
                if process.is_alive():
                    continue
                dispatcher.disconnect(i)
                if not ready.is_set():  # its app never started: so would a replacement's
                    failed = f"a worker exited during start-up (exit code {process.exitcode})"
                    stopping.set()
                    break
                log.error("worker %s exited (%s); starting another", process.pid, process.exitcode)
                workers[i] = start(i)
    finally:
        dispatcher.stop()  # no new connections; those handed over are served to the end
        for process, _ in workers:
            if process.is_alive():
                process.terminate()  # SIGTERM: the worker finishes its requests and commits
        for process, _ in workers:
            process.join()
        dispatcher.close()
    if failed is not None:
        raise ServerError(failed)


class _Dispatcher:
    """Accepts connections on its own thread and hands each to the next worker in turn. A
    worker that cannot take one (not yet started, dying, its channel full) is skipped; with
    none able, the connection is closed rather than left to hang. Nothing is accepted before
    every worker has started (or `STARTUP_S` has passed): connections made meanwhile wait in
    the listener's backlog, so that the first worker up does not get them all."""

    def __init__(self, listener: socket.socket, count: int) -> None:
        self._listener = listener
        self._channels: list[socket.socket | None] = [None] * count
        self._ready: list[Any] = [None] * count  # multiprocessing Events set by the workers
        self._lock = threading.Lock()
        self._next = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="sensorbase-accept", daemon=True)

    def connect(self, i: int, channel: socket.socket, ready: Any) -> None:
        channel.setblocking(False)  # a stuck worker must not stall everyone's accepts
        with self._lock:
            old, self._channels[i] = self._channels[i], channel
            self._ready[i] = ready
        if old is not None:
            old.close()

    def disconnect(self, i: int) -> None:
        with self._lock:
            old, self._channels[i] = self._channels[i], None
        if old is not None:
            old.close()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        # Wakes the blocked accept() on Linux; elsewhere its timeout does, within ACCEPT_S.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive():
            self._thread.join()
        self._listener.close()

    def close(self) -> None:
        for i in range(len(self._channels)):
            self.disconnect(i)

    def _run(self) -> None:
        self._listener.settimeout(ACCEPT_S)
        deadline = time.monotonic() + STARTUP_S
        while not self._stopping and time.monotonic() < deadline:
            if all(ready is not None and ready.is_set() for ready in self._ready):
                break
            time.sleep(0.02)
        while not self._stopping:
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping:
                    return
                time.sleep(0.01)  # e.g. EMFILE: let descriptors free up, then go on
                continue
            with conn:
                self._hand_over(conn)

    def _hand_over(self, conn: socket.socket) -> None:
        with self._lock:
            count = len(self._channels)
            for _ in range(count):
                channel, ready = self._channels[self._next], self._ready[self._next]
                self._next = (self._next + 1) % count
                if channel is None or not ready.is_set():
                    continue
                try:
                    socket.send_fds(channel, [b"c"], [conn.fileno()])
                    return
                except OSError:  # full or gone: the next worker, then
                    continue
        log.warning("no worker could take a connection; closed it")


class _WorkerServer:
    """uvicorn's Server, fed the connections the supervisor hands over instead of listening."""

    def __init__(self, config: Any, channel: socket.socket, ready: Any) -> None:
        import uvicorn

        self.channel = channel
        channel.setblocking(False)
        outer = self

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets=[])  # no listener of its own
                if self.started:
                    loop = asyncio.get_running_loop()
                    loop.add_reader(outer.channel.fileno(), outer.take, loop)
                    ready.set()

            async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
                asyncio.get_running_loop().remove_reader(outer.channel.fileno())
                await super().shutdown(sockets)

        self.server = Server(config)

    def run(self) -> None:
        self.server.run()

    def take(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self.channel, 1, 16)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                message, fds = b"", []
            if not message and not fds:  # the supervisor is gone: take no more
                loop.remove_reader(self.channel.fileno())
                return
            for fd in fds:
                loop.create_task(self.serve(loop, socket.socket(fileno=fd)))

    async def serve(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        server, config = self.server, self.server.config
        try:
            await loop.connect_accepted_socket(
                lambda: config.http_protocol_class(  # type: ignore[call-arg]
                    config=config,
                    server_state=server.server_state,
                    app_state=server.lifespan.state,
                ),
                sock,
            )
        except OSError:  # the client left before it was served
            sock.close()


def _worker(
    settings: Settings, options: dict[str, Any], channel: socket.socket, ready: Any
) -> None:
    _die_with_parent()
    _WorkerServer(uvicorn_config(settings, options), channel, ready).run()


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker when the supervisor dies, even of SIGKILL, instead of leaving
    it serving as an orphan."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the supervisor's own stop must do
        pass
