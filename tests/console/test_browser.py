"""The console in a real headless Chromium against a real server (`sensorbase serve`, SQLite):
signing in both ways, browsing to a series, the chart drawn from the stored data, zooming, CSV,
keys, and a second organisation that sees nothing of the first's. The browser runs with every
host but 127.0.0.1 unresolvable, so every page here also proves that nothing is fetched from
another host."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console.browser import OFFLINE, chromium, require_chromium, wait_for
from tests.live import KEY_PATTERN, Server, start_server

PASSWORD = "correct horse battery"
POINTS = 120  # one a minute over the last two hours
SPIKE_AT = 77  # the point that holds the spike


@dataclass
class World:
    server: Server
    acme_admin: str
    values: list[float]
    times_us: list[int]


def _ok(reply: httpx.Response) -> Any:
    assert reply.status_code in (200, 201, 204), reply.text
    return reply.json() if reply.content else None


def _org(client: httpx.Client, root: str, org: str, bucket: str, email: str) -> str:
    as_root = {"Authorization": f"Bearer {root}"}
    _ok(client.post("/v1/orgs", json={"key": org}, headers=as_root))
    admin = _ok(
        client.post(
            f"/v1/orgs/{org}/keys", json={"name": "admin", "scopes": ["admin"]}, headers=as_root
        )
    )["key"]
    user = {"email": email, "password": PASSWORD, "role": "admin"}
    _ok(client.post(f"/v1/orgs/{org}/users", json=user, headers=as_root))
    _ok(
        client.post(
            "/v1/buckets", json={"key": bucket}, headers={"Authorization": f"Bearer {admin}"}
        )
    )
    return str(admin)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_chromium()
    server = start_server(tmp_path_factory.mktemp("console"))
    try:
        root = KEY_PATTERN.findall(server.stderr())[0]
        with httpx.Client(base_url=server.url, timeout=10) as client:
            acme = _org(client, root, "acme", "farm", "ada@example.com")
            globex = _org(client, root, "globex", "plant", "bob@example.com")
            as_acme = {"Authorization": f"Bearer {acme}"}
            schema = {"temperature": {"type": "number", "unit": "°C"}}
            _ok(
                client.post(
                    "/v1/buckets/farm/sources",
                    json={"key": "ESP32-001", "schema": schema},
                    headers=as_acme,
                )
            )
            now_us = (int(time.time()) // 60) * 60_000_000
            times = [now_us - (POINTS - i) * 60_000_000 for i in range(POINTS)]
            values = [20.0 + (i % 10) / 10 for i in range(POINTS)]
            values[SPIKE_AT] = 99.5
            points = [
                {"source": "ESP32-001", "field": "temperature", "value": v, "time": t}
                for t, v in zip(times, values, strict=True)
            ]
            _ok(
                client.post(
                    "/v1/write?precision=us",
                    json={"bucket": "farm", "points": points},
                    headers=as_acme,
                )
            )
            secret = [
                {"source": "globex-secret", "field": "pressure", "value": 1.0, "time": times[0]}
            ]
            _ok(
                client.post(
                    "/v1/write?precision=us",
                    json={"bucket": "plant", "points": secret},
                    headers={"Authorization": f"Bearer {globex}"},
                )
            )
        yield World(server, acme, values, times)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[tuple[Any, Path]]:
    with chromium(OFFLINE) as found:
        yield found


def _css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def _all(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def _fresh(driver: Any, world: World) -> None:
    driver.get(f"{world.server.url}/")
    driver.delete_all_cookies()
    driver.get(f"{world.server.url}/")
    wait_for(driver, lambda: _all(driver, "#sign-in-key"), "the sign-in page")


def _sign_in_key(driver: Any, world: World, key: str) -> None:
    _fresh(driver, world)
    _css(driver, "#sign-in-key input[name=key]").send_keys(key)
    _css(driver, "#sign-in-key button").click()
    wait_for(driver, lambda: _all(driver, "#buckets li"), "the buckets after signing in")


def _sign_in_user(driver: Any, world: World, email: str) -> None:
    _fresh(driver, world)
    _css(driver, "#sign-in-user input[name=email]").send_keys(email)
    _css(driver, "#sign-in-user input[name=password]").send_keys(PASSWORD)
    _css(driver, "#sign-in-user button").click()
    wait_for(driver, lambda: _all(driver, "#buckets li"), "the buckets after signing in")


def _drawn(driver: Any) -> tuple[list[float], list[float | None]]:
    times, values = driver.execute_script(
        "const u = document.querySelector('#chart').uplot; return u ? [u.data[0], u.data[1]] : null"
    )
    return times, values


def _stats(driver: Any) -> dict[str, str]:
    return {d.get_attribute("data-stat"): d.text for d in _all(driver, "#stats dd")}


def _inside(driver: Any, world: World) -> int:
    """How many stored points the chart's range holds (start inclusive, end exclusive)."""
    chart = _css(driver, "#chart")
    start, end = (
        datetime.fromisoformat(chart.get_attribute(f"data-{n}")).timestamp() * 1e6
        for n in ("start", "end")
    )
    return sum(1 for t in world.times_us if start <= t < end)


