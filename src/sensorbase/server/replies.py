"""How a lane's reply goes out (server/protocol.py): its header lines rendered once, and the
writes of one loop turn joined into one.

One write per reply, sent after the loop turn. uvicorn writes each reply to the socket twice:
the status line and headers when the app sends `http.response.start`, the body when it sends
`http.response.body`. On loopback and on a LAN a socket write is most of a small reply's cost
(the kernel runs the whole TCP send, and wakes the client twice, once per segment). Here the
writes made during one turn of the event loop are joined and sent at the start of the next
turn, in one write: measured with the benchmark's one-point writes (`wrk -c32`), ~13 us less
system CPU per request (~7% of a request's CPU). Sending after the turn also matters: the
replies of one group commit then leave back to back, and a client waiting on several
connections is woken once for all of them. Sending each lane reply at once instead cost ~40 us
per send on this machine (one worker, `wrk -c16`: 260 against 205 us of CPU per request).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE

_default_headers: tuple[object, bytes] = (None, b"")  # (uvicorn's list, its lines)


def rendered_defaults(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """uvicorn's default headers (server, date) as the lines of a reply. uvicorn makes a new
    list of them at each tick of its clock (10 a second): rendered once per list, not per
    reply."""
    global _default_headers
    known, lines = _default_headers
    if known is not default_headers:
        lines = b"".join(b"%s: %s\r\n" % header for header in default_headers)
        _default_headers = (default_headers, lines)
    return lines


header_lines: dict[tuple[bytes, bytes], bytes] = {}  # (name, value) -> its line in a reply
_HEADER_LINES = 1024  # forgotten past this many


def header_line(header: tuple[bytes, bytes]) -> bytes:
    """A reply header's line, rendered once: a lane's replies repeat the same few headers (the
    media type, the safety headers, a handful of lengths), found in `header_lines`."""
    if len(header_lines) >= _HEADER_LINES:
        header_lines.clear()
    line = header_lines[header] = b"%s: %s\r\n" % header
    return line


def reply_head(
    status: int,
    defaults: list[tuple[bytes, bytes]],
    headers: list[tuple[bytes, bytes]],
    keep_alive: bool,
) -> bytes:
    """A lane reply's status line and header lines, up to its body."""
    parts = [STATUS_LINE[status], rendered_defaults(defaults)]
    try:  # (each line rendered before, as nearly always: no Python frame a header)
        parts += map(header_lines.__getitem__, headers)
    except KeyError:
        del parts[2:]
        parts += [header_lines.get(header) or header_line(header) for header in headers]
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


class _Flushes:
    """The connections of one event loop written to in this turn, flushed by one callback
    after it: a callback scheduled per connection cost each reply a handle made and run
    (a group commit answers its writes in one turn)."""

    __slots__ = ("_loop", "_waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiting: list[JoinedWrites] = []

    def add(self, joined: JoinedWrites) -> None:
        if not self._waiting:
            self._loop.call_soon(self._flush)
        self._waiting.append(joined)

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        for joined in waiting:
            try:
                joined.flush()
            except Exception as exc:  # (one connection's failure is not the others')
                self._loop.call_exception_handler(
                    {"message": "a reply could not be sent", "exception": exc}
                )


_flushes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Flushes] = (
    weakref.WeakKeyDictionary()
)


class JoinedWrites:
    """A transport whose writes within one loop turn go out as one write."""

    __slots__ = ("_flushes", "_parts", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        flushes = _flushes.get(loop)
        if flushes is None:
            flushes = _flushes[loop] = _Flushes(loop)
        self._flushes = flushes
        self._parts: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._parts:
            self._flushes.add(self)
        self._parts.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        if not self._parts:
            return
        parts, self._parts = self._parts, []
        if not self._transport.is_closing():
            self._transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def is_closing(self) -> bool:  # asked after every reply: not through __getattr__
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._parts))

    def close(self) -> None:
        self.flush()  # what was written before close() is sent, as a transport promises
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._parts = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, pause_reading...
        return getattr(self._transport, name)
