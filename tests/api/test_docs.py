"""/docs and /redoc work offline: every URL their pages reference is the server's own and
answers with the asset, and each page's Content-Security-Policy names no other origin."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest

_REFERENCES = re.compile(
    r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url\s*:\s*["']([^"']+)["']"""
)
_KINDS = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "json"}


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_docs_pages_reference_only_local_assets(client: httpx.AsyncClient, path: str) -> None:
    reply = await client.get(path)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/html")
    html = reply.text
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    urls = [a or b for a, b in _REFERENCES.findall(html)]
    if path != "/docs/oauth2-redirect":
        assert any(u.endswith(".js") for u in urls), urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        kind = next(k for suffix, k in _KINDS.items() if url.endswith(suffix))
        assert kind in asset.headers["content-type"], (url, asset.headers["content-type"])
        if url.endswith(".js"):
            assert len(asset.content) > 100_000  # the real bundle, not a placeholder

    policy = reply.headers["content-security-policy"]
    assert "http" not in policy and "*" not in policy
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    scripts = directives["script-src"].split()
    assert scripts[0] == "'self'" and "'unsafe-inline'" not in scripts
    # The page's inline scripts, and only they, are allowed by their hashes.
    inline = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    wanted = {
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in inline
    }
    assert set(scripts[1:]) == wanted
