"""The CLI's side of HTTP: one `Api` per invocation, and `CliError`, which prints a server's
RFC 9457 problem (title, detail, every item of `errors[]`) readably and exits non-zero.

The CLI holds no logic the API lacks: every command is one or more of these requests."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from sensorbase import __version__

# Bodies past this size travel gzipped (the server accepts Content-Encoding: gzip).
GZIP_ABOVE_BYTES = 1024 * 1024

stderr = Console(stderr=True, highlight=False)


@dataclass
class CliError(Exception):
    """A failure the user must see: printed by the root command, which then exits with 1."""

    message: str
    status: int | None = None
    problem: dict[str, Any] | None = None
    items: list[str] = field(default_factory=list)
    hint: str | None = None

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def show(self, as_json: bool) -> None:
        """On stderr: the problem document under --json, else a readable summary."""
        if as_json:
            document = self.problem or {"title": "Error", "detail": self.message}
            if self.status is not None:
                document = {"status": self.status, **document}
            stderr.print_json(json.dumps(document, ensure_ascii=False))
            return
        head = "Error" if self.status is None else f"Error {self.status}"
        stderr.print(f"[bold red]{head}:[/] {escape(self.message)}", soft_wrap=True)
        for item in self.items:
            stderr.print(f"  • {escape(item)}", soft_wrap=True)
        if self.hint:
            stderr.print(f"[dim]hint: {escape(self.hint)}[/]", soft_wrap=True)


def describe(item: dict[str, Any]) -> str:
    """One entry of a problem's `errors[]` as `item 3, field 'value': must be a number`."""
    where = []
    if item.get("index") is not None:
        where.append(f"item {item['index']}")
    if item.get("field"):
        where.append(f"field '{item['field']}'")
    reason = str(item.get("reason", "invalid"))
    return f"{', '.join(where)}: {reason}" if where else reason


def error_from(reply: httpx.Response, *, has_key: bool) -> CliError:
    """A CliError from an error reply: problem details, an OAuth2 error, or plain text."""
    try:
        body = reply.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "error" in body and "title" not in body:  # OAuth2 shape
        problem = {"title": body["error"], "detail": body.get("error_description", "")}
    elif isinstance(body, dict):
        problem = body
    else:
        text = reply.text.strip()[:500] or reply.reason_phrase
        problem = {"title": reply.reason_phrase, "detail": text}
    title = str(problem.get("title") or reply.reason_phrase)
    detail = str(problem.get("detail") or "")
    errors = problem.get("errors") or []
    items = list(dict.fromkeys(describe(e) for e in errors if isinstance(e, dict)))
    if len(items) == 1 and items[0] == detail:
        items = []
    hint = None
    if reply.status_code == 401 and not has_key:
        hint = "pass --key or set SENSORBASE_KEY"
    message = f"{title}: {detail}" if detail and detail != title else title
    return CliError(message, reply.status_code, problem, items, hint)


class Api:
    """A connection to a running server, authenticated with an API key or access token."""

    def __init__(self, url: str, key: str | None, timeout_s: float = 120) -> None:
        self.url = url.rstrip("/")
        self.key = key
        headers = {"User-Agent": f"sensorbase-cli/{__version__}"}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def request(
        self, method: str, path: str, *, bearer: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """The reply to a request (sent with `Authorization: Bearer <key>` unless `bearer` is
        false); a CliError for an error status or an unreachable server."""
        if bearer and self.key:
            kwargs["headers"] = {"Authorization": f"Bearer {self.key}", **kwargs.get("headers", {})}
        try:
            reply = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach Sensorbase at {self.url} ({exc.__class__.__name__}: {exc})",
                hint="start it with `sensorbase serve`, or pass --url / set SENSORBASE_URL",
            ) from None
        if reply.status_code >= 400:
            raise error_from(reply, has_key=bool(self.key))
        return reply

    def get(self, path: str, params: Any = None) -> Any:
        return self.request("GET", path, params=params).json()

    def post(self, path: str, body: Any = None, params: Any = None) -> Any:
        reply = self.request("POST", path, json=body, params=params)
        return reply.json() if reply.content else None

    def patch(self, path: str, body: Any = None) -> Any:
        reply = self.request("PATCH", path, json=body)
        return reply.json() if reply.content else None

    def put(self, path: str, body: Any = None) -> Any:
        reply = self.request("PUT", path, json=body)
        return reply.json() if reply.content else None

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def send(self, path: str, content: bytes, content_type: str, params: Any = None) -> Any:
        """POST a raw body (gzipped when large) and return the JSON reply."""
        headers = {"Content-Type": content_type}
        if len(content) > GZIP_ABOVE_BYTES:
            content = gzip.compress(content, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        return self.request("POST", path, content=content, headers=headers, params=params).json()


@dataclass
class Session:
    """The global options (--url, --key, --json), held in the root command's context."""

    url: str
    key: str | None
    as_json: bool
    _api: Api | None = None

    def api(self) -> Api:
        if self._api is None:
            self._api = Api(self.url, self.key)
        return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.close()


def session(ctx: typer.Context) -> Session:
    root = ctx.find_root()
    if not isinstance(root.obj, Session):  # pragma: no cover - set by the root callback
        raise RuntimeError("the sensorbase root command did not run")
    return root.obj


def api(ctx: typer.Context) -> Api:
    return session(ctx).api()
