"""What the sync and async clients share: the request of a batch, the reading of a reply, and
when to try again.

Retries: a 429, 502, 503 or 504 and a connection that failed are retried with exponential
backoff and full jitter (`base_delay_s * 2**attempt`, capped at `max_delay_s`, a random part
of it), or after the server's `Retry-After` when it sends one (the server knows when its
queue drains; plus up to 10 % jitter so that gateways told the same second do not all come back
at once). Any other 4xx is final: the same body would be refused again.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from sensorbase.client.errors import ServerError, TransportError, Unavailable, error_for

# The retries' jitter, apart from the random module's shared state, which the application
# embedding the client may seed or rely on.
_jitter = random.Random()
# Below this, gzip costs more CPU than the bytes it saves on a local network.
GZIP_MIN_BYTES = 1024


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a request the server asked to repeat later."""

    attempts: int = 6  # tries of one request, the first included
    base_delay_s: float = 0.2
    max_delay_s: float = 30.0

    def delay_s(self, attempt: int, retry_after_s: float | None) -> float:
        """The wait before try number `attempt + 1` (`attempt` counts from 0)."""
        if retry_after_s is not None:
            return min(retry_after_s, self.max_delay_s) * (1 + _jitter.uniform(0, 0.1))
        ceiling = min(self.max_delay_s, self.base_delay_s * 2**attempt)
        return _jitter.uniform(0, ceiling)


@dataclass(frozen=True)
class Body:
    content: bytes
    headers: dict[str, str]


def write_body(points: list[dict[str, Any]], bucket: str | None, gzip_min_bytes: int) -> Body:
    """The JSON body of `POST /v1/write`, gzipped past `gzip_min_bytes`."""
    document: dict[str, Any] = {"points": points}
    if bucket is not None:
        document["bucket"] = bucket
    content = json.dumps(document, separators=(",", ":"), allow_nan=False).encode()
    headers = {"Content-Type": "application/json"}
    if len(content) >= gzip_min_bytes:
        content = gzip.compress(content, compresslevel=5)
        headers["Content-Encoding"] = "gzip"
    return Body(content, headers)


def retry_after_s(value: str | None) -> float | None:
    """`Retry-After` in seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def raise_for(status: int, headers: Any, content: bytes) -> None:
    """Raise the typed error of a reply that is not a success."""
    if status < 400:
        return
    try:
        problem = json.loads(content) if content else {}
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {"detail": str(problem)}
    problem.setdefault("detail", content[:200].decode(errors="replace") or f"HTTP {status}")
    raise error_for(status, problem, retry_after_s(headers.get("retry-after")))


def is_retryable(exc: Exception) -> bool:
    return isinstance(exc, TransportError | Unavailable)


__all__ = ["Body", "RetryPolicy", "ServerError", "raise_for", "retry_after_s", "write_body"]
