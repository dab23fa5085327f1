"""WebSocket `/api/v1/stream/{room_id}?token=<jwt>`: the rows of a data source (the room) as
they are inserted through `PATCH /api/v1/secure/datasource/insert`, pushed after their commit.

The hub is this node's: a client hears the inserts taken by the node it is connected to. With
several nodes behind one address, connect to the node the writers use (or accept that a stream
shows one node's inserts); rows of an upload's import are not pushed. A client that does not
keep up loses messages rather than slowing inserts: each has a queue of `QUEUE` messages, and
what overflows it is dropped (and counted in the next message's `dropped`)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from sensorbase.dialects.base import principal_of_credential
from sensorbase.errors import SensorbaseError

QUEUE = 256
POLICY_VIOLATION = 1008  # the WebSocket close code for "not allowed"


@dataclass(eq=False)
class _Listener:
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE))
    dropped: int = 0


class Hub:
    def __init__(self) -> None:
        self._rooms: dict[tuple[int, str], set[_Listener]] = {}

    def publish(self, org_id: int, room: str, rows: list[dict[str, Any]]) -> None:
        for listener in self._rooms.get((org_id, room), ()):
            message: dict[str, Any] = {"datasource_id": room, "data": rows}
            if listener.dropped:
                message["dropped"] = listener.dropped
            try:
                listener.queue.put_nowait(message)
                listener.dropped = 0
            except asyncio.QueueFull:
                listener.dropped += len(rows)

    def listeners(self, org_id: int, room: str) -> int:
        return len(self._rooms.get((org_id, room), ()))

    async def serve(self, socket: WebSocket, room_id: str) -> None:
        app = socket.scope["app"]
        svc = app.services
        client = socket.scope.get("client")
        try:
            who, _ = principal_of_credential(
                svc, socket.query_params.get("token"), lambda: str(client[0] if client else "")
            )
            await svc.catalog.buckets.get(who, room_id)  # tenancy: another org's is not found
        except SensorbaseError as exc:
            await socket.close(POLICY_VIOLATION, exc.detail[:120])
            return
        await socket.accept()
        listener = _Listener()
        room = self._rooms.setdefault((who.org_id, room_id), set())
        room.add(listener)
        receiver = asyncio.create_task(_until_closed(socket))
        try:
            while not receiver.done():
                getter = asyncio.create_task(listener.queue.get())
                done, _ = await asyncio.wait(
                    {getter, receiver}, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                    break
                await socket.send_json(getter.result())
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            receiver.cancel()
            room.discard(listener)
            if not room:
                self._rooms.pop((who.org_id, room_id), None)
            with contextlib.suppress(RuntimeError):
                await socket.close()


async def _until_closed(socket: WebSocket) -> None:
    """Read (and ignore) what the client sends, until it goes."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await socket.receive_text()
