"""The one error tree. Code below `api/` raises these; only the HTTP edge renders them.

    SensorbaseError (500, "internal")
     ├── InvalidInput (400, "invalid")        carries `problems`: every bad item, not the first
     │    └── UnprocessableInput (422)        well-formed but refused (schema drift, ...)
     ├── Unauthorized (401)                   no, wrong, expired or revoked credentials
     │    └── WrongCredentials (401)          credentials that match nothing (auth/failures.py)
     ├── Forbidden (403)                      valid credentials without the scope
     ├── NotFound (404)                       absent, or belonging to another organisation
     ├── MethodNotAllowed (405)               carries `allowed`: the methods the path takes
     ├── Conflict (409)                       the key is taken
     │    └── Archived (409)                  the bucket is archived: it takes no writes
     ├── PayloadTooLarge (413)
     ├── UnsupportedMediaType (415)           a Content-Type or Content-Encoding not taken
     ├── RateLimited (429)                    carries retry_after_s
     └── Unavailable (503)                    overload or a transient storage fault; retry_after_s
          └── Contended (503)                 lost to a concurrent transaction (rerun first)

Each dialect renders these in its vendor's shape; the native API renders RFC 9457 problems.
An error lists at most `MAX_LISTED_PROBLEMS` problems (the first ones) and counts them all in
`problems_total`: a body of a million bad items is refused in a reply of a few kilobytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_LISTED_PROBLEMS = 100


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a request: where (`index` of the item, `field`) and why."""

    reason: str
    field: str | None = None
    index: int | None = None
    # What kind of problem, for a dialect that words it in its vendor's terms (PROBLEM_KINDS).
    kind: str | None = None

    def as_dict(self, index: str = "index", field: str = "field") -> dict[str, object]:
        """The problem as a JSON object, under a dialect's own names; absent parts left out."""
        pairs = ((index, self.index), (field, self.field), ("reason", self.reason))
        return {k: v for k, v in pairs if v is not None}

    def describe(self) -> str:
        where = []
        if self.index is not None:
            where.append(f"item {self.index}")
        if self.field:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason


@dataclass
class SensorbaseError(Exception):
    detail: str = "internal error"
    problems: list[Problem] = field(default_factory=list)
    retry_after_s: int | None = None
    problems_total: int = field(default=0, init=False)  # before the list was cut

    status = 500
    code = "internal"

    def __post_init__(self) -> None:
        Exception.__init__(self, self.detail)
        self.problems_total = len(self.problems)
        if self.problems_total > MAX_LISTED_PROBLEMS:
            self.problems = self.problems[:MAX_LISTED_PROBLEMS]

    @property
    def problems_unlisted(self) -> int:
        """Problems counted but not listed."""
        return self.problems_total - len(self.problems)

    def __str__(self) -> str:
        return self.detail


class InvalidInput(SensorbaseError):
    status = 400
    code = "invalid"


class UnprocessableInput(InvalidInput):
    status = 422
    code = "unprocessable"


class Unauthorized(SensorbaseError):
    status = 401
    code = "unauthorized"


class WrongCredentials(Unauthorized):
    """Credentials that match nothing (an unknown key or email, a wrong secret or password, a
    forged token): what guessing looks like. An expired token or a revoked key is a plain
    Unauthorized: it was issued, and its holder is not guessing."""


@dataclass
class Forbidden(SensorbaseError):
    needs: str | None = None  # the scope (or "server_admin") the credential lacks

    status = 403
    code = "forbidden"


@dataclass
class NotFound(SensorbaseError):
    what: str | None = None  # "bucket", "source", "series", "key", "user", ...
    name: str | None = None  # as the request named it (the first, if several are missing)
    names: tuple[str, ...] = ()  # every one missing, when a request named several

    status = 404
    code = "not_found"


@dataclass
class MethodNotAllowed(SensorbaseError):
    allowed: tuple[str, ...] = ()

    status = 405
    code = "method_not_allowed"


@dataclass
class Conflict(SensorbaseError):
    what: str | None = None
    name: str | None = None

    status = 409
    code = "conflict"


class Archived(Conflict):
    code = "archived"


class PayloadTooLarge(SensorbaseError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(SensorbaseError):
    status = 415
    code = "unsupported_media_type"


@dataclass
class RateLimited(SensorbaseError):
    # The state of the key's window, when a per-key rate limit refused the request.
    limit: int | None = None
    remaining: int | None = None
    reset_epoch_s: int | None = None

    status = 429
    code = "rate_limited"


class Unavailable(SensorbaseError):
    status = 503
    code = "unavailable"


class Contended(Unavailable):
    """The transaction lost to a concurrent one (PostgreSQL aborted it to break a deadlock
    between two nodes' transactions): running it again is safe and meets the winner's work
    already committed. The write queue runs its group again (storage/write_queue.py); only
    when that keeps failing does a client see the 503."""


# Problem kinds the engine gives (Problem.kind): a dialect may word each its own way.
PROBLEM_KINDS = {
    "not_finite": "a value that is not a finite number",
    "too_old": "a time before the accepted window",
    "too_new": "a time too far in the future",
    "bad_name": "a bucket, source or field name that is not a valid name",
    "too_large": "meta over its size limit",
    "unknown_source": "a source that does not exist (and may not be created here)",
    "unknown_bucket": "a bucket that does not exist",
    "undeclared_field": "a field the source's schema does not declare",
    "wrong_type": "a field the source's schema declares as another type",
}


def invalid(problems: list[Problem], detail: str | None = None) -> InvalidInput:
    """An InvalidInput whose detail summarises every problem."""
    if detail is None:
        detail = summary(problems)
    return InvalidInput(detail, problems)


def summary(problems: list[Problem]) -> str:
    """One problem described, or how many there are and the first."""
    n = len(problems)
    first = problems[0].describe() if problems else "invalid input"
    if n <= 1:
        return first
    listed = f" (the first {MAX_LISTED_PROBLEMS} are listed)" if n > MAX_LISTED_PROBLEMS else ""
    return f"{n} problems{listed}; first: {first}"
