"""Running the server under uvicorn (uvloop, httptools): one process, or --workers N
(workers.py).

Every server process builds its own `Wiring` (app.py) and gives uvicorn its app and the HTTP
protocol bound to it (protocol.py). The listening socket is bound before that (here, or by the
supervisor of --workers): uvicorn binds only after the app's start-up, which on a first start
makes and shows the bootstrap key, and a busy port must fail the start before a key is shown
that no server would be serving.
"""

from __future__ import annotations

import logging
from typing import Any

import uvicorn

from sensorbase.app import wire
from sensorbase.server import ServerError
from sensorbase.server.listener import listening_socket
from sensorbase.server.logs import logging_config
from sensorbase.server.protocol import protocol_for
from sensorbase.settings import Settings

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's


def uvicorn_options(
    settings: Settings,
    *,
    access_log: bool = True,
    forwarded_allow_ips: str | None = None,
    log_format: str = "text",
) -> dict[str, Any]:
    """uvicorn's options but the app and protocol (which each process builds for itself):
    plain values, so that they travel to worker processes."""
    if settings.log_level.lower() not in LOG_LEVELS:
        raise ServerError(
            f"SENSORBASE_LOG_LEVEL is '{settings.log_level}'; "
            "use critical, error, warning, info, debug or trace"
        )
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "log_config": logging_config(settings.log_level, log_format),
        "log_level": settings.log_level.lower(),
        "access_log": access_log,
        # The other receive deadlines are the protocol's own (server/guard.py).
        "timeout_keep_alive": settings.keep_alive_timeout_s,
    }
    if forwarded_allow_ips is not None:
        options["forwarded_allow_ips"] = forwarded_allow_ips
    return options


def serve(settings: Settings, options: dict[str, Any], workers: int = 1) -> bool:
    """Serve until SIGINT or SIGTERM; False when the server did not start (uvicorn has logged
    why)."""
    if workers > 1:
        from sensorbase.server.workers import serve_workers

        serve_workers(workers, settings, options)
        return True
    return run_bound(settings, options)


def uvicorn_config(settings: Settings, options: dict[str, Any]) -> uvicorn.Config:
    """One server process's uvicorn config: its own app, and the protocol serving it."""
    wiring = wire(settings)
    return uvicorn.Config(wiring.app, http=protocol_for(wiring), **options)  # (sets up logging)


def run_bound(settings: Settings, options: dict[str, Any]) -> bool:
    """One server process, on a socket bound before its app is even built."""
    listener = listening_socket(options["host"], options["port"])
    server = uvicorn.Server(uvicorn_config(settings, options))
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    logging.getLogger("uvicorn.error").info(
        "Sensorbase running on http://%s:%d (Press CTRL+C to quit)", shown, port
    )
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
    return server.started
