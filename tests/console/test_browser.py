"""The console in a real headless Chromium against a real server (`sensorbase serve`, SQLite):
signing in both ways, browsing to a series, the chart drawn from the stored data, zooming, CSV,
keys, and a second organisation that sees nothing of the first's. The browser runs with every
host but 127.0.0.1 unresolvable, so every page here also proves that nothing is fetched from
another host."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console.browser import OFFLINE, chromium, require_chromium, wait_for
from tests.live import KEY_PATTERN, Server, start_server

# One server and one browser for the module: its tests run in one xdist worker (make test runs
# --dist loadgroup), in this order.
pytestmark = pytest.mark.xdist_group("console-browser")

PASSWORD = "correct horse battery"
POINTS = 120  # one a minute over the last two hours
SPIKE_AT = 77  # the point that holds the spike
HUMID = 30  # a second series: the last half hour
# A third, denser than a chart has pixels and than a query's default limit (1,000): 2,500
# points a second apart, one spike up and one down.
DENSE_VALUES = [float(i % 50) for i in range(2500)]
DENSE_VALUES[1234], DENSE_VALUES[2000] = 500.0, -300.0


def dense_times(now_us: int) -> list[int]:
    return [now_us - 3_000_000_000 + i * 1_000_000 for i in range(2500)]


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
            write = {"bucket": "farm", "points": points}
            _ok(client.post("/v1/write?precision=us", json=write, headers=as_acme))
            humid = [
                {"source": "ESP32-002", "field": "humidity", "value": 40.0 + i, "time": t}
                for i, t in enumerate(times[-HUMID:])
            ]
            write = {"bucket": "farm", "points": humid}
            _ok(client.post("/v1/write?precision=us", json=write, headers=as_acme))
            dense = [
                {"source": "dense", "field": "vibration", "value": v, "time": t}
                for t, v in zip(dense_times(now_us), DENSE_VALUES, strict=True)
            ]
            write = {"bucket": "farm", "points": dense}
            _ok(client.post("/v1/write?precision=us", json=write, headers=as_acme))
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
    from selenium.webdriver.common.keys import Keys

    _css(driver, "#sign-in-key input[name=key]").send_keys(key, Keys.ENTER)  # the keyboard's way
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


def _unlabelled(driver: Any) -> list[str]:
    """The page's controls that a screen reader could not name."""
    return list(
        driver.execute_script(
            "return [...document.querySelectorAll('input, select, button, textarea')]"
            ".filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label')"
            " && !(c.tagName === 'BUTTON' && c.textContent.trim()))"
            ".map(c => c.outerHTML)"
        )
    )


def _open_series(driver: Any) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.LINK_TEXT, "farm").click()
    wait_for(driver, lambda: _all(driver, "#series-table a"), "the bucket's series")
    row = next(r for r in _all(driver, "#series-table tbody tr") if "ESP32-001" in r.text)
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
    # Every series on the home page, searchable.
    listed = [r.text for r in _all(driver, "#all-series tbody tr")]
    assert len(listed) == 3 and all("farm" in r and "ago" in r for r in listed)
    search = next(
        i for i in _all(driver, "input[type=search]") if "series" in i.accessible_name.lower()
    )
    search.send_keys("humid")
    wait_for(driver, lambda: len(_all(driver, "#all-series tbody tr")) == 1, "the search")
    assert "ESP32-002" in _css(driver, "#all-series tbody tr").text
    _open_series(driver)

    # The chart holds the stored points (M4 keeps every point of so sparse a range), spike included.
    times, values = _drawn(driver)
    drawn = {round(t * 1e6): v for t, v in zip(times, values, strict=True) if v is not None}
    assert drawn == dict(zip(world.times_us, world.values, strict=True))
    assert _unlabelled(driver) == []

    # The chart asked for one M4 column per pixel of its plot.
    def widths() -> tuple[int, float]:
        return tuple(  # type: ignore[return-value]
            driver.execute_script(
                "const u = document.querySelector('#chart').uplot;"
                "const m4 = performance.getEntriesByType('resource').map(e => new URL(e.name))"
                ".filter(url => url.searchParams.get('mode') === 'm4').pop();"
                "return [Number(m4.searchParams.get('width')), u.bbox.width / devicePixelRatio]"
            )
        )

    wait_for(driver, lambda: (w := widths())[0] == round(w[1]), "a request at the plot's width")
    assert 500 < widths()[0] < 1280
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

    # Live: a point written now shows as the latest value without a reload.
    _css(driver, "input[name=live]").click()
    point = {"source": "ESP32-001", "field": "temperature", "value": 23.25}
    written = httpx.post(
        f"{world.server.url}/v1/write",
        json={"bucket": "farm", "points": [point]},
        headers={"Authorization": f"Bearer {world.acme_admin}"},
    )
    assert written.status_code == 200, written.text
    wait_for(driver, lambda: "23.25" in _css(driver, "#latest").text, "the live update", 15)


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
    assert _unlabelled(driver) == []
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


