"""The Python client of Sensorbase's native API (docs/client.md).

Needs only httpx (`pip install 'sensorbase[client]'`, or httpx beside a copy of this package):
nothing here imports the server, so a gateway or a notebook does not install FastAPI, numpy or
a database driver to send and read points. polars or pandas, when installed, give DataFrames.
"""

from sensorbase.client.aio import AsyncClient
from sensorbase.client.errors import (
    ClientError,
    Conflict,
    ItemError,
    NotFound,
    PointsRejected,
    RequestRefused,
    ServerError,
    TransportError,
    Unauthorized,
    Unavailable,
)
from sensorbase.client.points import Point
from sensorbase.client.queue import BufferFull, DiskBuffer
from sensorbase.client.records import AggregateRecord, Record, to_frame
from sensorbase.client.sync import Client, FlushTimeout
from sensorbase.client.transport import RetryPolicy

__all__ = [
    "AggregateRecord", "AsyncClient", "BufferFull", "Client", "ClientError", "Conflict",
    "DiskBuffer", "FlushTimeout", "ItemError", "NotFound", "Point", "PointsRejected", "Record",
    "RequestRefused", "RetryPolicy", "ServerError", "TransportError", "Unauthorized",
    "Unavailable", "to_frame",
]  # fmt: skip
