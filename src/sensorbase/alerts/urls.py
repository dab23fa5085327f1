"""Which webhook URLs Sensorbase will call: http or https, with a host; and, unless the
operator allows them (`webhook_allow_private`, the default for a single-tenant or trusted
install), none that resolves to a loopback, private, link-local, multicast or reserved
address, so that an organisation cannot make the server probe its own network (SSRF). The
check runs when a URL is registered and again before each delivery (a name may be made to
resolve elsewhere later)."""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from sensorbase.errors import InvalidInput, Problem, invalid

MAX_URL_CHARS = 2048
# The URLs taken (whatever the SSRF setting): http(s), a host name or an IPv4 address (not an
# IPv6 literal: give such a host a name), a port 0 to 65535; also the JSON Schema pattern of
# the APIs' documents.
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
URL_PATTERN = rf"^https?://[A-Za-z0-9._~-]+(:{_PORT})?([/?#]\S*)?$"
_URL = re.compile(URL_PATTERN)


def check_url(url: str, field: str, *, allow_private: bool) -> str:
    problem = url_problem(url, allow_private=allow_private)
    if problem is not None:
        raise invalid([Problem(problem, field)])
    return url


def url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why `url` may not be called, or None."""
    if len(url) > MAX_URL_CHARS:
        return f"must be at most {MAX_URL_CHARS} characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as exc:
        return f"is not a URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    if not host or not _URL.match(url):
        return "must be http(s)://host[:port][/path], the host a name or an IPv4 address"
    if allow_private:
        return None
    try:
        found = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        return f"names a host that does not resolve: {host}"
    for *_, address in found:
        ip = ipaddress.ip_address(address[0])
        if not ip.is_global or ip.is_multicast:
            return f"resolves to a non-public address ({ip}), which this server does not call"
    return None


__all__ = ["InvalidInput", "check_url", "url_problem"]
