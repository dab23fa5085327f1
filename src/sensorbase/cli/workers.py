"""`sensorbase serve --workers N`: N server processes, each listening on its own socket bound
to the same address with SO_REUSEPORT, so that the kernel spreads new connections evenly among
them.

uvicorn's own --workers shares one listening socket among its processes, and whichever wakes
first accepts every connection waiting: a client opening its connections at once (a gateway,
a benchmark) could find all of them on one worker while the other idled. With wrk's 32
connections on two workers (benchmarks/ab.py, random order, 6-8 runs a side, three times):
medians 8,460 -> 9,950, 8,987 -> 8,907 and 8,408 -> 8,708 requests/s; what it reliably removes
are the worst runs (6,250-6,325 requests/s with the shared socket, when one worker got most
connections).

The supervisor opens every worker's socket, listening, before it starts any worker, and keeps
it open for that worker's replacement. A socket opened by its worker only once the app had
loaded let a client that connected during start-up (the benchmark right after /healthz
answered) find only the first worker up, and keep all its connections there: measured in 3
of 4 runs of 32 wrk connections, one worker committing ~29 jobs per group and the other none.

The supervisor stops the workers on SIGINT or SIGTERM (each finishes its requests and its
commits) and replaces a worker that dies; a worker that dies within `STARTUP_S` of its start
stops the whole server instead of being restarted in a loop.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

from sensorbase.cli.client import CliError

STARTUP_S = 10.0
BACKLOG = 2048  # uvicorn's default
PR_SET_PDEATHSIG = 1  # linux/prctl.h
log = logging.getLogger("uvicorn.error")


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def serve_workers(count: int, options: dict[str, Any]) -> None:
    """Run `count` workers of `sensorbase.app:create_app` until SIGINT or SIGTERM."""
    host, port = options["host"], options["port"]
    _check_free(host, port)
    # Every worker's socket listens before any worker starts, and outlives a worker that dies:
    # connections made while a worker is still starting (or being replaced) wait in its
    # socket's backlog instead of all landing on the first worker up and staying there.
    sockets = [_listening_socket(host, port, options.get("backlog", BACKLOG)) for _ in range(count)]
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())

    def start(sock: socket.socket) -> tuple[BaseProcess, float]:
        process = context.Process(target=_worker, args=(options, sock), name="sensorbase-worker")
        process.start()
        return process, time.monotonic()

    workers = [start(sock) for sock in sockets]
    failed: str | None = None
    try:
        while not stopping.wait(0.5):
            for i, (process, started) in enumerate(workers):
                if process.is_alive():
                    continue
                if time.monotonic() - started < STARTUP_S:
                    failed = f"a worker exited during start-up (exit code {process.exitcode})"
                    stopping.set()
                    break
                log.error("worker %s exited (%s); starting another", process.pid, process.exitcode)
                workers[i] = start(sockets[i])
    finally:
        for process, _ in workers:
            if process.is_alive():
                process.terminate()  # SIGTERM: the worker finishes its requests and commits
        for process, _ in workers:
            process.join()
        for sock in sockets:
            sock.close()
    if failed is not None:
        raise CliError(failed)


def _check_free(host: str, port: int) -> None:
    """Refuse a port something already listens on, even another Sensorbase with its own
    SO_REUSEPORT sockets (which the workers' binds would silently join)."""
    with _tcp_socket(host) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _tcp_socket(host: str) -> socket.socket:
    return socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)


def _listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    sock = _tcp_socket(host)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def _worker(options: dict[str, Any], sock: socket.socket) -> None:
    import uvicorn

    _die_with_parent()
    config = uvicorn.Config("sensorbase.app:create_app", factory=True, **options)
    uvicorn.Server(config).run(sockets=[sock])


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker when the supervisor dies, even of SIGKILL, instead of leaving
    it serving as an orphan."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the supervisor's own stop must do
        pass
