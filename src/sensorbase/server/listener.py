"""The listening socket, bound before any app is built: a busy port then fails the start
before a first start makes (and shows) a bootstrap key that no server would be serving."""

from __future__ import annotations

import socket

from sensorbase.server import ServerError

BACKLOG = 2048  # uvicorn's default


def listening_socket(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A socket listening on host:port, or a ServerError saying why not."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(backlog)
    return sock