def _open_series(driver: Any) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.LINK_TEXT, "farm").click()
    wait_for(driver, lambda: _all(driver, "#series-table a"), "the bucket's series")
    row = _css(driver, "#series-table tbody tr")
    assert "ESP32-001" in row.text and "°C" in row.text and "ago" in row.text
    driver.find_element(By.LINK_TEXT, "temperature").click()
    wait_for(driver, lambda: (_stats(driver).get("count") or "").isdigit(), "the statistics")
    wait_for(driver, lambda: _drawn(driver)[0], "the chart's data")


def test_key_sign_in_browses_to_a_drawn_series_zooms_and_downloads(
    world: World, browser: tuple[Any, Path]
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    driver, downloads = browser
    _sign_in_key(driver, world, world.acme_admin)
    assert "acme" in _css(driver, "h1").text
    _open_series(driver)

    # The chart holds the stored points (M4 keeps every point of so sparse a range), spike included.
    times, values = _drawn(driver)
    drawn = {round(t * 1e6): v for t, v in zip(times, values, strict=True) if v is not None}
    assert drawn == dict(zip(world.times_us, world.values, strict=True))
    canvas = _css(driver, "#chart canvas")
    assert canvas.size["width"] > 600 and canvas.size["height"] > 200
    stats = _stats(driver)
    assert stats["count"] == str(POINTS)
    assert stats["max"] == "99.5" and stats["min"] == "20"
    assert "99.5" not in _css(driver, "#latest").text  # the latest point is not the spike

    # A preset, then a zoom: a drag over the middle third narrows the range; the chart and the
    # statistics follow, counting exactly the stored points of the range shown.
    _css(driver, "button[data-preset='1h']").click()
    wait_for(
        driver, lambda: _stats(driver)["count"] == str(_inside(driver, world)), "the last hour"
    )
    before = _css(driver, "#chart").get_attribute("data-start")
    over = _css(driver, "#chart .u-over")
    width = over.size["width"]
    ActionChains(driver).move_to_element_with_offset(
        over, -width // 6, 0
    ).click_and_hold().move_by_offset(width // 3, 0).release().perform()
    wait_for(
        driver, lambda: _css(driver, "#chart").get_attribute("data-start") != before, "the zoom"
    )
    zoomed = _inside(driver, world)
    assert 10 <= zoomed <= 30
    wait_for(driver, lambda: _stats(driver)["count"] == str(zoomed), "the zoomed statistics")
    times, _ = _drawn(driver)
    assert len(times) == zoomed

    # CSV of the visible range: the same points as the statistics count.
    _css(driver, "#download-csv").click()
    target = downloads / "farm-ESP32-001-temperature.csv"
    wait_for(driver, lambda: target.exists() and target.stat().st_size > 0, "the CSV download")
    rows = list(csv.reader(io.StringIO(target.read_text())))
    assert rows[0] == ["bucket", "source", "field", "time", "value"]
    assert len(rows) - 1 == zoomed
    assert all(r[:3] == ["farm", "ESP32-001", "temperature"] for r in rows[1:])


def test_a_key_is_created_shown_once_and_revoked(world: World, browser: tuple[Any, Path]) -> None:
    from selenium.webdriver.support.ui import Select

    driver, _ = browser
    _sign_in_user(driver, world, "ada@example.com")
    driver.get(f"{world.server.url}/#/keys")
    wait_for(driver, lambda: _all(driver, "#create-key"), "the keys page")
    _css(driver, "#create-key input[name=name]").send_keys("gateway")
    _css(driver, "#create-key input[value='data:write']").click()
    Select(_css(driver, "#create-key select[name=bucket]")).select_by_value("farm")
    _css(driver, "#create-key button[type=submit]").click()
    secret = wait_for(
        driver, lambda: _css(driver, "#new-key-secret").get_attribute("value"), "the new key"
    )
    who = httpx.get(f"{world.server.url}/v1/whoami", headers={"Authorization": f"Bearer {secret}"})
    assert who.status_code == 200
    assert who.json()["scopes"] == ["data:read", "data:write"] and who.json()["bucket"] == "farm"
    assert secret not in driver.current_url

    driver.refresh()  # shown once: a reload lists the key, never its secret again
    wait_for(driver, lambda: _all(driver, "#keys tbody tr"), "the keys list")
    assert not _all(driver, "#new-key-secret") and secret not in driver.page_source
    key_id = who.json()["key"]
    _css(driver, f"#keys tr[data-key='{key_id}'] button").click()
    wait_for(driver, lambda: _all(driver, "dialog[open] #confirm-yes"), "the confirmation")
    assert "gateway" in _css(driver, "dialog[open]").text
    _css(driver, "#confirm-yes").click()
    wait_for(
        driver,
        lambda: "revoked" in _css(driver, f"#keys tr[data-key='{key_id}']").text,
        "the revocation",
    )
    gone = httpx.get(f"{world.server.url}/v1/whoami", headers={"Authorization": f"Bearer {secret}"})
    assert gone.status_code == 401


def test_another_organisation_sees_none_of_the_first(
    world: World, browser: tuple[Any, Path]
) -> None:
    driver, _ = browser
    _sign_in_user(driver, world, "bob@example.com")
    names = [li.text for li in _all(driver, "#buckets li")]
    assert names == ["plant"]
    driver.get(f"{world.server.url}/#/b/farm")
    wait_for(driver, lambda: _all(driver, "main .error"), "the refusal")
    assert "ESP32-001" not in driver.page_source
    driver.get(f"{world.server.url}/#/compare")
    wait_for(driver, lambda: _all(driver, ".picklist"), "the compare page")
    listed = " ".join(li.text for li in _all(driver, ".picklist li"))
    assert "globex-secret" in listed and "ESP32-001" not in listed and "farm" not in listed
    # Asked directly with bob's session, the API answers as it answers any other credential.
    status = driver.execute_async_script(
        "const done = arguments[0];"
        "fetch('/v1/query?bucket=farm&mode=latest').then(r => done(r.status))"
    )
    assert status == 404


def test_pages_and_docs_render_with_no_other_host(world: World, browser: tuple[Any, Path]) -> None:
    driver, _ = browser
    _fresh(driver, world)
    assert _css(driver, "label[for]").is_displayed()
    hosts = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).host)"
    )
    assert set(hosts) <= {world.server.url.removeprefix("http://")}
    driver.get(f"{world.server.url}/docs")
    wait_for(driver, lambda: _all(driver, ".swagger-ui .opblock"), "Swagger UI's operations")
    driver.get(f"{world.server.url}/redoc")
    wait_for(driver, lambda: _all(driver, "[data-section-id]"), "ReDoc's sections")


def test_console_pages_forbid_other_origins(world: World) -> None:
    page = httpx.get(f"{world.server.url}/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'self'" in policy
    assert "<script>" not in page.text and " on" not in page.text.split("<body>")[1].split("=")[0]
    assert httpx.get(f"{world.server.url}/console/vendor/uPlot.iife.js").status_code == 200
    assert httpx.get(f"{world.server.url}/console/static/..%2Fpages.py").status_code == 404