def test_console_pages_forbid_other_origins(world: World) -> None:
    page = httpx.get(f"{world.server.url}/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'self'" in policy
    assert "<script>" not in page.text and " on" not in page.text.split("<body>")[1].split("=")[0]
    assert httpx.get(f"{world.server.url}/console/vendor/uPlot.iife.js").status_code == 200
    assert httpx.get(f"{world.server.url}/console/static/..%2Fpages.py").status_code == 404


def test_compare_draws_several_series(world: World, browser: tuple[Any, Path]) -> None:
    driver, _ = browser
    _sign_in_key(driver, world, world.acme_admin)
    driver.get(f"{world.server.url}/#/compare?s=farm/ESP32-001/temperature")
    wait_for(driver, lambda: _all(driver, "#chart canvas"), "the compare chart")
    boxes = {li.text.strip().replace("\u203a", ">"): li for li in _all(driver, ".picklist li")}
    assert set(boxes) == {
        "farm > ESP32-001 > temperature (°C)",
        "farm > ESP32-002 > humidity",
        "farm > dense > vibration",
    }
    boxes["farm > ESP32-002 > humidity"].find_element("css selector", "input").click()

    def drawn() -> Any:
        data = driver.execute_script("return document.querySelector('#chart').uplot?.data")
        full = data and len(data) == 3 and all(any(v is not None for v in d) for d in data[1:])
        return data if full else None

    data = wait_for(driver, drawn, "two series on the chart")
    temperature = [v for v in data[1] if v is not None]
    humidity = [v for v in data[2] if v is not None]
    # Every stored point (and the live test's, when it ran first), the spike included.
    assert Counter(world.values) <= Counter(temperature) and len(temperature) <= POINTS + 1
    assert max(temperature) == 99.5
    assert humidity == [40.0 + i for i in range(HUMID)]
    assert "s=farm%2FESP32-002%2Fhumidity" in driver.current_url


def test_an_admin_manages_buckets_sources_and_users(
    world: World, browser: tuple[Any, Path]
) -> None:
    from selenium.webdriver.support.ui import Select

    driver, _ = browser
    as_acme = {"Authorization": f"Bearer {world.acme_admin}"}
    _sign_in_user(driver, world, "ada@example.com")
    _css(driver, "#create-bucket input[name=key]").send_keys("lab")
    _css(driver, "#create-bucket input[name=description]").send_keys("Bench tests")
    _css(driver, "#create-bucket input[name=retention]").send_keys("30d")
    _css(driver, "#create-bucket button").click()
    # An empty bucket shows how to write its first point, to this very server.
    first = wait_for(driver, lambda: _css(driver, "#first-point").text, "the empty state")
    made = httpx.get(f"{world.server.url}/v1/buckets/lab", headers=as_acme).json()
    assert (made["retention"], made["keep_summaries"]) == ("30d", False)
    assert f"{world.server.url}/v1/write" in first and '"bucket": "lab"' in first
    # The native example, run as shown, stores its point (curl, where the machine has it).
    if shutil.which("curl"):
        shown = _css(driver, "#first-point details[open] pre").text
        env = {**os.environ, "SB_KEY": world.acme_admin}
        ran = subprocess.run(["bash", "-c", shown], env=env, capture_output=True, timeout=30)
        assert b'"written":1' in ran.stdout.replace(b" ", b""), ran
        latest = httpx.get(f"{world.server.url}/v1/query?bucket=lab&mode=latest", headers=as_acme)
        assert [s["points"][0]["value"] for s in latest.json()["series"]] == [21.5]

    _css(driver, "#create-source input[name=key]").send_keys("probe-1")
    _css(driver, "#create-source button").click()
    wait_for(driver, lambda: "probe-1" in _css(driver, "#series-table").text, "the new source")
    assert "no data yet" in _css(driver, "#series-table").text
    _css(driver, "button[aria-label='Delete source probe-1']").click()
    dialog = wait_for(driver, lambda: _css(driver, "dialog[open]").text, "the confirmation")
    assert "probe-1" in dialog and "lab" in dialog
    _css(driver, "#confirm-yes").click()
    wait_for(driver, lambda: "probe-1" not in _css(driver, "main").text, "the source gone")
    gone = httpx.get(f"{world.server.url}/v1/buckets/lab/sources/probe-1", headers=as_acme)
    assert gone.status_code == 404

    _css(driver, "#delete-bucket").click()
    assert "bucket lab" in wait_for(driver, lambda: _css(driver, "dialog[open]").text, "confirm")
    _css(driver, "#confirm-no").click()  # cancelled: nothing goes
    assert httpx.get(f"{world.server.url}/v1/buckets/lab", headers=as_acme).status_code == 200
    _css(driver, "#delete-bucket").click()
    wait_for(driver, lambda: _all(driver, "dialog[open] #confirm-yes"), "the confirmation")
    _css(driver, "#confirm-yes").click()
    wait_for(driver, lambda: _all(driver, "#buckets li"), "the buckets")
    assert [li.text.split("\n")[0] for li in _all(driver, "#buckets li")] == ["farm"]
    assert httpx.get(f"{world.server.url}/v1/buckets/lab", headers=as_acme).status_code == 404

    driver.get(f"{world.server.url}/#/users")
    wait_for(driver, lambda: _all(driver, "#create-user"), "the users page")
    _css(driver, "#create-user input[name=email]").send_keys("cy@example.com")
    _css(driver, "#create-user input[name=password]").send_keys(PASSWORD)
    _css(driver, "#create-user button").click()
    row = "#users tr[data-user='cy@example.com']"
    wait_for(driver, lambda: _all(driver, row), "the new user")
    Select(_css(driver, f"{row} select")).select_by_value("writer")

    def role() -> str | None:
        users = httpx.get(f"{world.server.url}/v1/users", headers=as_acme).json()["users"]
        return next((u["role"] for u in users if u["email"] == "cy@example.com"), None)

    wait_for(driver, lambda: role() == "writer", "the role change")
    _css(driver, f"{row} button").click()
    wait_for(driver, lambda: _all(driver, "dialog[open] #confirm-yes"), "the confirmation")
    _css(driver, "#confirm-yes").click()
    wait_for(driver, lambda: not _all(driver, row), "the user gone")
    assert role() is None


def test_a_dense_series_keeps_its_extremes_and_downloads_whole(
    world: World, browser: tuple[Any, Path]
) -> None:
    driver, downloads = browser
    _sign_in_key(driver, world, world.acme_admin)
    driver.get(f"{world.server.url}/#/s/farm/dense/vibration")
    wait_for(driver, lambda: _stats(driver).get("count") == "2,500", "the statistics")
    _, values = wait_for(driver, lambda: _drawn(driver)[0] and _drawn(driver), "the chart")
    drawn = [v for v in values if v is not None]
    # At most four points a pixel column (M4: the 2,500 s take ~3% of the 24 h shown), never a
    # lost extreme.
    columns = _css(driver, "#chart").size["width"] * 2500 / 86400 + 2
    assert len(drawn) <= 4 * columns
    assert max(drawn) == 500.0 and min(drawn) == -300.0
    assert _stats(driver)["max"] == "500" and _stats(driver)["min"] == "-300"
    _css(driver, "#download-csv").click()
    target = downloads / "farm-dense-vibration.csv"
    wait_for(driver, lambda: target.exists() and len(target.read_text().splitlines()) > 1, "CSV")
    rows = list(csv.reader(io.StringIO(target.read_text())))
    assert [float(r[4]) for r in rows[1:]] == DENSE_VALUES


def test_pages_fit_a_phone(world: World, browser: tuple[Any, Path]) -> None:
    driver, _ = browser
    _sign_in_key(driver, world, world.acme_admin)
    phone = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", phone)
    try:
        for page, ready in [
            ("#/b/farm", "#series-table a"),
            ("#/s/farm/ESP32-001/temperature", "#chart canvas"),
            ("#/keys", "#create-key"),
        ]:
            driver.get(f"{world.server.url}/{page}")
            wait_for(driver, lambda ready=ready: _all(driver, ready), page)
            wide = driver.execute_script("return document.documentElement.scrollWidth")
            assert wide <= 390, f"{page} is {wide} px wide"
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
