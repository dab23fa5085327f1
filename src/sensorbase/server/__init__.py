"""The HTTP server that `sensorbase serve` runs: uvicorn on uvloop, with Sensorbase's own HTTP
protocol.

    run.py        one process on a socket bound before the app starts, or --workers N
    workers.py    N worker processes behind one socket, connections handed over in turn
    protocol.py   uvicorn's httptools protocol, answering the fast lanes from its parser
    guard.py      per worker: the bound on requests in flight, and the receive deadlines
    listener.py   the listening socket
    logs.py       uvicorn's logging, and the first start's banner

It is given what it serves by `sensorbase.app.wire`. Only entry points import it (the CLI's
`serve`): tests/test_layers.py checks that.
"""

from __future__ import annotations


class ServerError(Exception):
    """The server cannot start (busy port, unusable setting) or had to stop; the message says
    why, in words for whoever started it."""
