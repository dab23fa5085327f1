"""What the client raises.

ClientError
 ├── TransportError        the server could not be reached (connection refused, timeout)
 └── ServerError           the server answered with an error (its problem document)
      ├── RequestRefused   400, 413, 415, 422: this request will never be taken as it is;
      │                    `errors` lists every refused item (index, field, reason)
      ├── Unauthorized     401, 403
      ├── NotFound         404
      ├── Conflict         409
      └── Unavailable      429, 503 (and 502, 504): worth retrying, after `retry_after_s`
PointsRejected            a batch written with partial acceptance stored its good points and
                          the server refused these (`errors`, with the points themselves)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ClientError(Exception):
    """Everything the client raises."""


class TransportError(ClientError):
    """The server could not be reached or did not answer in time."""


@dataclass(frozen=True)
class ItemError:
    """One refused item of a request: `index` in the batch sent, the `field` and the reason."""

    index: int | None
    field: str | None
    reason: str

    @classmethod
    def parse(cls, item: dict[str, Any]) -> ItemError:
        return cls(item.get("index"), item.get("field"), str(item.get("reason", "")))


class ServerError(ClientError):
    """The server refused the request; `problem` is its RFC 9457 problem document."""

    def __init__(self, status: int, problem: dict[str, Any], retry_after_s: float | None = None):
        self.status = status
        self.problem = problem
        self.retry_after_s = retry_after_s
        self.errors = [
            ItemError.parse(e) for e in problem.get("errors") or [] if isinstance(e, dict)
        ]
        self.errors_total = int(problem.get("errors_total") or len(self.errors))
        detail = problem.get("detail") or problem.get("title") or "error"
        super().__init__(f"{status}: {detail}")


class RequestRefused(ServerError):
    """The request itself is wrong (400, 413, 415, 422): retrying it cannot help."""


class Unauthorized(ServerError):
    """401 (no valid credential) or 403 (the key lacks the scope or the bucket)."""


class NotFound(ServerError):
    """404: no such bucket, source or key in the key's organisation."""


class Conflict(ServerError):
    """409: the key is taken."""


class Unavailable(ServerError):
    """429 or 503 (or a 502/504 from a proxy): the server asks to come back later."""


@dataclass
class PointsRejected(ClientError):
    """A partially accepted batch: the good points are stored, these were refused."""

    errors: list[ItemError]
    points: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        first = self.errors[0] if self.errors else None
        where = (
            f"; first: item {first.index}, field {first.field!r}: {first.reason}" if first else ""
        )
        return f"{len(self.errors)} points refused{where}"


RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


def error_for(status: int, problem: dict[str, Any], retry_after_s: float | None) -> ServerError:
    """The typed error of an HTTP status."""
    if status in RETRYABLE_STATUSES:
        return Unavailable(status, problem, retry_after_s)
    kind: type[ServerError] = {
        401: Unauthorized,
        403: Unauthorized,
        404: NotFound,
        409: Conflict,
    }.get(status, RequestRefused if 400 <= status < 500 else ServerError)
    return kind(status, problem, retry_after_s)
